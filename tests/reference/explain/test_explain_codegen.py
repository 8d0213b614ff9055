"""explain.to_numpy_code: the generated program, run on its own, equals model.predict."""
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from unrolled.explain import to_numpy_code
from unrolled.layers import (GRU, LSTM, RNN, Activation, Add, Bidirectional, Concatenate, Dense,
                             Dropout, Embedding, Flatten, Input, LSTMCell, Masking, RepeatVector,
                             Reshape, SimpleRNN, SimpleRNNCell, StackedRNNCells, TimeDistributed)
from unrolled.models import Model, Sequential

RNG = np.random.default_rng(7)


def x3(*shape):
    return RNG.standard_normal(shape).astype("float32")


def vary(model):
    """Weights that differ everywhere, biases included, so that a layout slip shows."""
    model.set_weights([(RNG.standard_normal(w.shape) * 0.5).astype(w.dtype) for w in model.get_weights()])
    return model


def notebook():
    i = Input((10, 3))
    return Model(i, Dense(2)(SimpleRNN(5)(i))), x3(4, 10, 3)


def lstm_backwards_time_distributed():
    i = Input((7, 3))
    h = LSTM(4, return_sequences=True, go_backwards=True)(i)
    h = TimeDistributed(Dense(2, activation="relu"))(h)
    return Model(i, Dense(3, activation="softmax")(Flatten()(h))), x3(5, 7, 3)


def grus():
    i = Input((6, 2))
    h = GRU(4, reset_after=False, return_sequences=True, activation="relu")(i)
    h = GRU(3, use_bias=False, return_sequences=True, go_backwards=True)(h)
    h = GRU(3, recurrent_activation="hard_sigmoid")(h)
    return Model(i, Activation("tanh")(h)), x3(3, 6, 2)


def keras2_hard_sigmoid():
    """As loaded from a Keras 2 file: the code must print clip(0.2 x + 0.5, 0, 1)."""
    i = Input((6, 2))
    h = LSTM(3, recurrent_activation="hard_sigmoid_keras2", return_sequences=True)(i)
    h = GRU(3, recurrent_activation="hard_sigmoid_keras2", reset_after=False)(h)
    return Model(i, Dense(2, activation="hard_sigmoid_keras2")(h)), 2 * x3(3, 6, 2)


def bidirectional(mode):
    def build():
        i = Input((5, 3))
        h = Bidirectional(LSTM(3, return_sequences=True), merge_mode=mode)(i)
        if mode is None:
            h = Concatenate()(h)
        h = Bidirectional(SimpleRNN(2, activation="elu"))(h)
        return Model(i, Dense(1, activation="sigmoid")(h)), x3(4, 5, 3)
    return build


def embedding_lstm():
    i = Input((6,), dtype="int32")
    h = LSTM(4, use_bias=False)(Embedding(11, 3)(i))
    return Model(i, Dense(2, activation="swish")(h)), RNG.integers(0, 11, (5, 6))


def two_inputs_two_outputs():
    a, b = Input((5, 2), name="a"), Input((5, 3), name="b")
    ha = GRU(3, return_sequences=True)(a)
    hb = SimpleRNN(3, return_sequences=True)(b)
    s = Add()([ha, hb])
    c = Concatenate(axis=1)([ha, hb])
    out1 = Dense(2)(Flatten()(c))
    out2 = TimeDistributed(Dense(1))(s)
    return Model([a, b], [out1, out2]), [x3(3, 5, 2), x3(3, 5, 3)]


def states_and_reshapes():
    i = Input((6, 2))
    h, hs, cs = LSTM(4, return_state=True)(i)
    r = RepeatVector(3)(Dropout(0.5)(h))
    g = GRU(4, return_sequences=True)(r, initial_state=[hs])
    bi, *_ = Bidirectional(GRU(2, return_state=True))(g)
    return Model(i, [Reshape((2, 6))(g), Add()([cs, Dense(4)(bi)])]), x3(4, 6, 2)


def sequential():
    m = Sequential([Input((4, 3)), SimpleRNN(3, return_sequences=True), LSTM(2), Dense(1)])
    return m, x3(2, 4, 3)


BUILDERS = [notebook, lstm_backwards_time_distributed, grus, keras2_hard_sigmoid,
            bidirectional("concat"),
            bidirectional("sum"), bidirectional("mul"), bidirectional("ave"), bidirectional(None),
            embedding_lstm, two_inputs_two_outputs, states_and_reshapes, sequential]


def run_fresh(source):
    """Execute generated source in a fresh namespace; return that namespace."""
    namespace = {"__name__": "generated_model"}
    exec(compile(source, "<generated>", "exec"), namespace)  # the test runs what codegen wrote
    return namespace


def assert_same(got, expected):
    if isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same(g, e)
        return
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_generated_code_equals_predict(build):
    model, x = build()
    vary(model)
    source = to_numpy_code(model)
    ns = run_fresh(source)
    assert_same(ns["predict"](x), model.predict(x, verbose=0))
    imports = re.findall(r"^\s*(?:import|from) (\w+)", source, re.M)
    assert set(imports) <= {"numpy", "argparse"}
    # the literals give back the exact weights, bit for bit
    assert sum(a.size for a in ns["W"].values()) == model.count_params()
    assert sorted(a.tobytes() for a in ns["W"].values()) == sorted(w.numpy().tobytes() for w in model.weights)


def test_npz_weights_and_running_the_file(tmp_path):
    model, x = lstm_backwards_time_distributed()
    vary(model)
    prog = tmp_path / "lstm_model.py"
    source = to_numpy_code(model, weights="npz", path=prog)
    assert prog.read_text() == source and (tmp_path / "lstm_model.npz").exists()
    assert "allow_pickle=False" in source and "np.array(" not in source
    np.save(tmp_path / "x.npy", x)
    subprocess.run([sys.executable, str(prog), str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy")],
                   check=True, cwd="/", timeout=120, env={**os.environ, "PYTHONPATH": ""})
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0), atol=1e-6)


def test_embedded_file_runs_without_unrolled_on_the_path(tmp_path):
    model, x = two_inputs_two_outputs()
    vary(model)
    prog = tmp_path / "m.py"
    to_numpy_code(model, path=prog)
    for k, a in enumerate(x):
        np.save(tmp_path / f"x{k}.npy", a)
    subprocess.run([sys.executable, "-I", str(prog), str(tmp_path / "x0.npy"), str(tmp_path / "x1.npy"),
                    "--out", str(tmp_path / "y.npz")], check=True, timeout=120)
    with np.load(tmp_path / "y.npz") as y:
        assert_same([y["arr_0"], y["arr_1"]], model.predict(x, verbose=0))


def test_unsupported_layers_are_named():
    i = Input((5, 3))
    h = Masking()(i)
    h = RNN(StackedRNNCells([SimpleRNNCell(2), LSTMCell(2)]), name="stack")(h)
    model = Model(i, h)
    with pytest.raises(ValueError, match=r"layer 'masking.*Masking.*mask.*layer 'stack'.*StackedRNNCells"):
        to_numpy_code(model)
    j = Input((4,), dtype="int32")
    with pytest.raises(ValueError, match=r"'padded'.*Embedding.*mask"):
        to_numpy_code(Model(j, LSTM(2)(Embedding(5, 2, mask_zero=True, name="padded")(j))))
    k = Input((4, 2), batch_size=2)
    with pytest.raises(ValueError, match="stateful"):
        to_numpy_code(Model(k, SimpleRNN(2, stateful=True)(k)))


def test_bad_arguments():
    model, _ = notebook()
    with pytest.raises(ValueError, match="'embed' or 'npz'"):
        to_numpy_code(model, weights="pickle")
    with pytest.raises(ValueError, match="needs path="):
        to_numpy_code(model, weights="npz")
    with pytest.raises(TypeError, match="Model or Sequential"):
        to_numpy_code(Dense(2))
    with pytest.raises(ValueError, match="not built"):
        to_numpy_code(Sequential([Dense(2)]))


def test_codegen_never_executes_code_itself():
    """The generated text is only returned and written; running it is the caller's choice."""
    src = pathlib.Path(__file__).parents[3] / "src" / "unrolled" / "explain"
    for f in src.rglob("*.py"):
        text = f.read_text()
        assert not re.search(r"\b(exec|eval)\(", text), f
