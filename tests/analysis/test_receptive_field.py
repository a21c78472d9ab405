"""Computed receptive fields against the ones measured from input gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from trainlab.analysis.receptive_field import (
    LayerSpec,
    empirical_receptive_field,
    layers_from_module,
    parse_spec,
    receptive_field_size,
    receptive_fields,
)
from trainlab.errors import ConfigError

STUDY_ROWS = [
    ["conv2d(3,1)", "conv2d(3,1)", "conv2d(1,1)", "maxpool2d(2,2)", "conv2d(2,2)"],
    ["conv2d(3,1)", "maxpool2d(2,2)", "conv2d(2,2)", "maxpool2d(2,2)", "conv2d(3,1)"],
    ["conv2d(5,1)", "maxpool2d(3,1)", "conv2d(4,1)", "maxpool2d(2,2)", "conv2d(3,1)"],
    ["conv2d(7,2)", "conv2d(5,1)", "conv2d(3,2)", "conv2d(3,1)", "conv2d(1,1)"],
    ["conv2d(4,1)", "conv2d(3,2)", "maxpool2d(2,2)", "conv2d(3,1)", "maxpool2d(2,2)"],
    ["conv2d(7,2)", "conv2d(5,2)", "maxpool2d(2,2)", "conv2d(5,2)", "conv2d(7,2)"],
    ["conv2d(3,3)", "maxpool2d(2,2)", "conv2d(5,3)", "maxpool2d(3,3)", "conv2d(5,1)"],
    ["conv2d(4,2)", "maxpool2d(2,2)", "conv2d(3,1)", "conv2d(1,1)", "conv2d(2,1)"],
    ["conv2d(11,2)", "conv2d(7,2)", "maxpool2d(2,2)", "conv2d(5,2)", "conv2d(3,1)"],
    # padding and dilation, which the study's table does not use
    ["conv2d(3,1,1)", "conv2d(k=3,s=2,p=2,d=2)", "maxpool2d(3,2,1)", "avgpool2d(2)"],
    ["conv2d(1,3)", "conv2d(3,1,0,3)", "maxpool2d(2,1,1,2)"],
]


def _check_against_gradients(specs, seed: int = 0) -> None:
    last = receptive_fields(specs)[-1]
    measured = empirical_receptive_field(specs, torch.Generator().manual_seed(seed))
    assert measured.height == measured.width == last.size
    # the centre output pixel (row r) sees input rows start + r * jump -/+ (size - 1) / 2
    assert measured.first_row == last.start + measured.row * last.jump - (last.size - 1) / 2
    assert measured.first_col == last.start + measured.col * last.jump - (last.size - 1) / 2


@pytest.mark.parametrize("specs", STUDY_ROWS, ids=[f"row{i + 1}" for i in range(len(STUDY_ROWS))])
def test_computed_equals_empirical(specs):
    _check_against_gradients(specs)


@st.composite
def stacks(draw):
    specs = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv2d", "maxpool2d", "avgpool2d"]))
        k, s = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))  # torch's limit for pooling
        d = 1 if kind == "avgpool2d" else draw(st.integers(1, 2))
        specs.append(f"{kind}({k},{s},{p},{d})")
    return specs


@settings(max_examples=25, deadline=None)
@given(stacks(), st.integers(0, 1000))
def test_random_stacks_match_gradients(specs, seed):
    _check_against_gradients(specs, seed)


def test_seed_row_one_is_eight():
    """The only cell the study fills in: row 1 is 8 x 8."""
    assert receptive_field_size(STUDY_ROWS[0]) == 8
    assert [f.size for f in receptive_fields(STUDY_ROWS[0])] == [3, 5, 5, 6, 8]
    assert [f.jump for f in receptive_fields(STUDY_ROWS[0])] == [1, 1, 1, 2, 4]


def test_module_gives_the_same_layers_as_specs():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(8, 8, 3, dilation=2, padding="same"), nn.Dropout(0.1)),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.Conv2d(8, 4, (3, 5), stride=(1, 2)),
    )
    assert layers_from_module(net) == [
        parse_spec("conv2d(3,1,1)"),
        parse_spec("maxpool2d(2,2)"),
        parse_spec("conv2d(3,1,2,2)"),
        parse_spec("avgpool2d(3,2,1)"),
        parse_spec("conv2d(3,1)"),
    ]
    assert layers_from_module(net, axis=1)[-1] == LayerSpec("conv", 5, 2)
    assert receptive_field_size(net) == receptive_field_size(layers_from_module(net))


def test_layers_that_mix_every_position_are_refused():
    with pytest.raises(ConfigError, match="Flatten"):
        layers_from_module(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten(), nn.Linear(4, 2)))


@pytest.mark.parametrize("bad", ["conv3d(3,1)", "conv2d()", "conv2d(3,1,0,1,7)", "conv2d(a,1)", "pool(2)", "conv2d 3"])
def test_bad_specs_name_themselves(bad):
    with pytest.raises(ConfigError, match=rf"bad layer spec '{bad[:4]}"):
        parse_spec(bad)


def test_zero_sizes_refused_and_defaults():
    with pytest.raises(ConfigError, match="kernel, stride and dilation"):
        parse_spec("maxpool2d(2,0)")
    with pytest.raises(ConfigError, match="not the string"):
        receptive_fields("conv2d(3,1)")
    assert parse_spec("MaxPool2d(3)") == LayerSpec("maxpool", 3, 3)  # pooling stride defaults to kernel
    assert parse_spec("conv2d(k=5, d=2)") == LayerSpec("conv", 5, 1, 0, 2)
    assert receptive_field_size([]) == 1
