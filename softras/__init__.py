"""softras: the Soft Rasterizer as a differentiable renderer for any PyTorch device."""

__version__ = "0.1.0"
