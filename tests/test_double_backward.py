"""Second derivatives are exact (reference backend) or refused with a clear error (kernel backends).

The ``cpu`` and ``warp`` backends compute their backward with compiled kernels, which autograd
cannot differentiate; a double backward through them raises
:class:`~softras.raster.first_order.SecondDerivativeError` instead of returning a wrong value.
"""

from __future__ import annotations

import pytest
import torch

from softras.raster import available_backends, soft_rasterize
from softras.raster.first_order import SecondDerivativeError

from .scenes import random_scene

KERNEL_BACKENDS = [
    "cpu",
    pytest.param("warp", marks=pytest.mark.skipif("warp" not in available_backends(), reason="needs warp")),
]


def _scene() -> tuple[torch.Tensor, torch.Tensor]:
    """Two surface-textured triangles (float64, R = 2) over an 8×8 image."""
    return random_scene(batch=1, faces=2, texture_res=2, seed=1, size=1.0)


def _render(fv: torch.Tensor, tex: torch.Tensor, backend: str) -> torch.Tensor:
    return soft_rasterize(
        fv, tex, (8, 8), sigma_val=4e-2, gamma_val=3e-2, near=1.0, far=6.0, dist_eps=1e-6,
        background_color=(0.3, 0.5, 0.7), backend=backend,
    )  # fmt: skip


def test_reference_second_derivative_matches_finite_differences() -> None:
    """gradgradcheck: the derivative of the reference's gradient equals its finite differences."""
    fv, tex = _scene()
    weights = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def f(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (_render(x, t, "reference") * weights).sum(dim=(2, 3))  # [1, 4]: few outputs, a fast check

    inputs = (fv.requires_grad_(True), tex.requires_grad_(True))
    assert torch.autograd.gradgradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_reference_hessian_vector_product_matches_finite_differences() -> None:
    """H·v of a squared loss w.r.t. face_vertices equals (∇L(x + εv) − ∇L(x − εv)) / 2ε."""
    fv, tex = _scene()
    v = torch.randn(fv.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)

    def grad(x: torch.Tensor, create_graph: bool) -> torch.Tensor:
        loss = (_render(x, tex, "reference") ** 2).sum()
        return torch.autograd.grad(loss, x, create_graph=create_graph)[0]

    x = fv.clone().requires_grad_(True)
    (hv,) = torch.autograd.grad((grad(x, True) * v).sum(), x)
    eps = 1e-6
    plus = grad((fv + eps * v).requires_grad_(True), False)
    minus = grad((fv - eps * v).requires_grad_(True), False)
    torch.testing.assert_close(hv, (plus - minus) / (2 * eps), rtol=1e-4, atol=1e-5)
    assert hv.abs().max() > 1.0  # the rasterizer's own second-order terms, not zeros


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("loss", ["sum", "squares"])
@pytest.mark.parametrize("wrt", ["face_vertices", "textures"])
def test_kernel_backend_refuses_a_second_derivative(backend: str, loss: str, wrt: str) -> None:
    """A Hessian-vector product through cpu / warp raises, naming the backend and backend='reference'.

    ``sum`` makes the upstream gradient a constant (only the inputs link the gradient back to the
    graph), ``squares`` one that depends on the image; a regulariser on the input keeps the second
    differentiation possible without the rasterizer, where a wrong result would otherwise pass silently.
    """
    fv, tex = _scene()
    x = (fv if wrt == "face_vertices" else tex).clone().requires_grad_(True)
    image = _render(x, tex, backend) if wrt == "face_vertices" else _render(fv, x, backend)
    value = image.sum() if loss == "sum" else (image**2).sum()
    (g,) = torch.autograd.grad(value, x, create_graph=True)
    second = (g * g).sum() + (x**2).sum()
    message = rf"'{backend}' raster backend does not support second derivatives.*backend='reference'"
    with pytest.raises(SecondDerivativeError, match=message):
        torch.autograd.grad(second, x, retain_graph=True)
    with pytest.raises(RuntimeError, match=message):  # SecondDerivativeError is a RuntimeError
        second.backward()


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
def test_kernel_backend_first_derivative_unchanged_by_create_graph(backend: str) -> None:
    """create_graph=True alone (no second derivative taken) gives the same, exact, first derivative."""
    fv, tex = _scene()
    grads = []
    for create_graph in (False, True):
        x, t = fv.clone().requires_grad_(True), tex.clone().requires_grad_(True)
        loss = (_render(x, t, backend) ** 2).sum()
        grads.append(torch.autograd.grad(loss, (x, t), create_graph=create_graph))
    x, t = fv.clone().requires_grad_(True), tex.clone().requires_grad_(True)
    want = torch.autograd.grad((_render(x, t, "reference") ** 2).sum(), (x, t))
    for got in grads:
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a.detach(), b, rtol=1e-8, atol=1e-10)
    assert not grads[0][0].requires_grad and grads[1][0].requires_grad
