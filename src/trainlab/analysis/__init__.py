"""Analyses of trained models: receptive fields (computed and measured) and reconstructions."""

from trainlab.analysis.receptive_field import empirical_receptive_field, receptive_fields

__all__ = ["empirical_receptive_field", "receptive_fields"]
