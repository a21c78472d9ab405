"""trainlab: classic deep-learning studies as fast, reproducible experiments."""

__version__ = "0.1.0"
