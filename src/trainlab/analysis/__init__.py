"""Analyses of trained models: receptive fields (computed and measured), reconstructions, t-SNE maps."""

from trainlab.analysis.embedding import tsne
from trainlab.analysis.receptive_field import empirical_receptive_field, receptive_fields

__all__ = ["empirical_receptive_field", "receptive_fields", "tsne"]
