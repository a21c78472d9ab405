"""The one vocabulary of activation names (no torch: the NumPy network uses it too).

``identity`` is the name for "no activation", as in ``torch.nn.Identity`` and
scikit-learn's ``activation="identity"``. The NumPy network used to call it ``linear`` and the
autoencoders ``none``; :func:`activation_name` reads those spellings as ``identity`` so saved
configs, sweeps and ``.npz`` networks keep working.
"""

from __future__ import annotations

ACTIVATION_NAMES = ("relu", "sigmoid", "tanh", "identity")
"""Every hidden activation any trainlab model offers, by its one name."""

ALIASES = {"linear": "identity", "none": "identity"}
"""Older spellings, accepted on input only."""


def activation_name(name: str) -> str:
    """``name`` in the one vocabulary (an alias becomes ``identity``; anything else is returned as is)."""
    return ALIASES.get(name, name)
