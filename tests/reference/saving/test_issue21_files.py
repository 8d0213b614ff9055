"""Issue 21's cases that the other issue-21 modules leave to this one, each a file laid out
as the Keras version that wrote such files did, compared with the framework that wrote it
(tf_keras 2.21 for Keras 2, Keras 3.15) at 1e-5:

* 21.3 initializer spellings of every version in files: Keras 2.0-2.2's ``RandomUniform``
  with ``minval``/``maxval``, ``VarianceScaling``, ``TruncatedNormal``, ``Identity``,
  ``Constant``, ``RandomNormal``, string names; Keras 3.2-3.4's ``OrthogonalInitializer``
  and ``IdentityInitializer``.
* 21.4 the keys Keras 2 wrote: ``batch_input_shape`` and ``input_length`` on an Embedding
  inside a functional model, a ``Policy`` dtype (tf.keras 2.4+), ``trainable: false``,
  layer names with ``/`` (nested HDF5 groups in a legacy file), ``implementation``,
  ``unroll``, ``time_major``, ``stateful``; Keras 3.4-3.5's ``FloatDTypePolicy``.
* 21.6 regularizers and constraints as tf_keras and Keras 2.2 wrote them.
* 21.12 a file of an unsupported layer is refused for that class, before any option or
  initializer complaint about another layer, and never as "truncated or corrupted".
* the command line: ``unrolled convert OLD.h5 NEW.keras`` is the Keras 2 -> 3 migration
  (Keras 3 loads the result and predicts what tf_keras predicts from the old file), and
  ``unrolled inspect`` lists a Keras 2 weights-only ``.h5``.
"""
import json
import os
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tf_keras

from unrolled.io.safety import ModelFileError, UnsafeModelError, UnsupportedModelError
from unrolled.models import load_model

TOL = dict(rtol=1e-5, atol=1e-5)


def _vary(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


def _edit_h5_config(path, edit):
    with h5py.File(path, "r+") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        edit(config)
        f.attrs["model_config"] = json.dumps(config).encode()


def _edit_keras_config(src, dst, edit, version=None):
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    if version:
        meta = json.loads(members["metadata.json"])
        meta["keras_version"] = version
        members["metadata.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return dst


def _layers(config):
    layers = config["config"]
    return layers if isinstance(layers, list) else layers["layers"]


# --- 21.3 initializers ---------------------------------------------------------------------
KERAS2_INITIALIZERS = {    # what Keras 2.0-2.2 and tf.keras wrote in configs
    "kernel_initializer": {"class_name": "RandomUniform",
                           "config": {"minval": -0.05, "maxval": 0.05, "seed": None}},
    "recurrent_initializer": {"class_name": "Identity", "config": {"gain": 1.0}},
    "bias_initializer": {"class_name": "Constant", "config": {"value": 0.1}},
}
KERAS2_DENSE = {
    "kernel_initializer": {"class_name": "TruncatedNormal",
                           "config": {"mean": 0.0, "stddev": 0.05, "seed": None}},
    "bias_initializer": {"class_name": "RandomNormal",
                         "config": {"mean": 0.0, "stddev": 0.05, "seed": 1}},
}


def test_keras2_initializer_spellings_load_and_predict_as_tf_keras(tmp_path):
    model = _vary(tf_keras.Sequential([
        tf_keras.layers.LSTM(4, return_sequences=True, input_shape=(5, 4), name="l"),
        tf_keras.layers.GRU(3, kernel_initializer="lecun_uniform", name="g"),
        tf_keras.layers.Dense(2, name="d")]))
    path = tmp_path / "inits.h5"
    model.save(path)

    def edit(config):
        lstm, gru, dense = [e["config"] for e in _layers(config)
                            if e["class_name"] != "InputLayer"]
        lstm.update(KERAS2_INITIALIZERS)
        dense.update(KERAS2_DENSE)
        dense.update(kernel_regularizer={"class_name": "L1L2",          # Keras 2.2's l2()
                                         "config": {"l1": 0.0, "l2": 0.01}},
                     bias_constraint={"class_name": "NonNeg", "config": {}})
        gru["kernel_initializer"] = {"class_name": "VarianceScaling", "config": {
            "scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None}}
        gru["recurrent_initializer"] = "orthogonal"         # Keras 2.0's string form
    _edit_h5_config(path, edit)
    x = np.random.default_rng(1).normal(size=(3, 5, 4)).astype("float32")
    want = tf_keras.models.load_model(path, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(want, model.predict(x, verbose=0), **TOL)    # (tf_keras reads it)
    ours = load_model(path)
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, **TOL)
    assert type(ours.get_layer("l").cell.recurrent_initializer).__name__ == "Identity"
    assert ours.get_layer("l").cell.kernel_initializer.maxval == 0.05


def test_keras_32_to_34_initializer_names_load_and_predict_as_keras(tmp_path):
    model = _vary(keras.Sequential([keras.Input((5, 4)), keras.layers.LSTM(4, name="l"),
                                    keras.layers.Dense(4, name="d")]))
    model.save(tmp_path / "k3.keras")

    def edit(config):
        lstm, dense = (e["config"] for e in _layers(config)[1:])
        lstm["recurrent_initializer"] = {"module": "keras.initializers", "class_name":
                                         "OrthogonalInitializer",
                                         "config": {"gain": 1.0, "seed": None},
                                         "registered_name": None}
        dense["kernel_initializer"] = {"module": "keras.initializers", "class_name":
                                       "IdentityInitializer", "config": {"gain": 1.0},
                                       "registered_name": None}
    path = _edit_keras_config(tmp_path / "k3.keras", tmp_path / "k33.keras", edit, "3.3.3")
    x = np.random.default_rng(2).normal(size=(3, 5, 4)).astype("float32")
    want = keras.saving.load_model(path, compile=False).predict(x, verbose=0)
    ours = load_model(path)
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, **TOL)
    assert type(ours.get_layer("d").kernel_initializer).__name__ == "Identity"


# --- 21.4 the keys Keras 2 wrote --------------------------------------------------------------
def test_keras2_keys_on_any_layer_load_and_predict_as_tf_keras(tmp_path):
    ids = tf_keras.Input(batch_shape=(None, 6), dtype="int32", name="ids")
    h = tf_keras.layers.Embedding(9, 3, input_length=6, name="enc/emb")(ids)
    h = tf_keras.layers.LSTM(4, return_sequences=True, implementation=1, unroll=True,
                             name="enc/lstm", trainable=False,
                             dtype=tf_keras.mixed_precision.Policy("float32"))(h)
    h = tf_keras.layers.GRU(3, time_major=False, stateful=False, name="enc/gru",
                            kernel_regularizer=tf_keras.regularizers.L2(0.01),   # 21.6
                            recurrent_constraint=tf_keras.constraints.MaxNorm(2.0),
                            activity_regularizer=tf_keras.regularizers.L1L2(0.1, 0.2))(h)
    model = _vary(tf_keras.Model(ids, tf_keras.layers.Dense(2, name="head")(h), name="m"))
    path = tmp_path / "keys.h5"
    model.save(path)

    def edit(config):            # tf.keras 2.4+ wrote a layer's policy as a Policy object
        _layers(config)[2]["config"]["dtype"] = {"class_name": "Policy",
                                                 "config": {"name": "float32"}}
    _edit_h5_config(path, edit)
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        emb, lstm, gru = (e["config"] for e in _layers(config)[1:4])
        assert emb["batch_input_shape"] == [None, 6] and emb["input_length"] == 6
        assert lstm["trainable"] is False and lstm["implementation"] == 1 and lstm["unroll"]
        assert {"time_major", "stateful"} <= set(gru)
        assert isinstance(f["model_weights"]["enc"]["lstm"], h5py.Group)   # '/' in names
    x = np.random.default_rng(3).integers(0, 9, size=(4, 6)).astype("int32")
    want = tf_keras.models.load_model(path, compile=False).predict(x, verbose=0)
    ours = load_model(path)
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, **TOL)
    assert ours.get_layer("enc/lstm").trainable is False
    assert ours.get_layer("enc/lstm").unroll is True
    assert type(ours.get_layer("enc/gru").kernel_regularizer).__name__ == "L2"


def test_keras3_float_dtype_policy_loads(tmp_path):
    model = _vary(keras.Sequential([keras.Input((5, 2)), keras.layers.GRU(3, name="g"),
                                    keras.layers.Dense(2, name="d")]))
    model.save(tmp_path / "k.keras")

    def edit(config):                         # Keras 3.4-3.5 wrote FloatDTypePolicy
        for entry in _layers(config)[1:]:
            entry["config"]["dtype"] = {"module": "keras", "class_name": "FloatDTypePolicy",
                                        "config": {"name": "float32"}, "registered_name": None}
    path = _edit_keras_config(tmp_path / "k.keras", tmp_path / "k35.keras", edit, "3.5.0")
    x = np.random.default_rng(4).normal(size=(3, 5, 2)).astype("float32")
    np.testing.assert_allclose(load_model(path).predict(x, verbose=0),
                               model.predict(x, verbose=0), **TOL)


# --- 21.12 an unsupported class is what the refusal names -----------------------------------
def _unsupported_keras3(tmp_path, functional):
    L = keras.layers
    if functional:
        i = keras.Input((5, 3))
        h = L.Conv1DTranspose(2, 2, name="c")(L.LSTM(4, return_sequences=True, name="l")(i))
        model = keras.Model(i, L.GRU(2, name="g")(h))
    else:
        model = keras.Sequential([keras.Input((5, 3)), L.LSTM(4, return_sequences=True,
                                                               name="l"),
                                  L.Conv1DTranspose(2, 2, name="c"), L.GRU(2, name="g")])
    model.save(tmp_path / "c.keras")

    def edit(config):       # an unknown option and initializer on the LSTM, read first
        lstm = [e for e in _layers(config) if e["class_name"] == "LSTM"][0]["config"]
        lstm["kernel_initializer"] = {"module": "keras.initializers", "class_name":
                                      "STFTInitializer", "config": {}, "registered_name": None}
        lstm["peephole"] = True
    return _edit_keras_config(tmp_path / "c.keras", tmp_path / "c2.keras", edit)


@pytest.mark.parametrize("functional", [False, True])
def test_the_unsupported_class_is_named_before_other_complaints(tmp_path, functional):
    path = _unsupported_keras3(tmp_path, functional)
    with pytest.raises(UnsupportedModelError, match=r"layer 'c': layer class 'Conv1DTranspose' "
                                                    r"is not supported\. Supported classes: "):
        load_model(path)


def test_a_keras2_file_of_an_unsupported_or_custom_layer_is_refused_by_class(tmp_path):
    model = tf_keras.Sequential([
        tf_keras.layers.LSTM(4, return_sequences=True, input_shape=(8, 3), name="l"),
        tf_keras.layers.LocallyConnected1D(2, 3, name="lc"), tf_keras.layers.Flatten()])
    model.save(tmp_path / "lc.h5")
    _edit_h5_config(tmp_path / "lc.h5", lambda c: _layers(c)[0]["config"].update(
        recurrent_initializer={"class_name": "Glorot", "config": {}}))
    with pytest.raises(UnsupportedModelError, match="'LocallyConnected1D' is not supported") \
            as refused:
        load_model(tmp_path / "lc.h5")
    assert "truncated" not in str(refused.value) and "corrupted" not in str(refused.value)

    def custom(config):                        # a custom layer as Keras 2 wrote it
        _layers(config)[1].update(class_name="AttentionWithContext")
        _layers(config)[1]["config"] = {"name": "lc", "trainable": True}
    _edit_h5_config(tmp_path / "lc.h5", custom)
    with pytest.raises(UnsupportedModelError, match="'AttentionWithContext' is not supported"):
        load_model(tmp_path / "lc.h5")


def test_valid_files_of_unsupported_models_are_never_called_corrupted(tmp_path):
    """Several valid Keras 3 files unrolled does not read: each refusal names what it does
    not support (a ModelFileError, never "truncated or corrupted")."""
    L = keras.layers
    models = {
        "conv2d": keras.Sequential([keras.Input((4, 4, 1)), L.Conv2D(2, 2, name="c2")]),
        "lambda": keras.Sequential([keras.Input((3,)), L.Lambda(lambda t: t * 2, name="lam")]),
        "subclass_layer": keras.Sequential([keras.Input((5, 3)), L.LSTM(2), L.Dense(1)]),
    }
    for name, model in models.items():
        model.save(tmp_path / f"{name}.keras")
    _edit_keras_config(tmp_path / "subclass_layer.keras", tmp_path / "subclass_layer.keras",
                       lambda c: _layers(c)[2].update(module="my_project.layers",
                                                      registered_name="Custom>Head"))
    for name, kind, says in [("conv2d", UnsupportedModelError, "'Conv2D' is not supported"),
                             ("lambda", UnsafeModelError, "Lambda holds Python code"),
                             ("subclass_layer", UnsafeModelError, "custom object")]:
        with pytest.raises(kind, match=says) as refused:
            load_model(tmp_path / f"{name}.keras")
        assert isinstance(refused.value, ModelFileError)
        assert "truncated" not in str(refused.value), name


# --- the command line -----------------------------------------------------------------------
def _run(*args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "unrolled", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("writer", ["tf_keras", "keras_2_2"])
def test_convert_is_the_keras2_to_keras3_migration(tmp_path, writer):
    """``unrolled convert OLD.h5 NEW.keras``: Keras 3 loads NEW.keras (it cannot load
    OLD.h5 of tf_keras 2.16+: ``time_major``) and predicts what tf_keras predicts from OLD."""
    model = _vary(tf_keras.Sequential([
        tf_keras.layers.GRU(4, return_sequences=True, reset_after=False, input_shape=(6, 3),
                            name="g"),
        tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(3), name="bi"),
        tf_keras.layers.Dense(2, activation="softmax", name="d")]))
    old = tmp_path / "old.h5"
    model.save(old)
    if writer == "keras_2_2":                  # Keras 2.2.2's list form, bytes attributes
        with h5py.File(old, "r+") as f:
            f.attrs["keras_version"] = b"2.2.2"
        _edit_h5_config(old, lambda c: c.update(config=_layers(c)))
    x = np.random.default_rng(5).normal(size=(4, 6, 3)).astype("float32")
    want = tf_keras.models.load_model(old, compile=False).predict(x, verbose=0)
    code, out, err = _run("convert", "old.h5", "new.keras", cwd=tmp_path)
    assert code == 0, err + out
    theirs = keras.saving.load_model(tmp_path / "new.keras", compile=False)
    np.testing.assert_allclose(theirs.predict(x, verbose=0), want, **TOL)


def test_inspect_lists_a_keras2_weights_only_h5(tmp_path):
    model = _vary(tf_keras.Sequential([tf_keras.layers.LSTM(4, input_shape=(5, 3), name="l"),
                                       tf_keras.layers.Dense(2, name="d")]))
    model.save_weights(tmp_path / "w.h5")
    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert "model_weights" not in f and "layer_names" in f.attrs    # Keras 2's layout
    code, out, err = _run("inspect", "w.h5", cwd=tmp_path)
    assert code == 0, err + out
    assert "weights only" in out
    assert "l/lstm_cell/kernel" in out and "(3, 16)" in out and "(4, 2)" in out


def test_a_keras1_config_is_refused_by_its_first_keras1_key():
    from unrolled.models import model_from_json
    lstm = {"name": "lstm_1", "output_dim": 4, "batch_input_shape": [None, 5, 3],
            "init": "glorot_uniform", "inner_init": "orthogonal",
            "inner_activation": "hard_sigmoid", "return_sequences": False}
    text = json.dumps({"class_name": "Sequential", "keras_version": "1.2.2",
                       "config": [{"class_name": "LSTM", "config": lstm}]})
    with pytest.raises(UnsupportedModelError, match="option 'output_dim' is not supported"):
        model_from_json(text)


def test_inspect_reads_a_keras22_list_form_file(tmp_path):
    from test_hard_sigmoid_versions import keras2_weights, write_keras2_h5
    write_keras2_h5(tmp_path / "old.h5", "gru", keras2_weights("gru", np.random.default_rng(6)),
                    version=b"2.1.6")
    _edit_h5_config(tmp_path / "old.h5", lambda c: c.update(config=_layers(c)))
    code, out, err = _run("inspect", "old.h5", cwd=tmp_path)
    assert code == 0, err + out
    assert "Sequential" in out and "gru_1" in out and "(3, 12)" in out
