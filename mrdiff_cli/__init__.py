"""mrdiff: diffusion-prior MRI reconstruction, super-resolution and uncertainty."""

__version__ = "0.1.0"
