"""Two layers of one name (issue 26.3): refused when the model is built, as Keras refuses
them, and refused in a file, whose nodes and weights are matched by layer name: a legacy
``.h5`` listing a name twice used to load the wrong weights without a word."""
import json
from types import SimpleNamespace

import h5py
import keras
import numpy as np
import pytest

from unrolled import layers as L
from unrolled.io.safety import ModelFileError
from unrolled.models import Model, Sequential, load_model


def test_sequential_refuses_a_second_layer_of_the_same_name_as_keras():
    for make in (lambda m: m.Sequential([m.layers.Dense(2, name="d"), m.layers.Dense(2, name="d")]),
                 lambda m: m.Sequential([m.Input((3,)), m.layers.Dense(2, name="d"),
                                         m.layers.Dense(2, name="d")])):
        with pytest.raises(ValueError, match="should have unique names") as ref:
            make(keras)
        with pytest.raises(ValueError, match="should have unique names") as ours:
            make(SimpleNamespace(Sequential=Sequential, Input=L.Input, layers=L))
        assert str(ours.value) == str(ref.value)


@pytest.mark.parametrize("shape", ["chain", "two_inputs"])
def test_functional_refuses_duplicate_names_as_keras(shape):
    def build(m, Input, Model_):
        if shape == "chain":
            a = Input((3,))
            return Model_(a, m.Dense(3, name="d")(m.Dense(3, name="d")(a)))
        a, b = Input((3,), name="x"), Input((3,), name="x")
        return Model_([a, b], m.Add()([a, b]))
    with pytest.raises(ValueError, match="All operation names should be unique") as ref:
        build(keras.layers, keras.Input, keras.Model)
    with pytest.raises(ValueError, match="All operation names should be unique") as ours:
        build(L, L.Input, Model)
    assert str(ours.value) == str(ref.value)


def test_a_shared_layer_is_one_layer_not_a_duplicate():
    a = L.Input((3,))
    shared = L.Dense(3, name="s")
    model = Model(a, shared(shared(a)))
    assert [layer.name for layer in model.layers][1:] == ["s"]


def _legacy_h5(tmp_path):
    """A legacy .h5 as Keras writes it: two Dense layers of equal shapes, 'first' and
    'second', whose weights differ."""
    rng = np.random.default_rng(0)
    ref = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="first"),
                            keras.layers.Dense(4, name="second")])
    ref.set_weights([rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()])
    path = tmp_path / "model.h5"
    ref.save(path)
    return path


def test_a_legacy_h5_listing_a_layer_twice_is_refused(tmp_path):
    path = _legacy_h5(tmp_path)
    assert load_model(path) is not None            # the file as Keras wrote it loads
    with h5py.File(path, "r+") as f:
        group = f["model_weights"]
        group.attrs["layer_names"] = np.array([b"first", b"first"])
    with pytest.raises(ModelFileError, match="more than once"):
        load_model(path)
    ours = Sequential([L.Input((4,)), L.Dense(4, name="first"), L.Dense(4, name="second")])
    with pytest.raises(ModelFileError, match="more than once"):
        ours.load_weights(path)


def test_a_config_naming_two_layers_alike_is_refused(tmp_path):
    path = _legacy_h5(tmp_path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        for entry in config["config"]["layers"]:
            if entry["config"].get("name") == "second":
                entry["config"]["name"] = "first"
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ModelFileError, match="two layers are named 'first'"):
        load_model(path)
