"""``hard_sigmoid`` means what the Keras that wrote the file meant.

Keras 1/2 and tf.keras 2: ``clip(0.2 x + 0.5, 0, 1)``; Keras 3: ``clip(x / 6 + 0.5, 0, 1)``.
Keras 2 files here are written with h5py the way Keras 2.1-2.2 and tf.keras 2 wrote them
(root attributes, ``model_weights/<layer>/<layer>/kernel:0``), and checked against a NumPy
reference of the Keras 2 equations. Inputs and weights are large enough that most gate
pre-activations lie beyond |x| = 0.5, where the two formulas differ by more than 0.016.
Tolerance 1e-5 (float32 forward against a float64 reference).
"""
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from gradcheck import check_layer_gradients
from keras_ref import keras

from unrolled import activations
from unrolled.io.safety import UnsupportedModelError
from unrolled.layers import GRU, LSTM, Dense, Input
from unrolled.models import Sequential, load_model, save_model

TOL = 1e-5
T, F, M = 7, 3, 4


def hs_keras2(x):
    return np.clip(0.2 * x + 0.5, 0, 1)


def hs_keras3(x):
    return np.clip(x / 6 + 0.5, 0, 1)


# --- a NumPy reference of the Keras equations, in float64 ------------------------------------
def ref_lstm(x, w, ra):
    kernel, rec, bias = (a.astype(float) for a in w)
    h = c = np.zeros((x.shape[0], M))
    out = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ rec + bias
        zi, zf, zc, zo = np.split(z, 4, axis=1)
        c = ra(zf) * c + ra(zi) * np.tanh(zc)
        h = ra(zo) * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


def ref_gru(x, w, ra, reset_after):
    kernel, rec, bias = (a.astype(float) for a in w)
    h = np.zeros((x.shape[0], M))
    out = []
    for t in range(x.shape[1]):
        if reset_after:
            xz, xr, xh = np.split(x[:, t] @ kernel + bias[0], 3, axis=1)
            rz, rr, rh = np.split(h @ rec + bias[1], 3, axis=1)
            z, r = ra(xz + rz), ra(xr + rr)
            hh = np.tanh(xh + r * rh)
        else:
            xz, xr, xh = np.split(x[:, t] @ kernel + bias, 3, axis=1)
            z = ra(xz + h @ rec[:, :M])
            r = ra(xr + h @ rec[:, M:2 * M])
            hh = np.tanh(xh + (r * h) @ rec[:, 2 * M:])
        h = z * h + (1 - z) * hh
        out.append(h)
    return np.stack(out, axis=1)


def reference(kind, x, weights, ra):
    """Output of [recurrent layer (return_sequences) -> Dense(hard_sigmoid)]."""
    if kind == "lstm":
        seq = ref_lstm(x, weights[:3], ra)
    else:
        seq = ref_gru(x, weights[:3], ra, kind == "gru_reset_after")
    return ra(seq @ weights[3].astype(float) + weights[4].astype(float))


# --- Keras 2 files, as Keras 2 wrote them ----------------------------------------------------
def _init(style, which):
    """A layer's initializer config as Keras 2.1/2.2 (VarianceScaling) or tf.keras 2 wrote it."""
    if which == "kernel":
        if style == "keras":
            return {"class_name": "VarianceScaling", "config": {
                "scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None}}
        return {"class_name": "GlorotUniform", "config": {"seed": None}}
    if which == "recurrent":
        return {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": None}}
    return {"class_name": "Zeros", "config": {}}


def _neutral():
    keys = ["kernel_regularizer", "bias_regularizer", "activity_regularizer",
            "kernel_constraint", "bias_constraint"]
    return dict.fromkeys(keys)


def keras2_layers(kind, style, name_suffix):
    """(recurrent layer config, dense layer config) with Keras 2's keys and defaults."""
    rnn = {"name": f"{kind.split('_')[0]}{name_suffix}", "trainable": True,
           "return_sequences": True, "return_state": False, "go_backwards": False,
           "stateful": False, "unroll": False, "units": M, "activation": "tanh",
           "recurrent_activation": "hard_sigmoid", "use_bias": True,
           "kernel_initializer": _init(style, "kernel"),
           "recurrent_initializer": _init(style, "recurrent"),
           "bias_initializer": _init(style, "bias"), "recurrent_regularizer": None,
           "recurrent_constraint": None, "dropout": 0.0, "recurrent_dropout": 0.0,
           "implementation": 1, **_neutral()}
    if kind == "lstm":
        rnn["unit_forget_bias"] = True
    else:
        rnn["reset_after"] = kind == "gru_reset_after"
    dense = {"name": f"dense{name_suffix}", "trainable": True, "units": 2,
             "activation": "hard_sigmoid", "use_bias": True,
             "kernel_initializer": _init(style, "kernel"), "bias_initializer": _init(style, "bias"),
             **_neutral()}
    return rnn, dense


def keras2_weights(kind, rng):
    gates = 4 if kind == "lstm" else 3
    bias_shape = (2, gates * M) if kind == "gru_reset_after" else (gates * M,)
    shapes = [(F, gates * M), (M, gates * M), bias_shape, (M, 2), (2,)]
    return [(rng.standard_normal(s) * 0.8).astype("float32") for s in shapes]


def write_keras2_h5(path, kind, weights, version=b"2.2.4", functional=False):
    """A legacy .h5 as Keras 2 wrote it; ``version`` None: no keras_version attribute."""
    import h5py

    style = "tf" if isinstance(version, str) else "keras"     # tf.keras wrote str attributes
    rnn, dense = keras2_layers(kind, style, "_1")
    class_name = {"lstm": "LSTM"}.get(kind, "GRU")
    if functional:                                            # Keras 2.1/2.2 "Model"
        layers = [
            {"name": "input_1", "class_name": "InputLayer", "inbound_nodes": [], "config": {
                "batch_input_shape": [None, T, F], "dtype": "float32", "sparse": False,
                "name": "input_1"}},
            {"name": rnn["name"], "class_name": class_name, "config": rnn,
             "inbound_nodes": [[["input_1", 0, 0, {}]]]},
            {"name": "dense_1", "class_name": "Dense", "config": dense,
             "inbound_nodes": [[[rnn["name"], 0, 0, {}]]]}]
        config = {"class_name": "Model", "config": {
            "name": "model_1", "layers": layers, "input_layers": [["input_1", 0, 0]],
            "output_layers": [["dense_1", 0, 0]]}}
    else:
        rnn = {**rnn, "batch_input_shape": [None, T, F], "dtype": "float32"}
        config = {"class_name": "Sequential", "config": {"name": "sequential_1", "layers": [
            {"class_name": class_name, "config": rnn}, {"class_name": "Dense", "config": dense}]}}
    text = json.dumps(config)
    names = {rnn["name"]: ["kernel:0", "recurrent_kernel:0", "bias:0"],
             "dense_1": ["kernel:0", "bias:0"]}
    with h5py.File(path, "w") as f:
        if version is not None:
            f.attrs["keras_version"] = version
        f.attrs["backend"] = b"tensorflow" if style == "keras" else "tensorflow"
        f.attrs["model_config"] = text.encode() if style == "keras" else text
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [n.encode() for n in names]
        group.attrs["backend"] = b"tensorflow"
        if version is not None:
            group.attrs["keras_version"] = version
        arrays = iter(weights)
        for layer, wnames in names.items():
            g = group.create_group(layer)
            g.attrs["weight_names"] = [f"{layer}/{w}".encode() for w in wnames]
            for w in wnames:
                g.create_dataset(f"{layer}/{w}", data=next(arrays))
    return path


def inputs(rng):
    return (rng.standard_normal((5, T, F)) * 2).astype("float32")


KINDS = ["lstm", "gru", "gru_reset_after"]
VERSIONS = [b"2.2.4", b"2.1.6", "2.15.0", "2.2.4-tf", None]


@pytest.mark.parametrize("version", VERSIONS, ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_keras2_file_computes_keras2_hard_sigmoid(tmp_path, rng, kind, version):
    weights = keras2_weights(kind, rng)
    path = write_keras2_h5(tmp_path / "old.h5", kind, weights, version,
                           functional=version == b"2.1.6")
    x = inputs(rng)
    got = load_model(path).predict(x, verbose=0)
    want = reference(kind, x, weights, hs_keras2)
    assert np.abs(want - reference(kind, x, weights, hs_keras3)).max() > 1e-2   # can fail
    assert np.abs(got - want).max() < TOL


def test_keras2_layers_report_the_keras2_activation(tmp_path, rng):
    model = load_model(write_keras2_h5(tmp_path / "old.h5", "lstm", keras2_weights("lstm", rng)))
    rnn, dense = model.layers[-2:]
    assert rnn.recurrent_activation is activations.hard_sigmoid_keras2
    assert dense.activation is activations.hard_sigmoid_keras2
    assert rnn.get_config()["recurrent_activation"] == "hard_sigmoid_keras2"
    assert rnn.activation is activations.tanh


def test_layers_built_in_code_use_keras3_formula():
    assert LSTM(2, recurrent_activation="hard_sigmoid").recurrent_activation is activations.hard_sigmoid
    assert Dense(2, activation="hard_sigmoid").activation is activations.hard_sigmoid
    x = np.array([-4.0, -2.0, 1.0, 2.0, 4.0], "float32")
    np.testing.assert_array_equal(activations.get("hard_sigmoid")(x), hs_keras3(x).astype("float32"))
    np.testing.assert_allclose(activations.get("hard_sigmoid_keras2")(x), hs_keras2(x), atol=1e-7)


def test_unreadable_keras_version_refuses_hard_sigmoid_only(tmp_path, rng):
    weights = keras2_weights("gru", rng)
    path = write_keras2_h5(tmp_path / "odd.h5", "gru", weights, version=b"unknown")
    with pytest.raises(UnsupportedModelError, match="keras_version cannot be read"):
        load_model(path)


# --- writing a Keras 2 model back --------------------------------------------------------------
@pytest.fixture
def keras2_model(tmp_path, rng):
    weights = keras2_weights("gru", rng)
    model = load_model(write_keras2_h5(tmp_path / "old.h5", "gru", weights))
    return model, inputs(rng)


def test_legacy_h5_round_trip_is_marked_keras2(keras2_model, tmp_path):
    import h5py

    model, x = keras2_model
    save_model(model, tmp_path / "again.h5")
    with h5py.File(tmp_path / "again.h5", "r") as f:
        assert str(f.attrs["keras_version"]).startswith("2.")
        config = f.attrs["model_config"]
    assert "hard_sigmoid_keras2" not in config and '"hard_sigmoid"' in config
    again = load_model(tmp_path / "again.h5")
    assert np.array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_native_round_trip(keras2_model, tmp_path):
    model, x = keras2_model
    save_model(model, tmp_path / "m.unrolled.npz")
    again = load_model(tmp_path / "m.unrolled.npz")
    assert again.layers[-2].recurrent_activation is activations.hard_sigmoid_keras2
    assert np.array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_format_refuses_keras2_hard_sigmoid(keras2_model, tmp_path):
    model, _ = keras2_model
    with pytest.raises(ValueError, match=r"'gru_1', 'dense_1' use Keras 2's hard_sigmoid"):
        save_model(model, tmp_path / "new.keras")
    assert not (tmp_path / "new.keras").exists()


def test_convert_to_keras_refuses_in_one_line(tmp_path, rng):
    src = write_keras2_h5(tmp_path / "old.h5", "lstm", keras2_weights("lstm", rng))
    proc = subprocess.run([sys.executable, "-m", "unrolled", "convert", str(src),
                           str(tmp_path / "new.keras")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and not (tmp_path / "new.keras").exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "Keras 2's hard_sigmoid" in lines[0] and "'lstm_1'" in lines[0]


def test_mixed_formulas_refuse_legacy_h5(tmp_path):
    model = Sequential([Input((T, F)), LSTM(3, recurrent_activation="hard_sigmoid_keras2"),
                        Dense(2, activation="hard_sigmoid")])
    with pytest.raises(ValueError, match="Keras 2's hard_sigmoid.*Keras 3's"):
        save_model(model, tmp_path / "mixed.h5")
    save_model(model, tmp_path / "mixed.unrolled.npz")
    again = load_model(tmp_path / "mixed.unrolled.npz")
    assert again.layers[0].recurrent_activation is activations.hard_sigmoid_keras2
    assert again.layers[1].activation is activations.hard_sigmoid


# --- files written by real Keras 3 -----------------------------------------------------------
@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("k3")
    rng = np.random.default_rng(5)
    i = keras.Input((T, F))
    h = keras.layers.LSTM(M, recurrent_activation="hard_sigmoid", return_sequences=True)(i)
    h = keras.layers.GRU(M, recurrent_activation="hard_sigmoid", return_sequences=True)(h)
    h = keras.layers.GRU(M, recurrent_activation="hard_sigmoid", reset_after=False)(h)
    model = keras.Model(i, keras.layers.Dense(2, activation="hard_sigmoid")(h))
    model.set_weights([(rng.standard_normal(w.shape) * 0.8).astype("float32")
                       for w in model.get_weights()])
    x = inputs(rng)
    model.save(root / "m.keras")
    model.save(root / "m.h5")
    return root, x, np.asarray(model.predict(x, verbose=0))


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_keras3_files_keep_keras3_formula(keras3_files, ext):
    root, x, want = keras3_files
    if ext == "h5":
        import h5py
        with h5py.File(root / "m.h5", "r") as f:
            assert str(f.attrs["keras_version"]).startswith("3.")
    model = load_model(root / f"m.{ext}")
    assert model.layers[1].recurrent_activation is activations.hard_sigmoid
    assert np.abs(model.predict(x, verbose=0) - want).max() < TOL


def test_keras_archive_from_tf_keras2_is_keras2(keras3_files, tmp_path):
    """tf.keras 2.13-2.15 wrote .keras archives too; their metadata says keras_version 2.x."""
    root, x, _ = keras3_files
    dst = tmp_path / "tf2.keras"
    with zipfile.ZipFile(root / "m.keras") as src, zipfile.ZipFile(dst, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "metadata.json":
                data = json.dumps({**json.loads(data), "keras_version": "2.15.0"}).encode()
            out.writestr(item, data)
    model = load_model(dst)
    assert model.layers[1].recurrent_activation is activations.hard_sigmoid_keras2
    assert model.layers[-1].activation is activations.hard_sigmoid_keras2


# --- the backward pass ----------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: LSTM(3, recurrent_activation="hard_sigmoid_keras2", return_sequences=True,
                 dtype="float64"),
    lambda: GRU(3, recurrent_activation="hard_sigmoid_keras2", dtype="float64"),
    lambda: GRU(3, recurrent_activation="hard_sigmoid_keras2", reset_after=False,
                dtype="float64"),
], ids=["lstm", "gru", "gru_reset_before"])
def test_keras2_gradients_by_finite_differences(make, rng):
    layer = make()
    x = rng.standard_normal((2, 5, F)) * 2
    layer.build(x.shape)
    layer.set_weights([rng.standard_normal(w.shape) * 0.8 for w in layer.get_weights()])
    check_layer_gradients(layer, [x], rng, tol=1e-6)


# --- exports that must not switch formulas -------------------------------------------------------
def test_to_torch_refuses_keras2_hard_sigmoid():
    import torch  # noqa: F401  (a test extra: to_torch needs it)
    from unrolled.interop.torch import to_torch

    model = Sequential([Input((F,)), Dense(2, activation="hard_sigmoid_keras2")])
    with pytest.raises(ValueError, match="'hard_sigmoid_keras2' has no PyTorch module"):
        to_torch(model)
    rnn = Sequential([Input((T, F)), LSTM(2, recurrent_activation="hard_sigmoid_keras2")])
    with pytest.raises(ValueError, match="fixed activations"):
        to_torch(rnn)


def test_equations_name_the_keras2_formula():
    from unrolled.explain.equations import to_tex

    assert to_tex("hard_sigmoid_keras2(zi)") == r"\mathrm{hard\_sigmoid}_{\mathrm{K2}}(z_i)"
    assert to_tex("hard_sigmoid(zi)") == r"\mathrm{hard\_sigmoid}(z_i)"


def test_verify_compares_with_keras2_and_says_why_keras3_differs(tmp_path, rng, capsys,
                                                                  monkeypatch):
    """verify runs a Keras 2 file in tf_keras, which agrees; without tf_keras it runs it in
    Keras 3, which reads hard_sigmoid as x/6 + 0.5, and says why the outputs differ."""
    from unrolled.interop.verify import verify_keras

    path = write_keras2_h5(tmp_path / "old.h5", "gru", keras2_weights("gru", rng), functional=True)
    assert verify_keras(path, timesteps=T) == 0
    out = capsys.readouterr().out
    assert "compared with tf_keras" in out and "MISMATCH" not in out
    monkeypatch.setitem(sys.modules, "tf_keras", None)             # as if not installed
    assert verify_keras(path, timesteps=T) == 1                     # Keras 3 reads it as x/6
    out = capsys.readouterr().out
    assert "pip install tf_keras" in out
    assert "note: 'gru_1', 'dense_1' use Keras 2's hard_sigmoid" in out and "MISMATCH" in out
