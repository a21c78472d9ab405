"""Expand ``key=a,b,c`` and ``key=range(a,b[,step])`` overrides into a grid of trial configs.

The grammar is the subset of Hydra's sweep syntax that grid searches use:

- ``key=value``: fixed in every trial (``batch_sizes=[16,128]`` is one list value),
- ``key=a,b,c`` or ``key=choice(a,b,c)``: one trial per value,
- ``key=range([start,]stop[,step])``: Python's ``range`` (stop excluded); floats allowed,
- quotes keep commas inside a value (``note='a,b'``); brackets and braces nest.

Trials are the cartesian product in the order the swept keys were given (the
first key changes slowest, as in Hydra's basic sweeper). Every trial config is
built and validated before anything runs, so a typo costs no compute.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

from trainlab.config import config_hash, to_dict
from trainlab.errors import ConfigError

_CALL = re.compile(r"^\s*(range|choice)\s*\((.*)\)\s*$", re.DOTALL)
_MAX_TRIALS = 100_000


@dataclass(frozen=True)
class Trial:
    """One point of the grid."""

    index: int
    """Position in the grid (0-based); the combined table is in this order."""
    key: str
    """Config hash of the resolved config: the trial's identity for resume."""
    overrides: tuple[str, ...]
    """The ``key=value`` items that build this trial's config."""
    params: dict[str, Any]
    """Swept key -> resolved value (as in the trial's config)."""
    config: dict[str, Any]
    """The whole resolved config as plain data."""


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` at ``sep`` outside quotes, brackets, braces and parentheses."""
    parts, depth, quote, start = [], 0, "", 0
    escaped = False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"unbalanced {ch!r} in {text!r}")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if quote:
        raise ConfigError(f"unclosed quote in {text!r}")
    if depth:
        raise ConfigError(f"unclosed bracket in {text!r}")
    parts.append(text[start:])
    return parts


def sweep_values(key: str, value: str) -> list[str] | None:
    """The values of a swept override as override text, or None when ``value`` is fixed."""
    call = _CALL.match(value)
    if call and call.group(1) == "range":
        return _range_values(key, call.group(2))
    items = split_top_level(call.group(2)) if call else split_top_level(value)
    if call is None and len(items) == 1:
        return None
    items = [item.strip() for item in items]
    if any(not item for item in items):
        raise ConfigError(f"{key}={value} has an empty value in its list; write {key}=a,b,c")
    return items


def _number(key: str, text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{key}=range(...) takes numbers, got {text!r}; write {key}=range(1,5) or range(0,1,0.25)") from None
    if not math.isfinite(number):
        raise ConfigError(f"{key}=range(...) takes finite numbers, got {text!r}")
    return number


def _range_values(key: str, args: str) -> list[str]:
    parts = args.split(",")
    if len(parts) > 3 or any(not p.strip() for p in parts):
        raise ConfigError(f"{key}=range({args}) needs stop, start,stop or start,stop,step, e.g. {key}=range(1,5)")
    if len(parts) == 1:
        parts = ["0", *parts]  # range(stop), as in Python and Hydra
    start, stop = _number(key, parts[0]), _number(key, parts[1])
    step = _number(key, parts[2]) if len(parts) == 3 else 1
    if step == 0:
        raise ConfigError(f"{key}=range({args}) has step 0; use a non-zero step")
    exact = all(isinstance(v, int) for v in (start, stop, step))
    # Counted before a single value exists: range(1,1000000000) must cost nothing to refuse.
    count = _range_length(start, stop, step)
    if count > _MAX_TRIALS:
        raise ConfigError(f"{key}=range({args}) gives {_many(count)} values; a grid holds at most {_MAX_TRIALS} trials")
    if count <= 0:
        raise ConfigError(f"{key}=range({args}) is empty (stop is excluded, as in Python's range)")
    if exact:
        return [repr(v) for v in range(start, stop, step)]
    # start + i*step (not repeated addition) so 0.1 steps do not drift; stop is excluded.
    return [repr(float(f"{start + i * step:.12g}")) for i in range(count)]


def _range_length(start: int | float, stop: int | float, step: int | float) -> int | float:
    """How many values ``start + i*step`` lie before ``stop`` (<= 0: none); inf when a float quotient
    overflows. Integer arithmetic for integers: ``len(range(...))`` overflows past sys.maxsize."""
    if all(isinstance(v, int) for v in (start, stop, step)):
        return -((start - stop) // step)  # ceil((stop - start) / step) without floats
    steps = (stop - start) / step
    return math.ceil(steps - 1e-9) if math.isfinite(steps) else math.inf


def _many(count: float) -> str:
    return "infinitely many" if count == math.inf else str(count)


def keyed_items(items: Sequence[str], *, not_pair: str, twice: str) -> list[tuple[str, str]]:
    """``(key, value)`` of every ``key=value`` item; an item without ``=`` (message ``not_pair``,
    formatted with ``item``) or a key given twice (``twice``, with ``key``) is refused in one line."""
    pairs, seen = [], set()
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(not_pair.format(item=repr(item)))
        if key in seen:
            raise ConfigError(twice.format(key=key))
        seen.add(key)
        pairs.append((key, value))
    return pairs


def expand(overrides: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Split overrides into the fixed ones and swept key -> list of value texts."""
    fixed: list[str] = []
    swept: dict[str, list[str]] = {}
    for key, value in keyed_items(
            overrides, not_pair="override {item} is not key=value (for example hidden=2,3,4)",
            twice="{key} is given twice; give each key once (key=a,b,c sweeps it)"):
        values = sweep_values(key, value)
        if values is None:
            fixed.append(f"{key}={value}")
        else:
            swept[key] = values
    return fixed, swept


def build_trials(
    overrides: Sequence[str],
    make_config: Any,
) -> tuple[list[Trial], dict[str, list[str]]]:
    """Every trial of the grid, validated: ``make_config(overrides)`` builds one config.

    Raises :class:`ConfigError` naming the first bad trial, or when two trials
    resolve to the same config (``hidden=2,2``), which would make resume ambiguous.
    """
    fixed, swept = expand(overrides)
    count = math.prod(len(v) for v in swept.values())
    if count > _MAX_TRIALS:
        raise ConfigError(f"the grid has {count} trials; more than {_MAX_TRIALS} is surely a typo")
    trials: list[Trial] = []
    by_key: dict[str, Trial] = {}
    for index, combo in enumerate(itertools.product(*swept.values())):
        chosen = [f"{k}={v}" for k, v in zip(swept, combo)]
        items = tuple(fixed + chosen)
        try:
            cfg = make_config(list(items))
        except ConfigError as exc:
            where = f" (trial {' '.join(chosen)})" if chosen else ""
            raise ConfigError(f"{exc}{where}") from None
        config = to_dict(cfg)
        trial = Trial(index, config_hash(cfg), items, {k: config[k] for k in swept}, config)
        if trial.key in by_key:
            other = by_key[trial.key]
            raise ConfigError(
                f"trials {' '.join(other.overrides[len(fixed):])} and {' '.join(chosen)} are the same config; "
                "list each value once"
            )
        by_key[trial.key] = trial
        trials.append(trial)
    return trials, swept


def trial_from_record(record: dict[str, Any]) -> Trial:
    """A :class:`Trial` from its entry in ``sweep.json``."""
    return Trial(
        index=int(record["index"]),
        key=str(record["key"]),
        overrides=tuple(record["overrides"]),
        params=dict(record["params"]),
        config=dict(record["config"]),
    )


def trial_record(trial: Trial) -> dict[str, Any]:
    return {
        "index": trial.index,
        "key": trial.key,
        "overrides": list(trial.overrides),
        "params": trial.params,
        "config": trial.config,
    }


def describe_grid(swept: dict[str, list[str]], fixed: Sequence[str]) -> str:
    """One Markdown paragraph: what is swept over what values, and what is fixed."""
    lines = [f"- `{k}`: {', '.join(v)} ({len(v)} values)" for k, v in swept.items()]
    if fixed:
        lines.append(f"- fixed: `{' '.join(fixed)}`")
    return "\n".join(lines) if lines else "- a single trial (no key is swept)"


__all__ = [
    "Trial",
    "build_trials",
    "describe_grid",
    "expand",
    "split_top_level",
    "sweep_values",
    "trial_from_record",
    "trial_record",
]
