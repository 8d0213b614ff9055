"""Models used as layers of other models (issue 21, nested models), in every layout that
holds them: real ``.keras`` and ``.h5`` files written by Keras 3.15 and tf_keras 2.21, and
tf_keras's ``.keras`` file rewritten (h5py) into tf.keras 2.12-2.13's layout, where each
model's layers were saved from its own ``_layer_checkpoint_dependencies`` dict, both
numberings (``keras_layouts``), also on Windows. Every file must predict what the model that
wrote it predicts (rtol 1e-6), and a loaded model saves back to a ``.keras`` Keras 3 reads.

The model: ``x -> inner (Sequential: LSTM, LSTM, Dense) -> finner (functional: GRU) ->
tail (Sequential: Dense) -> Dense``, and a Sequential whose first layer is a Sequential.
tf_keras's configs refer to a nested model's first call as node 1 (its node 0 is its own
graph), Keras 3's as node 0: both are read.
"""
import io
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tf_keras
from test_keras_weight_layouts import K213, rewrite, windows

from unrolled.models import load_model

TOL = dict(rtol=1e-6, atol=1e-6)


def _build(lib, kind):
    L = lib.layers
    inner = lib.Sequential([lib.Input((5, 3)), L.LSTM(4, return_sequences=True, name="l1"),
                            L.LSTM(4, return_sequences=True, name="l2"), L.Dense(2, name="d")],
                           name="inner")
    if kind == "sequential":
        return lib.Sequential([inner, L.Flatten(name="f"), L.Dense(1, name="top")], name="outer")
    fin = lib.Input((5, 2), name="fin")
    finner = lib.Model(fin, L.GRU(3, name="g")(fin), name="finner")
    tail = lib.Sequential([lib.Input((3,)), L.Dense(2, name="t")], name="tail")
    x = lib.Input((5, 3), name="x")
    return lib.Model(x, L.Dense(1, name="top")(tail(finner(inner(x)))), name="outer")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{(lib, kind, ext): (path, what the writer's model predicts)} and the input."""
    d = tmp_path_factory.mktemp("nested")
    x = np.random.default_rng(3).normal(size=(4, 5, 3)).astype("float32")
    out = {"x": x, "dir": d}
    for lib_name, lib in (("keras3", keras), ("tf_keras", tf_keras)):
        for kind in ("functional", "sequential"):
            model = _build(lib, kind)
            if not model.built:                          # tf_keras: Sequential([model, ...])
                model.build((None, 5, 3))
            rng = np.random.default_rng(4)
            model.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32")
                               for w in model.get_weights()])
            want = model.predict(x, verbose=0)
            for ext in ("keras", "h5"):
                path = d / f"{lib_name}_{kind}.{ext}"
                model.save(path)
                out[lib_name, kind, ext] = (path, want)
    return out


CASES = [(lib, kind, ext) for lib in ("keras3", "tf_keras") for kind in ("functional",
                                                                          "sequential")
         for ext in ("keras", "h5")]


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_real_files_load_and_predict_as_the_writer(saved, case):
    path, want = saved[case]
    model = load_model(path)
    np.testing.assert_allclose(model.predict(saved["x"], verbose=0), want, **TOL)


def test_the_writers_use_the_nested_paths_and_node_numbers_read_here(saved):
    """What the fixtures must contain for the tests above to mean anything."""
    with zipfile.ZipFile(saved["tf_keras", "functional", "keras"][0]) as z, \
            h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        for group in ("layers/sequential/layers/lstm_1/cell/vars",
                      "layers/functional/layers/gru/cell/vars",
                      "layers/sequential_1/layers/dense/vars"):
            assert len(f[group]) > 0, group
    with h5py.File(saved["tf_keras", "functional", "h5"][0], "r") as f:
        assert "['inner', 1, 0, {}]" in f.attrs["model_config"].replace('"', "'")


# tf.keras 2.13: each model's layers in its _layer_checkpoint_dependencies dict, a class
# counted once per layer, or twice per layer with weights by the first writers.
ONCE = {"layers/input_layer": "input_layer", "layers/sequential": "sequential",
        "layers/sequential/layers/lstm": "sequential/~/lstm",
        "layers/sequential/layers/lstm_1": "sequential/~/lstm_1",
        "layers/sequential/layers/dense": "sequential/~/dense",
        "layers/functional": "functional",
        "layers/functional/layers/input_layer": "functional/~/input_layer",
        "layers/functional/layers/gru": "functional/~/gru",
        "layers/sequential_1": "sequential_1",
        "layers/sequential_1/layers/dense": "sequential_1/~/dense",
        "layers/dense": "dense"}
TWICE = {**ONCE, "layers/sequential/layers/lstm_1": "sequential/~/lstm_2",
         "layers/sequential_1": "sequential_2",
         "layers/sequential_1/layers/dense": "sequential_2/~/dense"}


def _keras213(table, on_windows):
    def rename(p):
        for old in sorted(table, key=len, reverse=True):
            if p == old or p.startswith(old + "/"):
                p = f"{K213}/" + table[old].replace("~", K213) + p[len(old):]
                break
        return windows(p) if on_windows else p
    return rename


@pytest.mark.parametrize("numbering", ["once", "twice"])
@pytest.mark.parametrize("on_windows", [False, True])
def test_a_tf_keras_213_file_with_nested_models_loads(saved, numbering, on_windows):
    path, want = saved["tf_keras", "functional", "keras"]
    dst = rewrite(path, saved["dir"] / f"k213_{numbering}_{on_windows}.keras",
                  _keras213(ONCE if numbering == "once" else TWICE, on_windows), "2.13.1")
    with zipfile.ZipFile(dst) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as f:
        name = f"{K213}/sequential/{K213}/lstm_{1 if numbering == 'once' else 2}/cell"
        assert (name.replace("/", "\\") if on_windows else name) in f
    np.testing.assert_allclose(load_model(dst).predict(saved["x"], verbose=0), want, **TOL)
    if numbering == "once" and not on_windows:       # Keras 3's own 2.13 reader agrees
        path, want = saved["keras3", "functional", "keras"]     # (it reads Keras 3 configs)
        dst = rewrite(path, saved["dir"] / "k213_keras3.keras", _keras213(ONCE, False))
        theirs = keras.saving.load_model(dst, compile=False).predict(saved["x"], verbose=0)
        np.testing.assert_allclose(theirs, want, **TOL)
        np.testing.assert_allclose(load_model(dst).predict(saved["x"], verbose=0), want, **TOL)


@pytest.mark.parametrize("lib", ["keras3", "tf_keras"])
@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_a_loaded_nested_model_saves_as_keras_3_reads_it(saved, tmp_path, lib, kind):
    path, want = saved[lib, kind, "h5"]
    model = load_model(path)
    model.save(tmp_path / "again.keras")
    theirs = keras.saving.load_model(tmp_path / "again.keras", compile=False)
    np.testing.assert_allclose(theirs.predict(saved["x"], verbose=0), want, **TOL)
    for ext in ("again.h5", "again.unrolled.npz"):
        model.save(tmp_path / ext)
        np.testing.assert_allclose(load_model(tmp_path / ext).predict(saved["x"], verbose=0),
                                   want, **TOL)


def test_weights_load_into_the_same_nested_model_built_in_code(saved):
    from unrolled import layers as L
    from unrolled.models import Model, Sequential
    inner = Sequential([L.Input((5, 3)), L.LSTM(4, return_sequences=True, name="l1"),
                        L.LSTM(4, return_sequences=True, name="l2"), L.Dense(2, name="d")],
                       name="inner")
    fin = L.Input((5, 2))
    finner = Model(fin, L.GRU(3, name="g")(fin), name="finner")
    tail = Sequential([L.Input((3,)), L.Dense(2, name="t")], name="tail")
    x = L.Input((5, 3))
    model = Model(x, L.Dense(1, name="top")(tail(finner(inner(x)))))
    for lib in ("keras3", "tf_keras"):
        for ext in ("keras", "h5"):
            path, want = saved[lib, "functional", ext]
            model.load_weights(path)
            np.testing.assert_allclose(model.predict(saved["x"], verbose=0), want, **TOL)


@pytest.mark.parametrize("case", [("keras3", "functional", "keras"),
                                  ("tf_keras", "functional", "h5")], ids="-".join)
def test_verify_compares_a_nested_file_with_its_writer(saved, case, capsys):
    from unrolled.interop.verify import verify
    assert verify(saved[case][0], tol=1e-5) == 0
    out = capsys.readouterr().out
    which = "tf_keras" if case[0] == "tf_keras" else "Keras 3"
    assert f"compared with {which}" in out and "verified: outputs agree" in out


@pytest.mark.parametrize("lib_name", ["keras3", "tf_keras"])
def test_a_nested_model_shared_by_two_inputs(tmp_path, lib_name):
    """A siamese encoder: one nested Sequential called on two inputs (tf_keras refers to
    its calls as nodes 1 and 2, Keras 3 as 0 and 1)."""
    lib = keras if lib_name == "keras3" else tf_keras
    enc = lib.Sequential([lib.Input((5, 3)), lib.layers.LSTM(4, name="l")], name="enc")
    a, b = lib.Input((5, 3), name="a"), lib.Input((5, 3), name="b")
    both = lib.layers.Concatenate(name="c")([enc(a), enc(b)])
    model = lib.Model([a, b], lib.layers.Dense(1, name="o")(both))
    xs = [np.random.default_rng(8).normal(size=(3, 5, 3)).astype("float32") for _ in range(2)]
    want = model.predict(xs, verbose=0)
    for ext in ("keras", "h5"):
        model.save(tmp_path / f"siamese.{ext}")
        ours = load_model(tmp_path / f"siamese.{ext}")
        np.testing.assert_allclose(ours.predict(xs, verbose=0), want, **TOL)
    ours.save(tmp_path / "again.keras")
    theirs = keras.saving.load_model(tmp_path / "again.keras", compile=False)
    np.testing.assert_allclose(theirs.predict(xs, verbose=0), want, **TOL)


@pytest.mark.parametrize("lib_name", ["keras3", "tf_keras"])
def test_a_nested_model_with_frozen_and_non_trainable_weights(tmp_path, lib_name):
    """A legacy .h5 lists a nested model's weights trainable first (a frozen LSTM's and
    BatchNormalization's moving statistics after the others): read in that order."""
    lib = keras if lib_name == "keras3" else tf_keras
    L = lib.layers
    inner = lib.Sequential([lib.Input((5, 3)), L.LSTM(4, return_sequences=True, name="l1",
                                                       trainable=False),
                            L.BatchNormalization(name="bn"), L.LSTM(3, name="l2")],
                           name="inner")
    a = lib.Input((5, 3))
    model = lib.Model(a, L.Dense(1, name="o")(inner(a)))
    rng = np.random.default_rng(1)
    model.set_weights([rng.uniform(0.1, 0.9, w.shape).astype("float32")
                       for w in model.get_weights()])
    x = np.random.default_rng(9).normal(size=(3, 5, 3)).astype("float32")
    want = model.predict(x, verbose=0)
    for ext in ("keras", "h5"):
        model.save(tmp_path / f"frozen.{ext}")
        np.testing.assert_allclose(load_model(tmp_path / f"frozen.{ext}").predict(x, verbose=0),
                                   want, **TOL)
