import math
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainlab.config import SEED_LIMIT, BaseConfig, check, config_hash, finite, load_config, positive, to_yaml
from trainlab.errors import ConfigError


@dataclass
class Demo(BaseConfig):
    lr: float = 0.1
    """learning rate"""
    batch_sizes: List[int] = field(default_factory=lambda: [2, 16])
    """batch sizes"""
    data_dir: Optional[str] = None
    """folder"""
    name: str = "x"
    """a name"""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive("lr", self.lr)
        positive("batch_sizes", self.batch_sizes)


def test_defaults_and_overrides_layer_in_order(tmp_path):
    yaml = tmp_path / "c.yaml"
    yaml.write_text("lr: 0.5\nname: from_yaml\n")
    cfg = load_config(Demo, ["name=cli", "batch_sizes=[1,4]"], yaml_file=yaml, base={"lr": 0.3, "name": "quick"})
    assert cfg.lr == 0.5  # yaml beats the profile
    assert cfg.name == "cli"  # overrides beat yaml
    assert cfg.batch_sizes == [1, 4]
    assert cfg.data_dir is None
    assert load_config(Demo, ["data_dir=/tmp/x"]).data_dir == "/tmp/x"


@pytest.mark.parametrize(
    "override, fragment",
    [
        (["lrr=1"], "did you mean lr"),
        (["lr=-1"], "lr must be > 0"),
        (["lr=abc"], "lr"),
        (["batch_sizes=[0,2]"], "batch_sizes must be > 0"),
        (["seed=-3"], "seed"),
        (["device=tpu"], "device"),
        (["lr"], "key=value"),
    ],
)
def test_bad_input_is_one_config_error(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(Demo, override)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


@dataclass
class Loose(BaseConfig):
    """Float settings its own checks would let through: the base config refuses them when non-finite."""

    momentum: float = 0.9
    """a float only checked to be >= 0"""
    scales: List[float] = field(default_factory=lambda: [0.0, 1.0])
    """floats with no check"""
    cap: Optional[float] = None
    """an optional float"""
    steps: int = 3
    """an int"""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.momentum >= 0, "momentum must be >= 0")


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e39", "-3.5e38"])
@pytest.mark.parametrize("cls, key, template", [(Demo, "lr", "{}"), (Loose, "momentum", "{}"),
                                                (Loose, "scales", "[1.0,{}]"), (Loose, "cap", "{}")])
def test_non_finite_floats_are_refused_in_one_line_naming_the_key(cls, key, template, text):
    with pytest.raises(ConfigError) as info:
        load_config(cls, [f"{key}={template.format(text)}"])
    message = str(info.value)
    assert message.startswith(key) and "\n" not in message
    assert "finite" in message or "float32" in message


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**40, 10**40))
def test_finite_passes_exactly_the_float32_representable_numbers(value):
    # the oracle: NumPy's float32 limits, not trainlab's constant
    ok = not isinstance(value, float) or (math.isfinite(value) and abs(value) <= float(np.finfo(np.float32).max))
    if ok:
        finite("x", value)
        finite("x", [1.0, value])
    else:
        with pytest.raises(ConfigError, match="^x"):
            finite("x", [1.0, value])


def test_positive_refuses_infinity_and_nan():
    for bad in (float("inf"), float("nan"), [1.0, float("inf")]):
        with pytest.raises(ConfigError, match="lr must be a finite number"):
            positive("lr", bad)
    assert load_config(Loose, ["cap=3.4e38", "scales=[-1e30]"]).cap == 3.4e38


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Demo, yaml_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("typo_key: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'typo_key'"):
        load_config(Demo, yaml_file=bad)


def test_hash_and_yaml_are_stable():
    a, b = load_config(Demo), load_config(Demo, ["lr=0.1"])
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(load_config(Demo, ["lr=0.2"]))
    assert "lr: 0.1" in to_yaml(a)


def test_check():
    check(True, "fine")
    with pytest.raises(ConfigError, match="nope"):
        check(False, "nope")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("a: [1, 2\n", "line 2"),  # malformed flow list
        ("a: &x [*x]\n", "recursive"),
        ("seed: !!python/object/apply:os.system ['true']\n", "python/object/apply"),
        ("seed: 1\n\tlr: 2\n", "not valid YAML"),
    ],
)
def test_hostile_yaml_is_one_config_error(tmp_path, text, fragment):
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(Demo, yaml_file=path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_unreadable_yaml_is_one_config_error(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ConfigError, match="binary.yaml"):
        load_config(Demo, yaml_file=path)


@pytest.mark.parametrize("seed", [SEED_LIMIT + 1, 2**64, 10**23])
def test_seed_beyond_every_generator_is_refused(seed):
    with pytest.raises(ConfigError, match=f"seed must be in 0..{SEED_LIMIT}"):
        load_config(Demo, [f"seed={seed}"])


def test_largest_seed_seeds_every_generator():
    # The oracle: the generators themselves accept the limit (RandomState is the strictest).
    import numpy as np
    import torch

    cfg = load_config(Demo, [f"seed={SEED_LIMIT}"])
    np.random.RandomState(cfg.seed)
    torch.Generator().manual_seed(cfg.seed)
    with pytest.raises(ValueError):
        np.random.RandomState(SEED_LIMIT + 1)


def test_a_renamed_key_names_its_new_name():
    from trainlab.experiments.ddpm_schedules import Config as Schedules
    from trainlab.experiments.scratch_sweep import Config as Sweep

    with pytest.raises(ConfigError, match=r"unknown key 'others' \(renamed to schedules\)"):
        load_config(Schedules, ["others=[cosine]"])
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rates' \(renamed to lrs\)"):
        load_config(Sweep, ["learning_rates=[0.1]"])
    assert load_config(Sweep, ["lrs=[0.1]"]).lrs == [0.1]


def test_a_list_fields_singular_key_sets_a_list_of_one():
    assert load_config(Demo, ["batch_size=8"]) == load_config(Demo, ["batch_sizes=[8]"])
    with pytest.raises(ConfigError, match=r"^batch_size takes one value .* give a list as batch_sizes=\[2,4\]$"):
        load_config(Demo, ["batch_size=[2,4]"])
    with pytest.raises(ConfigError, match=r"unknown key 'batch_size'"):  # both at once: the list wins, no guess
        load_config(Demo, ["batch_size=8", "batch_sizes=[2]"])
    with pytest.raises(ConfigError, match="batch_sizes"):  # the list's own checks apply
        load_config(Demo, ["batch_size=-1"])
