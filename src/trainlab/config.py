"""Typed dataclass configs: YAML files and Hydra-style ``key=value`` overrides.

Every experiment's ``Config`` is a dataclass that inherits :class:`BaseConfig`.
OmegaConf does the parsing and type checking; range checks live in each
config's ``__post_init__`` through :func:`check`, so a config that exists is valid.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from trainlab.device import DEVICE_NAMES, valid_device_name
from trainlab.errors import ConfigError
from trainlab.files import not_a_file

C = TypeVar("C")

SEED_LIMIT = 2**32 - 1
"""The largest seed every generator trainlab seeds accepts: NumPy's ``RandomState`` and
scikit-learn's ``random_state`` stop at 2**32 - 1 (torch at 2**64 - 1, ``default_rng`` never)."""

FLOAT32_MAX = 3.4028234663852886e38
"""The largest float32: models train in float32, so a larger setting (an lr of 1e39) would be inf there."""


@dataclass
class BaseConfig:
    """Fields every experiment has.

    A config may declare ``RENAMED: ClassVar[dict[str, str]]``, keys an earlier version used
    mapped to their names now, so that an old command line is told the new name in its one line.
    A list field is named as the plural of the key it varies (``hiddens``, ``lrs``, ``Ts``); an
    override of the singular key sets a list of one (``hidden=50`` is ``hiddens=[50]``), so a
    tune searches a grid recipe's key one value per trial.
    """

    seed: int = 0
    """Seed for every random source (data split, init, batching, sampling)."""
    device: str = "auto"
    """auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."""
    deterministic: bool = True
    """CUDA: deterministic algorithms, same seed same tables; false: fast (cudnn.benchmark), varies run to run."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # every float setting, whatever the recipe checks next
            finite(f.name, getattr(self, f.name))
        check(0 <= self.seed <= SEED_LIMIT, f"seed must be in 0..{SEED_LIMIT} (got {self.seed})")
        check(valid_device_name(self.device), f"device={self.device!r} is not one of {DEVICE_NAMES}")


def check(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)


def one_of(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """Check that ``value`` is one of ``allowed``, naming the choices otherwise."""
    allowed = list(allowed)
    check(value in allowed, f"{name}={value!r} is not one of {', '.join(map(str, allowed))}")


def finite(name: str, value: Any) -> None:
    """Check that a float, or every float in a list, is finite and within float32's range.

    NaN and +-inf are refused, and so is a value float32 cannot hold (it becomes inf in
    training); anything that is not a float (ints, strings, None) passes.
    """
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, float):
            check(math.isfinite(v), f"{name} must be a finite number (got {v})")
            check(abs(v) <= FLOAT32_MAX, f"{name}={v:g} is beyond float32's range (|x| <= {FLOAT32_MAX:.4g}), "
                                         "the precision models train in; use a smaller value")


def positive(name: str, value: float | Sequence[float]) -> None:
    """Check that a number, or every number in a list, is finite (:func:`finite`) and > 0."""
    finite(name, value)
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        check(v > 0, f"{name} must be > 0 (got {v})")


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _singular_keys(cls: type, parsed: dict[str, str], names: Sequence[str]) -> dict[str, str]:
    """Overrides of a list field's singular key (``hidden=50``) as the list of one (``hiddens=[50]``)."""
    lists = {f.name for f in dataclasses.fields(cls)
             if f.default_factory is not dataclasses.MISSING and isinstance(f.default_factory(), list)}
    out: dict[str, str] = {}
    for key, value in parsed.items():
        plural = f"{key}s"
        if key not in names and plural in lists and plural not in parsed:
            if value.strip().startswith("["):
                raise ConfigError(f"{key} takes one value (a list of one {plural}); give a list as {plural}={value}")
            out[plural] = f"[{value}]"
        else:
            out[key] = value
    return out


def _closest(key: str, names: Sequence[str], renamed: Mapping[str, str]) -> str:
    if key in renamed:  # a key an earlier version had: name its new name, whatever difflib thinks
        return f" (renamed to {renamed[key]})"
    match = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    return f" (did you mean {match[0]}?)" if match else ""


def split_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """Turn ``["a=1", "b=x"]`` into ``{"a": "1", "b": "x"}``, rejecting malformed items."""
    out: dict[str, str] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value (for example epochs=3)")
        out[key] = value
    return out


def load_config(
    cls: type[C],
    overrides: Sequence[str] = (),
    *,
    yaml_file: str | Path | None = None,
    base: Mapping[str, Any] | None = None,
) -> C:
    """Build a validated ``cls`` from defaults <- ``base`` <- ``yaml_file`` <- ``overrides``.

    ``base`` is a plain mapping (an experiment's quick profile, CLI flags);
    overrides use OmegaConf's dotlist grammar (``hidden=5``, ``batch_sizes=[2,16]``).
    """
    names = field_names(cls)
    renamed: Mapping[str, str] = getattr(cls, "RENAMED", {})  # old key -> new key, for the error message
    layers = [OmegaConf.structured(cls)]
    sources: list[tuple[str, Mapping[str, Any]]] = []
    if base:
        sources.append(("profile", dict(base)))
    if yaml_file is not None:
        path = Path(yaml_file)
        problem = not_a_file(path)
        if problem:
            raise ConfigError(f"config file {path} {problem}; give a YAML file of key: value")
        loaded = _read_yaml(path)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of key: value")
        sources.append((str(path), loaded))
    parsed = _singular_keys(cls, split_overrides(overrides), names)
    for key in parsed:
        if key not in names:
            raise ConfigError(f"unknown key {key!r}{_closest(key, names, renamed)}; keys: {', '.join(names)}")
    for origin, mapping in sources:
        for key in mapping:
            if key not in names:
                raise ConfigError(f"unknown key {key!r} in {origin}{_closest(key, names, renamed)}")
    try:
        for _, mapping in sources:
            layers.append(OmegaConf.create(dict(mapping)))
        if parsed:
            layers.append(OmegaConf.from_dotlist([f"{k}={v}" for k, v in parsed.items()]))
        merged = OmegaConf.merge(*layers)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except ConfigError:
        raise
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe_omegaconf_error(exc)) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(_first_line(exc)) from None


def _read_yaml(path: Path) -> Any:
    """The plain data in a YAML file; syntax errors, recursive aliases and ``!!python`` tags
    (which safe loading refuses) are one ConfigError line, as is a file that cannot be read."""
    try:
        return OmegaConf.to_container(OmegaConf.load(path))
    except (OmegaConfBaseException, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read ({_first_line(exc)})") from None


def _yaml_problem(exc: BaseException) -> str:
    """PyYAML's problem and where, in one line ("did not find expected ',' (line 2, column 1)")."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _describe_omegaconf_error(exc: OmegaConfBaseException) -> str:
    # OmegaConf messages are multi-line ("full_key: ...", "object_type=..."); keep the gist.
    key = getattr(exc, "full_key", None)
    msg = _first_line(exc)
    if isinstance(exc.__cause__, ConfigError):
        return str(exc.__cause__)
    return f"{key}: {msg}" if key and key not in msg else msg


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as plain data (lists, not tuples) for YAML/JSON."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(to_dict(cfg)))


def config_hash(cfg: Any) -> str:
    """Short stable hash of the resolved config, for run folder names and sweep keys."""
    blob = json.dumps(to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:8]
