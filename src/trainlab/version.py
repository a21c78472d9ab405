"""trainlab's version, a leaf module: run folders record it without importing the public API."""

__version__ = "0.1.0"
