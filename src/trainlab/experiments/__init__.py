"""One recipe module per experiment; see :mod:`trainlab.experiments.registry`."""
