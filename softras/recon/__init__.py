"""Single-view mesh reconstruction (the SoftRas paper's ShapeNet experiment, Sec. 4.1).

* :mod:`softras.recon.nmr` -- reader for the NMR dataset format (24 views + 32³ voxels per object);
* :mod:`softras.recon.dataset_builder` / :mod:`softras.recon.procedural` -- build that format
  from any folder of meshes, or from built-in procedural shape classes (no download);
* :mod:`softras.recon.model` -- encoder/decoder deforming a 642-vertex sphere, silhouette and
  ``full`` (colour) variants;
* :mod:`softras.recon.train` -- the multi-view IoU objective, exact resume, DDP
  (:mod:`softras.recon.ddp`);
* :mod:`softras.recon.evaluate` / :mod:`softras.recon.baselines` -- per-class voxel IoU in the
  paper's Table 1 layout, with retrieval and mean-shape baselines (and, on request, the visual
  hull of the ground-truth silhouettes as a reference);
* :mod:`softras.recon.refine` -- test-time fit of a reconstruction to its input silhouette
  (the network's latent code optimised through the soft renderer).

CLI: ``softras recon {make-dataset,convert,train,eval}`` (see docs/reconstruction.md).
"""

from .nmr import CLASS_NAMES, NMRDataset, convert_to_npy

__all__ = ["CLASS_NAMES", "NMRDataset", "convert_to_npy"]
