"""The single-view reconstruction network of the SoftRas paper (Sec. 4.1, after NMR).

* :class:`Encoder`: 3 conv (5×5, stride 2, BatchNorm, ReLU) + 3 fully-connected layers,
  RGBA image [B, 4, 64, 64] -> latent [B, 512].
* :class:`Decoder`: 2 fully-connected layers, then a centroid [B, 3] and a per-vertex
  displacement [B, V, 3] of the 642-vertex sphere template (``softras.shapes.icosphere(3)``),
  combined with the original's sigmoid parametrisation so every vertex stays inside
  ``[-0.5, 0.5]^3`` (the frame of the NMR voxels). The ``full`` variant adds a head for
  per-face colours [B, F, 3].
* :class:`ReconModel`: the network plus the soft renderer and the regularisers; it renders the
  four cross views of the multi-view objective and evaluates the voxel IoU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from softras.losses import FlattenLoss, LaplacianLoss, iou
from softras.mesh import Mesh
from softras.metrics import voxel_iou_from_mesh
from softras.renderer import SoftRenderer
from softras.shapes import icosphere

from .nmr import VIEWING_ANGLE

__all__ = ["Decoder", "Encoder", "ModelConfig", "ReconModel", "ReconNet", "multiview_iou_loss"]

VARIANTS = ("silhouette", "full")
DIST_EPS = 1e-10
"""The training renderer's ``dist_eps`` (the original's recon renderer): its cull radius."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture options (defaults: the paper's network).

    Attributes:
        variant: ``'silhouette'`` (geometry only) or ``'full'`` (also per-face colours).
        image_size: input/render size S.
        template_level: icosphere subdivisions of the template (3: 642 vertices, 1280 faces).
        conv_dim: channels of the first conv layer (then ×2, ×4).
        fc_dim: width of the encoder's first two fc layers.
        latent_dim: encoder output.
        decoder_dim: width of the decoder's first fc layer (the second is twice as wide).
        symmetric: predict meshes mirror-symmetric about the plane x = 0 (not in the paper; a
            common single-view prior, as in CMR): the displacements of each vertex and of its
            mirror image are averaged and the centroid's x is 0. ShapeNet's and the procedural
            classes' objects are (nearly) symmetric about that plane.
        dropout: dropout probability after the encoder's first two fc layers while training (0:
            off, as in the paper); a regulariser against memorising the training objects.
    """

    variant: str = "silhouette"
    image_size: int = 64
    template_level: int = 3
    conv_dim: int = 64
    fc_dim: int = 1024
    latent_dim: int = 512
    decoder_dim: int = 1024
    symmetric: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}, got {self.variant!r}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Encoder(nn.Module):
    """Image [B, 4, S, S] -> latent [B, latent_dim] (3 conv + 3 fc, ReLU throughout)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.conv_dim
        self.conv1 = nn.Conv2d(4, c, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(c, 2 * c, 5, stride=2, padding=2)
        self.conv3 = nn.Conv2d(2 * c, 4 * c, 5, stride=2, padding=2)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(c), nn.BatchNorm2d(2 * c), nn.BatchNorm2d(4 * c)
        side = math.ceil(cfg.image_size / 8)
        self.fc1 = nn.Linear(4 * c * side * side, cfg.fc_dim)
        self.fc2 = nn.Linear(cfg.fc_dim, cfg.fc_dim)
        self.fc3 = nn.Linear(cfg.fc_dim, cfg.latent_dim)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = x.flatten(1)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return F.relu(self.fc3(x))


class Decoder(nn.Module):
    """Latent [B, D] -> vertices [B, V, 3] in ``[-0.5, 0.5]^3`` (and colours [B, F, 3] for ``full``).

    The parametrisation follows the original: template vertex ``t`` (the unit sphere scaled by
    0.5) is written per coordinate as ``sign(t) * sigmoid(logit(|t|) + bias)``, so the displacement
    ``bias`` moves it along its axis without ever crossing the box; a centroid ``c = tanh(...)``
    then rescales the positive and negative half-spaces (``(1 - c)`` and ``(1 + c)``) and shifts
    them by ``c``, and everything is halved into ``[-0.5, 0.5]``.

    With ``cfg.symmetric`` the bias of vertex ``i`` and of its mirror image ``mirror[i]`` (the
    template vertex at ``(-x, y, z)``) are averaged and the centroid's x is zeroed, so the output
    is exactly symmetric about x = 0.

    Buffers: ``vertices_base`` [V, 3] (unit sphere), ``faces`` [F, 3], ``mirror`` [V] (long).
    """

    vertices_base: torch.Tensor
    faces: torch.Tensor
    mirror: torch.Tensor

    def __init__(self, cfg: ModelConfig, centroid_scale: float = 0.1, bias_scale: float = 1.0) -> None:
        super().__init__()
        v, f = icosphere(cfg.template_level)
        self.register_buffer("vertices_base", v)
        self.register_buffer("faces", f)
        self.register_buffer("mirror", _mirror_permutation(v), persistent=False)
        self.symmetric = cfg.symmetric
        self.nv, self.nf = v.shape[0], f.shape[0]
        self.centroid_scale, self.bias_scale, self.obj_scale = centroid_scale, bias_scale, 0.5
        d = cfg.decoder_dim
        self.fc1 = nn.Linear(cfg.latent_dim, d)
        self.fc2 = nn.Linear(d, 2 * d)
        self.fc_centroid = nn.Linear(2 * d, 3)
        self.fc_bias = nn.Linear(2 * d, self.nv * 3)
        self.fc_color = nn.Linear(2 * d, self.nf * 3) if cfg.variant == "full" else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latent [B, D] -> (vertices [B, V, 3], face colours [B, F, 3] in (0, 1) or None)."""
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        centroid = torch.tanh(self.fc_centroid(x) * self.centroid_scale)[:, None, :]  # [B, 1, 3]
        bias = (self.fc_bias(x) * self.bias_scale).view(-1, self.nv, 3)
        if self.symmetric:
            bias = 0.5 * (bias + bias[:, self.mirror])
            centroid = centroid * centroid.new_tensor([0.0, 1.0, 1.0])
        base = self.vertices_base * self.obj_scale
        sign = torch.sign(base)
        a = base.abs().clamp(1e-6, 1 - 1e-6)
        v = torch.sigmoid(torch.log(a / (1 - a)) + bias) * sign
        v = F.relu(v) * (1 - centroid) - F.relu(-v) * (centroid + 1)
        vertices = (v + centroid) * 0.5
        colors = torch.sigmoid(self.fc_color(x)).view(-1, self.nf, 3) if self.fc_color is not None else None
        return vertices, colors


def _mirror_permutation(vertices: torch.Tensor) -> torch.Tensor:
    """Index [V] of each template vertex's mirror image about x = 0 (vertices [V, 3])."""
    mirrored = vertices * vertices.new_tensor([-1.0, 1.0, 1.0])
    dist, index = torch.cdist(mirrored.double(), vertices.double()).min(1)
    if float(dist.max()) > 1e-6:
        raise ValueError("the template is not symmetric about x = 0")
    return index


class ReconNet(nn.Module):
    """Encoder + decoder (the trainable part; what DDP wraps): images [B, 4, S, S] ->
    (vertices [B, V, 3], colours [B, F, 3] or None)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.decoder(self.encoder(images))


def multiview_iou_loss(
    renders: tuple[torch.Tensor, ...], images_a: torch.Tensor, images_b: torch.Tensor
) -> torch.Tensor:
    """The paper's multi-view silhouette loss.

    Args:
        renders: ``(R_aa, R_ba, R_ab, R_bb)``, each [B, 4, S, S]: mesh from image a / b rendered
            from view a, ..., as :meth:`ReconModel.render_multiview` returns them.
        images_a: the input views a [B, 4, S, S].
        images_b: the input views b [B, 4, S, S].

    Returns:
        Scalar ``mean_k (1 - mean_b IoU(alpha_k, target_k))``.
    """
    targets = (images_a, images_a, images_b, images_b)
    losses = [1 - iou(r[:, 3], t[:, 3]).mean() for r, t in zip(renders, targets, strict=True)]
    return sum(losses) / 4  # type: ignore[return-value]


class ReconModel(nn.Module):
    """Network, renderer and regularisers of the recon experiment.

    Args:
        cfg: architecture.
        sigma_val: σ of the soft rasterizer (the paper: 1e-4; decayed ×0.3 late in training).
        gamma_val: γ (used for the colour renders of the ``full`` variant).
        backend: rasterization backend (``None``: the device's default).
        coverage: :class:`~softras.SoftRenderer` keywords that choose another coverage family
            (``distribution``, ``squared_distance``, ``dist_shape``, ``dist_shift``,
            ``aggr_func_alpha``, ``t_conorm_p``, ``dist_eps``; docs/families.md); ``None``:
            SoftRas's (logistic on the squared distance, ``prod``, ``dist_eps`` :data:`DIST_EPS`).
    """

    def __init__(
        self,
        cfg: ModelConfig | None = None,
        sigma_val: float = 1e-4,
        gamma_val: float = 1e-4,
        backend: str | None = None,
        coverage: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else ModelConfig()
        self.net: nn.Module = ReconNet(self.cfg)
        full = self.cfg.variant == "full"
        options: dict[str, Any] = {"dist_eps": DIST_EPS, **(coverage or {})}
        self.renderer = SoftRenderer(
            image_size=self.cfg.image_size,
            sigma_val=sigma_val,
            gamma_val=gamma_val,
            aggr_func_rgb="softmax" if full else "hard",
            camera_mode="look_at",
            viewing_angle=VIEWING_ANGLE,
            backend=backend,
            **options,
        )
        dec = self.decoder
        self.laplacian_loss = LaplacianLoss(dec.vertices_base, dec.faces)
        self.flatten_loss = FlattenLoss(dec.faces)

    @property
    def core(self) -> ReconNet:
        """The :class:`ReconNet` itself (``net`` is wrapped in DistributedDataParallel while training
        on several processes)."""
        net = self.net.module if isinstance(self.net, nn.parallel.DistributedDataParallel) else self.net
        return net  # type: ignore[return-value]

    @property
    def encoder(self) -> Encoder:
        return self.core.encoder

    @property
    def decoder(self) -> Decoder:
        return self.core.decoder

    @property
    def faces(self) -> torch.Tensor:
        """Template faces [F, 3]."""
        return self.decoder.faces

    def set_sigma(self, sigma: float) -> None:
        self.renderer.set_sigma(sigma)

    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images [B, 4, S, S] -> (vertices [B, V, 3], face colours [B, F, 3] or None)."""
        return self.net(images)

    def render(self, vertices: torch.Tensor, eyes: torch.Tensor, colors: torch.Tensor | None = None) -> torch.Tensor:
        """Render meshes vertices [B, V, 3] (optional face colours [B, F, 3]) from ``look_at``
        eyes [B, 3] -> [B, 4, S, S]."""
        self.renderer.transform.set_eyes(eyes)
        textures = None if colors is None else colors[:, :, None, :]
        return self.renderer.render_mesh(Mesh(vertices, self.faces[None], textures))

    def render_multiview(
        self, images_a: torch.Tensor, images_b: torch.Tensor, eyes_a: torch.Tensor, eyes_b: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor, torch.Tensor]:
        """The four cross renders of the multi-view objective.

        Args:
            images_a: view a of B objects, [B, 4, S, S].
            images_b: view b of the same objects, [B, 4, S, S].
            eyes_a: the cameras of view a [B, 3].
            eyes_b: the cameras of view b [B, 3].

        Returns:
            ``((R_aa, R_ba, R_ab, R_bb), vertices [2B, V, 3], laplacian [2B], flatten [2B])``
            where ``R_xy`` is the mesh predicted from image x rendered from view y.
        """
        b = images_a.shape[0]
        vertices, colors = self.reconstruct(torch.cat([images_a, images_b]))
        lap = self.laplacian_loss(vertices)
        flat = self.flatten_loss(vertices)
        eyes = torch.cat([eyes_a, eyes_a, eyes_b, eyes_b])
        verts2 = torch.cat([vertices, vertices])
        cols2 = None if colors is None else torch.cat([colors, colors])
        renders = self.render(verts2, eyes, cols2)
        return tuple(renders.split(b)), vertices, lap, flat

    @torch.no_grad()
    def evaluate_iou(self, images: torch.Tensor, voxels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Voxel IoU at the voxels' resolution (the original protocol, see
        :func:`softras.metrics.voxel_iou_from_mesh`).

        Args:
            images: [B, 4, S, S]; voxels: [B, R, R, R] ground truth.

        Returns:
            ``(iou [B], vertices [B, V, 3])``.
        """
        vertices, _ = self.reconstruct(images)
        return voxel_iou_from_mesh(vertices, self.faces, voxels), vertices
