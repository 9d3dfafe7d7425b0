"""vidssl: self-supervised video representation learning in one package."""

__version__ = "0.1.0"
