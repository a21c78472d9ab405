"""The one image-data mixin: every recipe on image data takes and checks the same four settings."""

import pytest

from trainlab.errors import ConfigError
from trainlab.experiments._data import ImageDataConfig, SplitDataConfig
from trainlab.experiments.registry import all_experiments


def _image_recipes():
    return {name: exp.config_cls for name, exp in all_experiments().items()
            if issubclass(exp.config_cls, ImageDataConfig)}


def test_the_mnist_and_numpy_recipes_share_the_mixin():
    recipes = _image_recipes()
    assert {"mnist-binary", "mnist-grid", "mnist-reconstruct", "scratch-mlp", "scratch-sweep"} <= set(recipes)


@pytest.mark.parametrize("bad,match", [({"dataset": "cifar100"}, "dataset='cifar100' is not one of"),
                                       ({"train_limit": 5}, "train_limit must be >= 10"),
                                       ({"val_fraction": 1.0}, "val_fraction must be in")])
def test_every_image_recipe_rejects_bad_data_settings_with_one_message(bad, match):
    for name, cls in _image_recipes().items():
        if "val_fraction" in bad and not issubclass(cls, SplitDataConfig):
            continue
        with pytest.raises(ConfigError, match=match):
            cls(**bad)
