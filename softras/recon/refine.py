"""Test-time refinement: fit a reconstruction to its own input silhouette with the soft renderer.

The network maps an image to a latent code and the decoder maps the code to a mesh. A single
forward pass leaves the mesh's silhouette from the input view only roughly aligned with the
input's alpha channel. :func:`refine_reconstruction` keeps the trained decoder fixed and
optimises the latent code of each query (Adam, ``steps`` iterations) so that the soft silhouette
of the decoded mesh, rendered from the input's camera, matches the input's alpha:

    z* = argmin_z  1 - IoU(render(decoder(z), eye), alpha)
                   + lambda_laplacian * laplacian(decoder(z)) + lambda_flatten * flatten(decoder(z))

starting from the encoder's code (for the ``full`` variant, which also predicts face colours, plus
``lambda_color`` times the mean absolute RGB difference between the shaded render and the input,
as in training). Because the search stays in the decoder's latent space, the
parts of the shape the input view cannot see come from what the network learned about the
class, while the visible outline is fitted to the image (the same idea as the paper's
image-based shape deformation, Sec. 4.2, applied to the network's output).

Unlike the plain network this uses the input view's camera (``look_at`` eye): in the NMR
protocol it is known (24 fixed views). Compare it with baselines that may use it as well (the
evaluation's same-view retrieval).

Every query has its own latent code and loss term, and Adam is element-wise, so a query's
result does not depend on the other queries of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from softras.losses import iou

from .model import ReconModel

__all__ = ["RefineConfig", "refine_reconstruction"]


@dataclass(frozen=True)
class RefineConfig:
    """Options of :func:`refine_reconstruction`.

    Attributes:
        steps: Adam iterations on each latent code (0: no refinement).
        lr: Adam learning rate on the latent code.
        sigma: σ of the soft rasterizer while fitting (None: the model's σ).
        lambda_laplacian, lambda_flatten: weights of the mesh regularisers (the training's).
        lambda_color: weight of the RGB L1 term; used only by models that predict colours
            (the ``full`` variant).
    """

    steps: int = 30
    lr: float = 0.05
    sigma: float | None = None
    lambda_laplacian: float = 5e-3
    lambda_flatten: float = 5e-4
    lambda_color: float = 1.0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps: expected an integer >= 0, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected a value > 0, got {self.lr}")
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError(f"sigma: expected a value > 0 or None, got {self.sigma}")
        if min(self.lambda_laplacian, self.lambda_flatten, self.lambda_color) < 0:
            raise ValueError(
                f"lambda_laplacian, lambda_flatten, lambda_color: expected values >= 0, got "
                f"{self.lambda_laplacian}, {self.lambda_flatten}, {self.lambda_color}"
            )


def refine_reconstruction(
    model: ReconModel,
    images: torch.Tensor,
    eyes: torch.Tensor,
    config: RefineConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Reconstruct meshes from images, then fit each to its input silhouette (see the module doc).

    Args:
        model: a trained :class:`ReconModel`; its weights are not changed, and it runs in eval
            mode (BatchNorm's running statistics, no dropout), its mode restored afterwards.
        images: [B, 4, S, S] RGBA inputs in [0, 1]; the alpha channel is the target silhouette.
        eyes: [B, 3] ``look_at`` camera positions of the inputs (:func:`softras.recon.nmr.viewpoints`).
        config: options (default :class:`RefineConfig`).

    Returns:
        ``(vertices [B, V, 3], face colours [B, F, 3] or None)``, detached.
    """
    cfg = config if config is not None else RefineConfig()
    if images.dim() != 4 or images.shape[1] != 4:
        raise ValueError(f"images: expected [B, 4, S, S] RGBA, got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images: expected floating-point RGBA in [0, 1], got {images.dtype}")
    if eyes.shape != (images.shape[0], 3):
        raise ValueError(f"eyes: expected [{images.shape[0]}, 3] (one camera per image), got {tuple(eyes.shape)}")
    training, sigma = model.training, model.renderer.rasterizer.sigma_val
    model.eval()
    try:
        return _fit_latent(model, images, eyes.to(images), cfg)
    finally:
        model.train(training)
        model.set_sigma(sigma)


def _fit_latent(
    model: ReconModel, images: torch.Tensor, eyes: torch.Tensor, cfg: RefineConfig
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The optimisation of :func:`refine_reconstruction` (model in eval mode, eyes on the images' device)."""
    decoder = model.decoder
    with torch.no_grad():
        latent = model.encoder(images)
    if cfg.steps == 0:
        with torch.no_grad():
            return decoder(latent)
    target = images[:, 3]
    latent = latent.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([latent], lr=cfg.lr)
    if cfg.sigma is not None:
        model.set_sigma(cfg.sigma)
    with torch.enable_grad():
        for _ in range(cfg.steps):
            vertices, colors = decoder(latent)
            render = model.render(vertices, eyes, colors)
            loss = (1 - iou(render[:, 3], target)).sum()
            if colors is not None and cfg.lambda_color > 0:
                loss = loss + cfg.lambda_color * (render[:, :3] - images[:, :3]).abs().flatten(1).mean(1).sum()
            loss = loss + cfg.lambda_laplacian * model.laplacian_loss(vertices).sum()
            loss = loss + cfg.lambda_flatten * model.flatten_loss(vertices).sum()
            (latent.grad,) = torch.autograd.grad(loss, [latent])
            opt.step()
    with torch.no_grad():
        return decoder(latent.detach())
