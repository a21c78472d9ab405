"""metrics.jsonl records and config.yaml as what trackers take: (tag, value, step) scalars and flat params.

Records are heterogeneous (an epoch of one curve, a step of a sampler, one row of a grid),
so one rule turns any of them into scalars:

* the **x axis** is the record's ``step``, ``epoch`` or ``t`` (the first present, an integer);
  a record with none of them is placed at its index in the file;
* **labels** tell curves apart and become the tag's prefix, in the record's order:
  text and true/false fields always, and, in a record with an x axis, integer fields too
  (``seed``, ``batch_size``: at one epoch several batch sizes' losses are separate curves).
  ``{"activation": "relu", "epoch": 3, "train_loss": 0.2}`` gives ``activation=relu/train_loss``
  at step 3;
* every other number is a **value**; null (a NaN, as JSON writes it), lists and objects are left out.

A float that names a curve (a swept learning rate in a record with an epoch) stays a value:
nothing in the record says it is a label.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, NamedTuple

AXES = ("step", "epoch", "t")
"""Record fields that are the x axis, in order of preference."""


class Scalar(NamedTuple):
    tag: str
    value: float
    step: int


def scalars(record: Mapping[str, Any], index: int) -> list[Scalar]:
    """The scalars of one metrics.jsonl record; ``index`` is its place among the file's records."""
    axis = next((k for k in AXES if _is_int(record.get(k))), None)
    step = record[axis] if axis is not None else index
    labels, values = [], []
    for key, value in record.items():
        if key == axis or value is None:
            continue
        if isinstance(value, (str, bool)) or (axis is not None and _is_int(value)):
            labels.append(f"{key}={_label(value)}")
        elif isinstance(value, (int, float)):
            values.append((key, float(value)))
    prefix = "".join(f"{label}/" for label in labels)
    return [Scalar(prefix + key, value, step) for key, value in values]


def numbers(summary: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a summary (true/false and text left out: they are not measurements)."""
    return {k: float(v) for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """A resolved config as one level of ``a.b`` keys; lists and null are kept as their JSON text."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (str, int, float, bool)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _label(value: Any) -> str:
    # A slash would split the tag into deeper groups than the record has.
    return str(value).replace("/", "_")
