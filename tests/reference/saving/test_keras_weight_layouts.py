"""``.keras`` weight layouts of other Keras versions and of Windows (issue 21.9).

The fixtures start from real files: one Keras 3.15 writes and one tf_keras 2.21 writes
(``model.save("m.keras")``) for the same kind of model (LSTM, LSTM, Bidirectional(GRU),
GRU, Dense). Their ``model.weights.h5`` is rewritten, with h5py, into the inner paths the
older savers built (``saving_lib._save_state`` / ``_save_container_state`` /
``H5IOStore.make``):

* Windows (keras-core, tf.keras 2.12-2.15): the inner path was joined with
  ``os.path.join`` / ``tf.io.gfile.join``, so ``create_group("layers\\\\lstm\\\\cell")`` made
  one root-level group whose name holds backslashes.
* tf.keras 2.12-2.13: layers saved through ``_layer_checkpoint_dependencies`` (walked
  before ``layers`` in ascending ``dir()`` order); the first writers counted a class on
  both dict entries of a layer that has weights (the second LSTM is ``lstm_2``), later ones
  skip visited entries (``lstm_1``).

Every file must predict what the model that wrote it predicts.
"""
import io
import json
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tf_keras

from unrolled.io.safety import ModelFileError
from unrolled.models import load_model

K213 = "_layer_checkpoint_dependencies"


def _build(lib):
    inp = lib.Input((5, 3), name="x")
    h = lib.layers.LSTM(4, return_sequences=True, name="l1")(inp)
    h = lib.layers.LSTM(4, return_sequences=True, name="l2")(h)
    h = lib.layers.Bidirectional(lib.layers.GRU(3, return_sequences=True, name="g1"),
                                 name="bi")(h)
    h = lib.layers.GRU(2, name="g2")(h)
    return lib.Model(inp, lib.layers.Dense(2, name="d")(h), name="m")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Real files from Keras 3.15 and tf_keras 2.21, and what their models predict."""
    d = tmp_path_factory.mktemp("layouts")
    x = np.random.default_rng(7).normal(size=(4, 5, 3)).astype("float32")
    out = {"x": x}
    for name, lib in (("keras3", keras), ("tf_keras", tf_keras)):
        model = _build(lib)
        path = d / f"{name}.keras"
        model.save(path)
        out[name] = (path, model.predict(x, verbose=0))
    out["dir"] = d
    return out


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _vars_groups(f):
    """[(inner path, vars group)] of a weights file, root ("") first."""
    found = []
    f.visititems(lambda n, o: found.append((n[:-len("vars")].rstrip("/"), o))
                 if isinstance(o, h5py.Group) and n.split("/")[-1] == "vars" else None)
    return found


def rewrite(src, dst, rename, version=None, extra=None):
    """``src`` with each inner path ``p`` of its weights stored at ``rename(p)``
    (``h5py`` creates the groups as the old ``H5IOStore.make`` did); ``version`` sets
    ``metadata.json``'s keras_version (and a tf_keras config's module as tf.keras wrote it);
    ``extra(f)`` may add groups."""
    members = _members(src)
    out = io.BytesIO()
    with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as f, \
            h5py.File(out, "w") as g:
        for inner, group in _vars_groups(f):
            target = g.require_group(rename(inner)) if inner else g
            new = target.create_group("vars")
            for key in group:
                new.create_dataset(key, data=group[key][()])
        if extra:
            extra(g)
    members["model.weights.h5"] = out.getvalue()
    if version:
        meta = json.loads(members["metadata.json"])
        meta["keras_version"] = version
        members["metadata.json"] = json.dumps(meta).encode()
        members["config.json"] = members["config.json"].replace(b'"tf_keras.src.', b'"keras.src.')
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return dst


def windows(p):
    return p.replace("/", "\\")


def keras213(p, second_lstm="lstm_1"):
    p = K213 + p[len("layers"):] if p.startswith("layers") else p
    return p.replace(f"{K213}/lstm_1", f"{K213}/{second_lstm}")


def _check(path, want, x):
    np.testing.assert_allclose(load_model(path).predict(x, verbose=0), want, rtol=1e-6,
                               atol=1e-6)


def test_the_real_keras3_and_tf_keras_files_load(saved):
    for name in ("keras3", "tf_keras"):
        path, want = saved[name]
        _check(path, want, saved["x"])


def test_tf_keras_writes_the_keras3_layer_paths(saved):
    with zipfile.ZipFile(saved["tf_keras"][0]) as z, \
            h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        paths = {p for p, g in _vars_groups(f) if len(g)}
    assert {"layers/lstm/cell", "layers/lstm_1/cell", "layers/gru/cell", "layers/dense",
            "layers/bidirectional/forward_layer/cell"} <= paths


@pytest.mark.parametrize("source,version", [("keras3", None), ("tf_keras", "2.15.0")])
def test_a_file_saved_on_windows_loads(saved, source, version):
    path, want = saved[source]
    dst = rewrite(path, saved["dir"] / f"win_{source}.keras", windows, version)
    with zipfile.ZipFile(dst) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as f:
        assert "layers\\lstm_1\\cell" in f.keys() and "layers" not in f.keys()
    _check(dst, want, saved["x"])


@pytest.mark.parametrize("second_lstm", ["lstm_1", "lstm_2"])
@pytest.mark.parametrize("on_windows", [False, True])
def test_a_tf_keras_213_file_loads(saved, second_lstm, on_windows):
    path, want = saved["tf_keras"]

    def rename(p):
        p = keras213(p, second_lstm)
        return windows(p) if on_windows else p

    dst = rewrite(path, saved["dir"] / f"k213_{second_lstm}_{on_windows}.keras", rename,
                  "2.13.1")
    _check(dst, want, saved["x"])


def test_windows_weights_h5_loads_with_load_weights(saved, tmp_path):
    path, want = saved["keras3"]
    with zipfile.ZipFile(path) as z:
        data = z.read("model.weights.h5")
    src = tmp_path / "w.keras"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("model.weights.h5", data)
    rewrite_path = rewrite(src, tmp_path / "w_win.keras", windows)
    weights = tmp_path / "m.weights.h5"
    weights.write_bytes(_members(rewrite_path)["model.weights.h5"])
    model = load_model(path)
    for var in model.weights:
        var.assign(np.zeros(var.shape, "float32"))
    model.load_weights(weights)
    np.testing.assert_allclose(model.predict(saved["x"], verbose=0), want, rtol=1e-6, atol=1e-6)


def _copy_group(src_name, dst_name):
    def extra(g):
        g.copy(g[src_name], dst_name)
    return extra


@pytest.mark.parametrize("case", ["both_separators", "both_roots", "both_numberings"])
def test_an_ambiguous_layout_is_refused(saved, tmp_path, case):
    path, _ = saved["tf_keras"]
    if case == "both_separators":      # layers/lstm/cell and layers\lstm\cell
        dst = rewrite(path, tmp_path / "a.keras", lambda p: p,
                      extra=_copy_group("layers/lstm/cell", "layers\\lstm\\cell"))
        match = "twice"
    elif case == "both_roots":         # a Keras 3 and a tf.keras 2.13 tree
        dst = rewrite(path, tmp_path / "b.keras", lambda p: p,
                      extra=_copy_group("layers", K213))
        match = "ambiguous"
    else:                              # lstm, lstm_1 and lstm_2: both numberings fit
        dst = rewrite(path, tmp_path / "c.keras", keras213, "2.13.1",
                      extra=_copy_group(f"{K213}/lstm_1", f"{K213}/lstm_2"))
        match = "two numberings"
    with pytest.raises(ModelFileError, match=match):
        load_model(dst)
