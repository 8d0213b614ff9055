"""Model and Sequential: summary, weights in Keras's order, predict, save/load, errors."""
import io
import re
from contextlib import redirect_stdout

import numpy as np
import pytest
from keras_ref import keras

from unrolled.layers import Dense, Flatten, Input, SimpleRNN
from unrolled.models import Model, Sequential
from unrolled.optimizers import Adam


def _summary_text(model):
    buf = io.StringIO()
    with redirect_stdout(buf):
        model.summary()
    return buf.getvalue()


def _rows(text):
    """(type, output shape, params) of each row of a sequential-like summary table."""
    return re.findall(r"│ \S+ \((\w+)\)\s+│ (\([^)]*\))\s+│\s+([\d,]+) │", text)


def _totals(text):
    return [l.strip() for l in text.splitlines() if "params:" in l]


def test_summary_matches_keras_before_and_after_fit(rng):
    x = rng.standard_normal((8, 10, 3)).astype("float32")
    y = rng.standard_normal((8, 2)).astype("float32")
    i = Input((10, 3))
    ours = Model(i, Dense(2)(SimpleRNN(5)(i)))
    ki = keras.Input((10, 3))
    theirs = keras.Model(ki, keras.layers.Dense(2)(keras.layers.SimpleRNN(5)(ki)))
    for m, opt in ((ours, Adam(0.1)), (theirs, keras.optimizers.Adam(0.1))):
        m.compile(loss="mse", optimizer=opt)
    texts = [_summary_text(ours), _summary_text(theirs)]
    assert _rows(texts[0]) == _rows(texts[1]) != []
    assert _totals(texts[0]) == _totals(texts[1])
    ours.fit(x, y, verbose=0)
    theirs.fit(x, y, verbose=0)
    texts = [_summary_text(ours), _summary_text(theirs)]
    assert _totals(texts[0]) == _totals(texts[1])
    assert "Optimizer params: 116 (468.00 B)" in texts[0]


def test_sequential_summary_and_layers_match_keras():
    ours = Sequential([Input((10, 3)), SimpleRNN(5, return_sequences=True), Flatten(), Dense(2)])
    theirs = keras.Sequential([keras.Input((10, 3)), keras.layers.SimpleRNN(5, return_sequences=True),
                               keras.layers.Flatten(), keras.layers.Dense(2)])
    assert [type(l).__name__ for l in ours.layers] == [type(l).__name__ for l in theirs.layers]
    t1, t2 = _summary_text(ours), _summary_text(theirs)
    assert _rows(t1) == _rows(t2) != []
    assert _totals(t1) == _totals(t2)


def test_weights_order_matches_keras_both_ways(rng):
    i, j = Input((6, 4)), Input((3,))
    o = SimpleRNN(3, return_sequences=True)(i, initial_state=[j])
    ours = Model([i, j], Dense(2, activation="tanh")(SimpleRNN(5, go_backwards=True)(o)))
    ki, kj = keras.Input((6, 4)), keras.Input((3,))
    ko = keras.layers.SimpleRNN(3, return_sequences=True)(ki, initial_state=[kj])
    theirs = keras.Model([ki, kj], keras.layers.Dense(2, activation="tanh")(
        keras.layers.SimpleRNN(5, go_backwards=True)(ko)))
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    theirs.set_weights(ours.get_weights())
    x, h0 = rng.standard_normal((7, 6, 4)), rng.standard_normal((7, 3))
    np.testing.assert_allclose(ours.predict([x, h0], verbose=0), theirs.predict([x, h0], verbose=0), atol=1e-6)
    theirs.set_weights([rng.standard_normal(w.shape) for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours.predict([x, h0], verbose=0), theirs.predict([x, h0], verbose=0), atol=1e-5)


def test_predict_batches_and_progress_line(rng, capsys):
    i = Input((5, 2))
    model = Model(i, Dense(1)(SimpleRNN(3)(i)))
    x = rng.standard_normal((70, 5, 2))
    whole = model.predict_on_batch(x)
    np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0), whole, atol=1e-7)
    assert capsys.readouterr().out == ""
    model.predict(x, batch_size=16)
    out = capsys.readouterr().out
    assert "5/5" in out and "━" in out and "/step" in out
    assert model.count_params() == 2 * 3 + 9 + 3 + 3 + 1
    # A model is also a layer: callable on arrays.
    np.testing.assert_allclose(model(x), whole)


def test_eager_layer_call_returns_arrays(rng):
    out = SimpleRNN(4, return_sequences=True, return_state=True)(rng.standard_normal((2, 3, 5)))
    assert isinstance(out, list) and out[0].shape == (2, 3, 4) and out[1].shape == (2, 4)
    assert out[0].dtype == np.float32


def test_save_and_load_weights_roundtrip(rng, tmp_path):
    def build():
        i = Input((5, 2))
        return Model(i, Dense(1)(SimpleRNN(3)(i)))
    a, b = build(), build()
    path = tmp_path / "m.weights.npz"
    a.save_weights(path)
    b.load_weights(path)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert [p.name for p in tmp_path.iterdir()] == ["m.weights.npz"]   # no temp file left
    with pytest.raises(ValueError, match="ending in"):
        a.save_weights(tmp_path / "m.pkl")
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a zip archive"):
        a.load_weights(tmp_path / "bad.npz")


def test_model_bad_input(rng):
    i = Input((10, 3))
    model = Model(i, Dense(2)(SimpleRNN(5)(i)))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 10, 3\), found shape=\(2, 10, 4\)"):
        model.predict(np.zeros((2, 10, 4)), verbose=0)
    with pytest.raises(ValueError, match="expects 1 input"):
        model.predict([np.zeros((2, 10, 3))] * 2, verbose=0)
    with pytest.raises(ValueError, match="5 weight arrays, but set_weights received 2"):
        model.set_weights([np.zeros(1), np.zeros(1)])
    with pytest.raises(TypeError, match="numeric"):
        model.predict(np.full((1, 10, 3), "x"), verbose=0)
    other = Input((3,))
    with pytest.raises(ValueError, match="Graph disconnected"):
        Model(i, Dense(2)(other))
    with pytest.raises(TypeError, match="inputs and outputs"):
        Model()
    with pytest.raises(TypeError, match="only accepts layers"):
        Sequential([np.zeros(3)])
    lines = []                              # an unbuilt model: Keras's "(unbuilt)" table
    Sequential([Dense(2)]).summary(print_fn=lines.append)
    assert any("0 (unbuilt)" in line for line in lines)


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".unrolled.npz"])
def test_model_save_and_load_model_roundtrip(rng, tmp_path, suffix):
    from unrolled.layers import LSTM
    from unrolled.models import load_model
    i = Input((5, 2))
    model = Model(i, Dense(3, activation="softmax")(LSTM(4, return_sequences=True)(i)))
    model.set_weights([rng.standard_normal(w.shape) for w in model.weights])
    path = tmp_path / f"m{suffix}"
    model.save(path)
    again = load_model(path)
    x = rng.standard_normal((3, 5, 2))
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]   # no temp file left behind
