from dataclasses import dataclass, field
from typing import List, Optional

import pytest

from trainlab.config import SEED_LIMIT, BaseConfig, check, config_hash, load_config, positive, to_yaml
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
