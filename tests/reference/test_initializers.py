"""Keras's initializers by every name files and scripts use (issue 21.3, 20.10): each draws
from the distribution Keras's does (compared on large draws: variance, bounds, mean), the
Identity exactly; and model configs naming them (Keras 2's VarianceScaling spellings,
Keras 3.2-3.4's OrthogonalInitializer) load and save back under Keras 3's names."""
import keras
import numpy as np
import pytest

import unrolled
from unrolled import initializers
from unrolled.saving.graph import model_config, model_from_config

SHAPE = (300, 400)
CASES = [
    ("he_normal", {}), ("lecun_normal", {}), ("lecun_uniform", {}), ("glorot_normal", {}),
    ("glorot_uniform", {}), ("he_uniform", {}),
    ("TruncatedNormal", {"mean": 0.1, "stddev": 0.3}),
    ("VarianceScaling", {"scale": 3.0, "mode": "fan_out", "distribution": "uniform"}),
    ("VarianceScaling", {"scale": 0.5, "mode": "fan_avg", "distribution": "untruncated_normal"}),
    ("VarianceScaling", {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"}),
]


def _make(module, name, kwargs):
    if kwargs:
        return getattr(module.initializers, name)(**kwargs, seed=3)
    return module.initializers.get(name)


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_draws_follow_keras_distribution(name, kwargs):
    ours = np.asarray(_make(unrolled, name, kwargs)(SHAPE, "float32"), np.float64)
    theirs = np.asarray(_make(keras, name, kwargs)(SHAPE, dtype="float32"), np.float64)
    assert ours.shape == SHAPE and ours.dtype == np.float64
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.02)
    np.testing.assert_allclose(ours.mean(), theirs.mean(), atol=0.02 * theirs.std())
    if kwargs.get("distribution") != "untruncated_normal":
        # the support: uniform bounds, or the truncation at two standard deviations
        np.testing.assert_allclose(np.abs(ours - ours.mean()).max(),
                                   np.abs(theirs - theirs.mean()).max(), rtol=0.02)


def test_identity_is_exact_and_refuses_other_ranks():
    np.testing.assert_array_equal(initializers.Identity(2.0)((3, 5), "float32"),
                                  keras.initializers.Identity(2.0)((3, 5)))
    with pytest.raises(ValueError, match="2D"):
        initializers.Identity()((2, 3, 4))


def _config(**inits):
    return {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 5, 3], "name": "in"}},
        {"class_name": "LSTM", "config": {"name": "lstm", "units": 4, **inits}}]}}


@pytest.mark.parametrize("spelling,expected", [
    ({"class_name": "OrthogonalInitializer", "config": {"gain": 1.0, "seed": None}},
     "Orthogonal"),
    ({"class_name": "IdentityInitializer", "config": {"gain": 1.0}}, "Identity"),
    ({"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_in",
                                                  "distribution": "normal", "seed": None}},
     "HeNormal"),
    ({"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_in",
                                                  "distribution": "uniform", "seed": None}},
     "LecunUniform"),
    ({"class_name": "VarianceScaling", "config": {"scale": 0.3, "mode": "fan_out",
                                                  "distribution": "truncated_normal",
                                                  "seed": None}}, "VarianceScaling"),
    ({"class_name": "TruncatedNormal", "config": {"mean": 0.0, "stddev": 0.1, "seed": None}},
     "TruncatedNormal"),
    ("he_normal", "HeNormal"),
])
def test_configs_naming_them_load_and_save_under_keras3_names(spelling, expected):
    model = model_from_config(_config(recurrent_initializer=spelling))
    assert type(model.layers[0].cell.recurrent_initializer).__name__ == expected
    written = model_config(model)["config"]["layers"][-1]["config"]["recurrent_initializer"]
    assert written["class_name"] == expected
    rebuilt = keras.layers.LSTM.from_config(
        model_config(model)["config"]["layers"][-1]["config"])
    assert type(rebuilt.cell.recurrent_initializer).__name__ == expected


@pytest.mark.parametrize("alias", ["uniform", "normal", "one", "zero"])
def test_keras_short_spellings_give_keras_initializers(alias):
    """keras.initializers.get("uniform") is a RandomUniform (Keras's MinimalRNNCell example
    writes it): the same class and arguments here."""
    theirs, ours = keras.initializers.get(alias), initializers.get(alias)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.get_config().items() <= theirs.get_config().items()
    assert set(ours.get_config()) == set(theirs.get_config())
    np.testing.assert_array_equal(
        initializers.get(alias)((3, 4), "float32").shape, (3, 4))
