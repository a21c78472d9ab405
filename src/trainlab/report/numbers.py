"""Numbers for reading: the one rounding rule of report.md, report.html, the tour and ``trainlab runs``.

The CSV files, ``summary.json`` and ``metrics.jsonl`` keep full precision; only
what people read is rounded, and always by this rule:

- integers stay integers (``16``, ``1024``);
- missing values and NaN (JSON stores NaN as ``null``) read ``n/a``;
- percentages show 2 decimals (``96.70``). A value is a percentage when its name
  says so - one of its ``_``/``-``-separated words is ``acc``, ``accuracy``,
  ``pct`` or ``percent``, or it ends in ``%`` - and it (or, in a table, some value
  of its column) is above 1: accuracies kept as fractions in [0, 1], as the NumPy
  network's are, are not percentages and follow the next rule;
- other numbers show 4 significant digits (``0.06921``, ``1.235e-05``), except
  that from 10^4 on they round to whole numbers (``12346`` reads better than
  ``1.235e+04``).

Units follow from names too: percentages ``%``, a word ``s``/``sec``/``seconds``
seconds, ``ms`` milliseconds.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

MISSING = "n/a"
PERCENT_WORDS = {"acc", "accuracy", "pct", "percent"}
UNIT_WORDS = {"s": "s", "sec": "s", "seconds": "s", "ms": "ms"}


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[_\-\s]+", name.lower()) if w]


def percent_name(name: str) -> bool:
    """Whether ``name`` says its values are percentages (``test_acc``, ``val_acc_std``, ``error %``)."""
    return name.rstrip().endswith("%") or any(w in PERCENT_WORDS for w in _words(name))


def _number(value: Any) -> float | int | None:
    """``value`` as a Python int or float, or None when it is no number (bools are no numbers)."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # NumPy / torch scalars
        value = value.item()
    if isinstance(value, bool):
        return None
    return value if isinstance(value, (int, float)) else None


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (NumPy and torch scalars too; bools are no numbers)."""
    return _number(value) is not None


def is_percent(name: str, values: Iterable[Any]) -> bool:
    """The rule above for a column ``name`` holding ``values``."""
    if not percent_name(name):
        return False
    return any(n is not None and math.isfinite(n) and abs(n) > 1 for n in map(_number, values))


def format_number(value: Any, percent: bool = False) -> str:
    """One value by the rule; strings and bools come back as they are, lists item by item."""
    if value is None:
        return MISSING
    if isinstance(value, (list, tuple)):
        return ", ".join(format_number(v, percent) for v in value)
    number = _number(value)
    if number is None:
        return str(value)
    if isinstance(number, int):
        return str(number)
    if not math.isfinite(number):
        return MISSING if math.isnan(number) else ("inf" if number > 0 else "-inf")
    if number == 0:
        number = 0.0  # never "-0"
    if percent:
        return f"{number:.2f}"
    if 1e4 <= abs(number) < 1e15:
        return str(round(number))
    return format(number, ".4g")


def format_value(value: Any, name: str = "") -> str:
    """A single named value (a summary entry, a headline number)."""
    return format_number(value, is_percent(name, [value]))


def format_column(values: Sequence[Any], name: str = "") -> list[str]:
    """A table column: percentages are decided once for the whole column, so its decimals line up."""
    percent = is_percent(name, values)
    return [format_number(v, percent) for v in values]


def unit(name: str, values: Iterable[Any] = ()) -> str:
    """The unit a name implies (``%``, ``s``, ``ms``), or ``""``; ``values`` decide percentages."""
    if is_percent(name, values):
        return "%"
    for word in reversed(_words(name)):
        if word in UNIT_WORDS:
            return UNIT_WORDS[word]
    return ""


def with_unit(value: Any, name: str) -> str:
    """A named value for reading with its unit: ``91.56%``, ``0.4426 s``, ``16``."""
    u = unit(name, [value]) if is_number(value) else ""
    return format_value(value, name) + (u if u == "%" else f" {u}" if u else "")


def format_duration(seconds: float) -> str:
    """A wall time for reading: ``0.42 s``, ``6.3 s``, ``14 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if round(seconds) < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
