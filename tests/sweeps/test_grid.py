"""The sweep grammar against Python's own range, NumPy's arange and itertools.product."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import List

import numpy as np
import pytest

from trainlab.config import BaseConfig, load_config
from trainlab.errors import ConfigError
from hypothesis import given, settings
from hypothesis import strategies as st

from trainlab.sweeps.grid import _range_length, build_trials, expand, split_top_level, sweep_values


@pytest.mark.parametrize("start", [-3, 0, 2])
@pytest.mark.parametrize("stop", [-4, 0, 5, 9])
@pytest.mark.parametrize("step", [None, 1, 2, -1, -3])
def test_integer_range_is_pythons_range(start, stop, step):
    args = f"{start},{stop}" + (f",{step}" if step is not None else "")
    if start == 0 and step is None:
        args = f"{stop}"  # the one-argument form
    expected = list(range(start, stop, step if step is not None else 1))
    if not expected:
        with pytest.raises(ConfigError, match="empty"):
            sweep_values("k", f"range({args})")
    else:
        assert [int(v) for v in sweep_values("k", f"range({args})")] == expected


@pytest.mark.parametrize("start,stop,step", [(0, 1, 0.1), (0.5, 2, 0.25), (1, 0, -0.2), (0, 1e-3, 1e-4)])
def test_float_range_matches_arange_without_drift(start, stop, step):
    got = [float(v) for v in sweep_values("lr", f"range({start}, {stop}, {step})")]
    expected = np.arange(start, stop, step)
    assert len(got) == len(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    # start + i*step, rounded: 0.1 steps give 0.3, not 0.30000000000000004
    assert all(len(repr(v)) <= 14 for v in got)


def test_comma_lists_choice_and_fixed_values():
    fixed, swept = expand([
        "a=1,2,3", "b=choice(x, y)", "c=[1,2]", "d='p,q'", "e={u: 1, v: 2}", 'f="r,s",t', "g=5", "h=range(2)",
    ])
    assert swept == {"a": ["1", "2", "3"], "b": ["x", "y"], "f": ['"r,s"', "t"], "h": ["0", "1"]}
    assert fixed == ["c=[1,2]", "d='p,q'", "e={u: 1, v: 2}", "g=5"]


def test_split_respects_nesting_and_escaped_quotes():
    assert split_top_level("[1,[2,3]],(4,5),'a\\',b',c") == ["[1,[2,3]]", "(4,5)", "'a\\',b'", "c"]


@pytest.mark.parametrize(
    "item,match",
    [
        ("k=1,,2", "empty value"),
        ("k=,", "empty value"),
        ("k=choice()", "empty value"),
        ("k=range()", "start,stop"),
        ("k=range(1,2,3,4)", "start,stop"),
        ("k=range(1,5,0)", "step 0"),
        ("k=range(a,5)", "takes numbers"),
        ("k=range(5,1)", "empty"),
        ("k=[1,2", "unclosed bracket"),
        ("k='a,b", "unclosed quote"),
        ("novalue", "not key=value"),
    ],
)
def test_bad_sweep_syntax_is_one_line_config_error(item, match):
    with pytest.raises(ConfigError, match=match) as info:
        expand([item])
    assert "\n" not in str(info.value)


def test_repeated_key_is_rejected():
    with pytest.raises(ConfigError, match="given twice"):
        expand(["k=1,2", "k=3"])


@dataclass
class Toy(BaseConfig):
    width: int = 4
    """Width."""
    lr: float = 0.1
    """Learning rate."""
    act: str = "relu"
    """Activation."""
    sizes: List[int] = field(default_factory=lambda: [1])
    """Sizes."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width <= 0:
            raise ConfigError(f"width must be > 0 (got {self.width})")


def make(items):
    return load_config(Toy, items)


def test_trials_are_the_product_first_key_slowest_with_typed_values():
    trials, swept = build_trials(["width=1,2,3", "act=relu,tanh", "lr=range(0.1,0.3,0.1)", "sizes=[2,16]"], make)
    expected = list(itertools.product([1, 2, 3], ["relu", "tanh"], [0.1, 0.2]))
    assert [(t.params["width"], t.params["act"], t.params["lr"]) for t in trials] == expected
    assert [t.index for t in trials] == list(range(len(expected)))
    assert all(t.config["sizes"] == [2, 16] for t in trials)
    assert isinstance(trials[0].params["width"], int) and isinstance(trials[0].params["lr"], float)
    assert len({t.key for t in trials}) == len(trials) == math.prod(len(v) for v in swept.values())


def test_no_sweep_is_one_trial_and_keys_are_config_hashes():
    (only,), swept = build_trials(["width=7"], make)
    assert swept == {} and only.params == {} and only.config["width"] == 7
    (again,), _ = build_trials(["width=7", "lr=0.1"], make)  # lr=0.1 is the default: same config
    assert again.key == only.key


def test_every_trial_is_validated_before_anything_runs():
    with pytest.raises(ConfigError, match=r"width must be > 0 \(got -1\) \(trial width=-1\)"):
        build_trials(["width=2,-1"], make)
    with pytest.raises(ConfigError, match="trial width=abc"):
        build_trials(["width=2,abc"], make)
    with pytest.raises(ConfigError, match="unknown key 'depth'"):
        build_trials(["depth=1,2"], make)


def test_two_trials_with_one_config_are_rejected():
    with pytest.raises(ConfigError, match="same config"):
        build_trials(["lr=0.1,1e-1"], make)


@pytest.mark.parametrize("args", ["1,1000000000", f"-5,{10**30}", f"{10**40}", "0,1e300,1e-300", "0,1,1e-9"])
def test_huge_range_is_refused_in_one_line(args):
    with pytest.raises(ConfigError, match="a grid holds at most 100000 trials") as info:
        sweep_values("epochs", f"range({args})")
    assert "\n" not in str(info.value)


def test_huge_range_is_refused_before_it_is_expanded():
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(ConfigError):
            sweep_values("epochs", "range(1,3000000)")  # 3 million values would take >100 MB as texts
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@given(start=st.integers(-10**6, 10**6), stop=st.integers(-10**6, 10**6), step=st.integers(-10**5, 10**5).filter(bool))
@settings(max_examples=200, deadline=None)
def test_range_length_is_pythons_len(start, stop, step):
    assert max(_range_length(start, stop, step), 0) == len(range(start, stop, step))


def test_grid_product_is_counted_before_any_trial_is_built():
    built = []
    with pytest.raises(ConfigError, match="the grid has 1000000 trials"):
        build_trials(["a=range(1000)", "b=range(1000)"], lambda items: built.append(items))
    assert built == []
