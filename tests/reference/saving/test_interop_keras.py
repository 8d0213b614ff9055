"""Keras files both ways: files written by real Keras 3 loaded by unrolled (in a process where
TensorFlow, Keras and PyTorch cannot be imported), and files unrolled writes loaded by Keras.

Every case is a small random model; its weights are redrawn from N(0, 0.5²) so that biases
are non-zero and every gate and unit differs (layout mistakes show). Tolerance: 1e-5.
"""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_ref import keras  # noqa: F401  (sets the backend quietly)
from unrolled.models import load_model, save_model
from unrolled.saving.model_files import load_weights, save_weights

L = keras.layers
TOL = 1e-5
T, F = 6, 3


def case_simple_rnn():
    i = keras.Input((T, F))
    return keras.Model(i, L.SimpleRNN(4, activation="relu")(i))


def case_simple_rnn_options():
    i = keras.Input((T, F))
    a = L.SimpleRNN(4, use_bias=False, return_sequences=True, go_backwards=True)(i)
    b = L.SimpleRNN(3, unroll=True)(a)
    return keras.Model(i, b)


def case_lstm():
    i = keras.Input((T, F))
    x = L.LSTM(5, return_sequences=True, unit_forget_bias=False)(i)
    return keras.Model(i, L.LSTM(3, recurrent_activation="hard_sigmoid", go_backwards=True)(x))


def case_lstm_state():
    i = keras.Input((T, F))
    out, h, c = L.LSTM(4, return_state=True, use_bias=False)(i)
    return keras.Model(i, [out, h, c])


def case_gru():
    i = keras.Input((T, F))
    x = L.GRU(4, return_sequences=True)(i)
    x = L.GRU(3, reset_after=False, return_sequences=True, go_backwards=True)(x)
    return keras.Model(i, L.GRU(2, use_bias=False, activation="relu")(x))


def case_initial_state():
    i, h0, c0 = keras.Input((T, F)), keras.Input((4,)), keras.Input((4,))
    x = L.LSTM(4, return_sequences=True)(i, initial_state=[h0, c0])
    return keras.Model([i, h0, c0], L.SimpleRNN(4)(x, initial_state=[h0]))


def case_rnn_cells():
    i = keras.Input((T, F))
    x = L.RNN(L.LSTMCell(4), return_sequences=True)(i)
    x = L.RNN(L.GRUCell(3, reset_after=False), return_sequences=True)(x)
    cells = L.StackedRNNCells([L.SimpleRNNCell(3), L.GRUCell(2), L.LSTMCell(2)])
    return keras.Model(i, L.RNN(cells)(x))


def case_bidirectional():
    i = keras.Input((T, F))
    x = L.Bidirectional(L.LSTM(3, return_sequences=True))(i)
    x = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum")(x)
    x = L.Bidirectional(L.SimpleRNN(2, return_sequences=True), merge_mode="ave")(x)
    return keras.Model(i, L.Bidirectional(L.GRU(2, reset_after=False), merge_mode="mul")(x))


def case_bidirectional_none_backward_layer():
    i = keras.Input((T, F))
    fwd, bwd = L.LSTM(3), L.GRU(3, go_backwards=True)
    y, y_rev = L.Bidirectional(fwd, backward_layer=bwd, merge_mode=None)(i)
    return keras.Model(i, [y, y_rev])


def case_dense_and_friends():
    i = keras.Input((T, F))
    x = L.TimeDistributed(L.Dense(4, activation="tanh"))(i)
    x = L.Dense(3, activation="sigmoid")(x)                     # 3-D Dense
    x = L.Dropout(0.3)(x)
    x = L.Flatten()(x)
    x = L.Dense(6, use_bias=False)(x)
    x = L.Activation("relu")(x)
    x = L.RepeatVector(2)(x)
    x = L.Reshape((3, 4))(x)
    return keras.Model(i, L.Dense(2, activation="softmax")(x))


def case_merge_shared():
    i = keras.Input((T, F))
    shared = L.GRU(3, return_sequences=True)
    a, b = shared(i), shared(L.Dense(F)(i))                     # one layer, two nodes
    x = L.Concatenate()([a, b])
    x = L.Add()([x, L.Dense(6)(i)])
    return keras.Model(i, L.SimpleRNN(2)(x))


def case_masking():
    i = keras.Input((T, F))
    x = L.Masking(mask_value=0.0)(i)
    x = L.LSTM(3, return_sequences=True)(x)
    x = L.Bidirectional(L.GRU(2, return_sequences=True))(x)
    return keras.Model(i, L.SimpleRNN(2)(x))


def case_embedding():
    i = keras.Input((T,), dtype="int32")
    x = L.Embedding(12, 4, mask_zero=True)(i)
    x = L.GRU(3, return_sequences=True)(x)
    y = L.Embedding(12, 3)(i)
    return keras.Model(i, L.LSTM(2)(L.Concatenate()([x, y])))


def case_sequential():
    return keras.Sequential([keras.Input((T, F)), L.LSTM(4, return_sequences=True),
                             L.TimeDistributed(L.Dense(2)), L.GRU(3), L.Dense(1)])


def case_sequential_embedding():
    return keras.Sequential([keras.Input((T,), dtype="int32"), L.Embedding(9, 3, mask_zero=True),
                             L.Bidirectional(L.SimpleRNN(2)), L.Dense(2, activation="tanh")])


def case_training_options_and_initializers():
    i = keras.Input((T, F))
    x = L.LSTM(4, dropout=0.2, recurrent_dropout=0.3, seed=3, return_sequences=True,
               kernel_initializer="he_uniform", recurrent_initializer=keras.initializers.Orthogonal(2.0),
               bias_initializer=keras.initializers.Constant(0.1))(i)
    x = L.GRU(3, dropout=0.1, recurrent_dropout=0.1, return_sequences=True,
              kernel_initializer=keras.initializers.RandomNormal(0.0, 0.3, seed=1),
              bias_initializer="random_uniform")(x)
    x = L.Dropout(0.5, noise_shape=(None, 1, 3), seed=2)(x)
    y = L.SimpleRNN(3, return_sequences=True, kernel_initializer="glorot_normal",
                    recurrent_initializer="ones", bias_initializer="zeros")(i)
    x = L.Concatenate(axis=1)([x, y])                           # joined along time
    return keras.Model(i, L.Dense(2, kernel_initializer="glorot_uniform")(L.Flatten()(x)))


def case_zero_output_for_mask():
    i = keras.Input((T, F))
    x = L.Masking()(i)
    x = L.SimpleRNN(3, return_sequences=True, zero_output_for_mask=True)(x)
    return keras.Model(i, L.TimeDistributed(L.Dense(2))(x))


def case_stateful():
    i = keras.Input(batch_shape=(4, T, F))
    return keras.Model(i, L.GRU(3, stateful=True)(i))


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}


def inputs_for(model, rng):
    arrays = []
    for t in model.inputs:
        shape = (4,) + tuple(t.shape[1:])
        if "int" in str(t.dtype):
            a = rng.integers(0, 9, size=shape).astype("int32")
            a[0, -2:] = 0                                         # padding
        else:
            a = rng.standard_normal(shape).astype("float32")
            if a.ndim == 3:
                a[1, 2] = 0.0                                     # a step Masking masks
        arrays.append(a)
    return arrays


def randomize(model, rng):
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype("float32")
                       for w in model.get_weights()])


def as_list(out):
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """Every case saved by real Keras as .keras and legacy .h5, with inputs and outputs."""
    root = tmp_path_factory.mktemp("keras_files")
    rng = np.random.default_rng(7)
    index = {}
    for name, fn in CASES.items():
        model = fn()
        randomize(model, rng)
        xs = inputs_for(model, rng)
        ys = as_list(model.predict(xs if len(xs) > 1 else xs[0], verbose=0))
        model.save(root / f"{name}.keras")
        keras.saving.save_model(model, root / f"{name}.h5")
        model.save_weights(root / f"{name}.weights.h5")
        np.savez(root / f"{name}.io.npz", **{f"x{k}": x for k, x in enumerate(xs)},
                 **{f"y{k}": y for k, y in enumerate(ys)})
        index[name] = (len(xs), len(ys))
    return root, index


NO_FRAMEWORKS = textwrap.dedent("""
    import json, sys
    for name in ("tensorflow", "keras", "torch", "tf_keras", "jax"):
        sys.modules[name] = None            # any import of them now raises ImportError
    import numpy as np
    from unrolled.models import load_model
    root, index = sys.argv[1], json.loads(sys.argv[2])
    result = {}
    for name, (nx, ny) in index.items():
        io = np.load(f"{root}/{name}.io.npz", allow_pickle=False)
        xs = [io[f"x{k}"] for k in range(nx)]
        for ext in ("keras", "h5"):
            model = load_model(f"{root}/{name}.{ext}")
            out = model.predict(xs if nx > 1 else xs[0], verbose=0)
            out = out if isinstance(out, list) else [out]
            result[f"{name}.{ext}"] = max(float(np.abs(o - io[f"y{k}"]).max())
                                          for k, o in enumerate(out))
    assert "tensorflow" not in {m.split(".")[0] for m in sys.modules if sys.modules[m]}
    print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def framework_free_results(keras_files):
    root, index = keras_files
    proc = subprocess.run([sys.executable, "-c", NO_FRAMEWORKS, str(root), json.dumps(index)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("ext", ["keras", "h5"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_file_loads_without_tensorflow(framework_free_results, name, ext):
    assert framework_free_results[f"{name}.{ext}"] < TOL


def _predict_both(root, name, index, ours, theirs):
    nx, ny = index[name]
    io = np.load(root / f"{name}.io.npz")
    xs = [io[f"x{k}"] for k in range(nx)]
    arg = xs if nx > 1 else xs[0]
    for layer in ours.layers + theirs.layers:                 # stateful layers start from zeros
        if getattr(layer, "stateful", False):
            layer.reset_state()
    a, b = as_list(ours.predict(arg, verbose=0)), as_list(theirs.predict(arg, verbose=0))
    assert len(a) == len(b) == ny
    return max(float(np.abs(p - q).max()) for p, q in zip(a, b))


@pytest.mark.parametrize("ext", [".keras", ".h5"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_files_we_write_load_in_keras(keras_files, tmp_path, name, ext):
    root, index = keras_files
    ours = load_model(root / f"{name}.keras")
    save_model(ours, tmp_path / f"ours{ext}")
    theirs = keras.saving.load_model(tmp_path / f"ours{ext}")
    assert _predict_both(root, name, index, ours, theirs) < TOL
    again = load_model(tmp_path / f"ours{ext}")
    assert _predict_both(root, name, index, ours, again) == 0.0


@pytest.mark.parametrize("name", sorted(CASES))
def test_weights_h5_both_ways(keras_files, tmp_path, name):
    root, index = keras_files
    ours = load_model(root / f"{name}.h5")
    for w in ours.weights:                                    # forget them, then load Keras's
        w.value[...] = 0
    load_weights(ours, root / f"{name}.weights.h5")
    theirs = keras.saving.load_model(root / f"{name}.keras")
    assert _predict_both(root, name, index, ours, theirs) < TOL
    save_weights(ours, tmp_path / "ours.weights.h5")
    theirs.set_weights([np.zeros_like(w) for w in theirs.get_weights()])
    theirs.load_weights(tmp_path / "ours.weights.h5")
    assert _predict_both(root, name, index, ours, theirs) < TOL


@pytest.mark.parametrize("name", sorted(CASES))
def test_native_npz_model(keras_files, tmp_path, name):
    root, index = keras_files
    ours = load_model(root / f"{name}.keras")
    save_model(ours, tmp_path / "m.unrolled.npz")
    with np.load(tmp_path / "m.unrolled.npz", allow_pickle=False) as data:
        assert json.loads(bytes(data["__config__"]))["class_name"] in ("Functional", "Sequential")
    again = load_model(tmp_path / "m.unrolled.npz")
    assert _predict_both(root, name, index, ours, again) == 0.0


def test_legacy_tf_keras2_config(keras_files, tmp_path):
    """A tf.keras 2 style config: no modules, batch_input_shape, list-style inbound nodes."""
    import h5py

    root, index = keras_files
    src = root / "sequential.h5"
    dst = tmp_path / "tf2.h5"
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        layers = cfg["config"]["layers"]
        first = layers.pop(0)["config"]
        for entry in layers:
            entry.pop("module", None)
            entry.pop("registered_name", None)
            entry["config"]["dtype"] = "float32"
        layers[0]["config"]["batch_input_shape"] = first["batch_shape"]
        layers[0]["config"]["time_major"] = False
        layers[0]["config"]["implementation"] = 2
        f.attrs["model_config"] = json.dumps(cfg)
    theirs = keras.saving.load_model(root / "sequential.keras")
    assert _predict_both(root, "sequential", index, load_model(dst), theirs) < TOL


def test_functional_old_style_inbound_nodes(keras_files, tmp_path):
    import h5py

    root, index = keras_files
    dst = tmp_path / "old.h5"
    dst.write_bytes((root / "merge_shared.h5").read_bytes())
    with h5py.File(dst, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        for entry in cfg["config"]["layers"]:
            nodes = []
            for node in entry["inbound_nodes"]:
                args = node["args"][0]
                args = args if isinstance(args, list) else [args]
                nodes.append([t["config"]["keras_history"] + [{}] for t in args])
            entry["inbound_nodes"] = nodes
        cfg["config"]["input_layers"] = [cfg["config"]["input_layers"]]
        cfg["config"]["output_layers"] = [cfg["config"]["output_layers"]]
        f.attrs["model_config"] = json.dumps(cfg)
    theirs = keras.saving.load_model(root / "merge_shared.keras")
    assert _predict_both(root, "merge_shared", index, load_model(dst), theirs) < TOL


def test_native_format_needs_no_h5py(keras_files, tmp_path):
    """``.unrolled.npz`` saves and loads where h5py, TensorFlow, Keras and torch are absent."""
    root, index = keras_files
    for name in ("bidirectional", "embedding", "rnn_cells"):
        save_model(load_model(root / f"{name}.keras"), tmp_path / f"{name}.unrolled.npz")
    code = textwrap.dedent("""
        import sys
        for name in ("h5py", "tensorflow", "keras", "torch"):
            sys.modules[name] = None
        import numpy as np
        from unrolled.models import load_model, save_model
        root, out = sys.argv[1], sys.argv[2]
        for name in ("bidirectional", "embedding", "rnn_cells"):
            io = np.load(f"{root}/{name}.io.npz", allow_pickle=False)
            model = load_model(f"{out}/{name}.unrolled.npz")
            save_model(model, f"{out}/{name}.again.unrolled.npz")
            again = load_model(f"{out}/{name}.again.unrolled.npz")
            for m in (model, again):
                assert np.abs(m.predict(io["x0"], verbose=0) - io["y0"]).max() < 1e-5, name
        try:
            load_model(f"{root}/{name}.keras")
        except ImportError as e:
            print("h5py needed:", e)
        print("OK")
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(root), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout and "pip install 'unrolled[h5]'" in proc.stdout
