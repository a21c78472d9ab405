"""Parse a tune's search space: ``key=loguniform(a,b)``, ``uniform(a,b)``, ``int(a,b[,log])``, ``choice(a,b,c)``.

The grammar sits beside the grid's (:mod:`trainlab.sweeps.grid`): a plain ``key=value`` is
fixed in every trial, and ``choice(...)`` reads its values as the grid reads a comma list.
The space is checked before a trial runs: an unknown key, an empty or reversed range, a log
range that reaches zero, or a value the experiment's config refuses at either end of a range
is one :class:`ConfigError` line. Optuna itself is imported by the caller only (a
:class:`Param` hands ``suggest`` an Optuna trial), so parsing needs no Optuna.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from trainlab.errors import ConfigError
from trainlab.sweeps.grid import keyed_items, split_top_level

_CALL = re.compile(r"^\s*(loguniform|uniform|int|choice)\s*\((.*)\)\s*$", re.DOTALL)
KINDS = ("loguniform", "uniform", "int", "choice")


@dataclass(frozen=True)
class Param:
    """One searched key."""

    key: str
    """The config field."""
    kind: str
    """One of :data:`KINDS`."""
    low: float = 0.0
    """Lower bound (inclusive) of a range."""
    high: float = 0.0
    """Upper bound (inclusive) of a range."""
    log: bool = False
    """Sample a range on a log scale (``loguniform``, ``int(a,b,log)``)."""
    choices: tuple[str, ...] = ()
    """The values of ``choice(...)``, as override text."""

    def ends(self) -> list[str]:
        """The values that bound this parameter, as override text: the config must accept each."""
        if self.kind == "choice":
            return list(self.choices)
        return [_text(self.low), _text(self.high)]

    def suggest(self, trial: Any) -> str:
        """Ask an Optuna trial for this key's value; return the override item ``key=value``."""
        if self.kind == "choice":
            value: Any = trial.suggest_categorical(self.key, list(self.choices))
        elif self.kind == "int":
            value = trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        else:
            value = trial.suggest_float(self.key, self.low, self.high, log=self.log)
        return self.item(value)

    def item(self, value: Any) -> str:
        """The override item ``key=value`` of one sampled value (a Ray worker gets the values, not the trial)."""
        return f"{self.key}={_text(value) if not isinstance(value, str) else value}"

    def describe(self) -> str:
        if self.kind == "choice":
            return f"`{self.key}`: one of {', '.join(self.choices)}"
        scale = "log scale" if self.log else "linear scale"
        what = "integers" if self.kind == "int" else "reals"
        return f"`{self.key}`: {what} from {_text(self.low)} to {_text(self.high)} ({scale})"


def _text(value: float | int) -> str:
    return repr(int(value)) if isinstance(value, int) else repr(float(value))


def parse_space(items: Sequence[str]) -> tuple[list[str], list[Param]]:
    """Split ``key=...`` items into the fixed override items and the searched parameters."""
    fixed: list[str] = []
    params: list[Param] = []
    for key, value in keyed_items(
            items, not_pair="{item} is not key=value (for example lr=loguniform(1e-4,1e-1))",
            twice="{key} is given twice; give each key once"):
        call = _CALL.match(value)
        if call is None:
            fixed.append(f"{key}={value}")
        else:
            params.append(_param(key, call.group(1), [a.strip() for a in split_top_level(call.group(2))]))
    if not params:
        raise ConfigError("the search space has no searched key; give one such as lr=loguniform(1e-4,1e-1)")
    return fixed, params


def _param(key: str, kind: str, args: list[str]) -> Param:
    form = f"{key}={kind}({','.join(args)})"
    if kind == "choice":
        if any(not a for a in args) or len(set(args)) != len(args):
            raise ConfigError(f"{form} needs distinct non-empty values, e.g. {key}=choice(relu,tanh)")
        return Param(key, kind, choices=tuple(args))
    log = kind == "loguniform"
    if kind == "int" and len(args) == 3 and args[2] == "log":
        args, log = args[:2], True
    if len(args) != 2:
        extra = " or int(a,b,log)" if kind == "int" else ""
        raise ConfigError(f"{form} takes two bounds, {kind}(low,high){extra}")
    low, high = (_bound(form, a, integer=kind == "int") for a in args)
    if low >= high:
        raise ConfigError(f"{form} needs low < high")
    if log and low <= 0:
        raise ConfigError(f"{form} searches on a log scale, so its low bound must be > 0")
    return Param(key, kind, low, high, log)


def _bound(form: str, text: str, integer: bool) -> float | int:
    try:
        value: float | int = int(text) if integer else float(text)
    except ValueError:
        what = "integers" if integer else "numbers"
        raise ConfigError(f"{form} takes {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{form} takes finite bounds, got {text!r}")
    return value


def check_space(fixed: Sequence[str], params: Sequence[Param], make_config: Callable[[list[str]], Any]) -> Any:
    """Build the config at every end of every range (the others at their first end) so a key or a
    value the experiment refuses stops the tune before it starts; return the config of the first ends."""
    firsts = [f"{p.key}={p.ends()[0]}" for p in params]
    base = _config(make_config, [*fixed, *firsts], f" (at {' '.join(firsts)})")
    for i, p in enumerate(params):
        for end in p.ends()[1:]:
            items = [*fixed, *firsts[:i], f"{p.key}={end}", *firsts[i + 1:]]
            _config(make_config, items, f" (at {p.key}={end})")
    return base


def _config(make_config: Callable[[list[str]], Any], items: list[str], where: str) -> Any:
    try:
        return make_config(items)
    except ConfigError as exc:
        raise ConfigError(f"{exc}{where}") from None


__all__ = ["KINDS", "Param", "check_space", "parse_space"]
