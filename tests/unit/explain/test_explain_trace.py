"""explain.trace and explain.equations: the traced values equal a hand-written loop, and
the numbers printed in the equations are the traced values."""
import re

import numpy as np
import pytest
from conftest import varied

from unrolled.explain import equations, trace
from unrolled.layers import (GRU, LSTM, RNN, Bidirectional, Dense, Embedding, Flatten, Input,
                             LSTMCell, SimpleRNN, SimpleRNNCell, StackedRNNCells)
from unrolled.models import Model, Sequential


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def set_varied(layer, rng, x_shape):
    """Build ``layer`` and give it weights that differ per gate and per unit (biases too)."""
    layer._maybe_build(x_shape)
    layer.set_weights([varied(rng, *w.shape) for w in layer.get_weights()])
    return [w.astype(np.float64) for w in layer.get_weights()]


# --- hand loops: the cells' docstring equations, in float64 ------------------------------
def hand_simple_rnn(x, Wx, Wh, b):
    h = np.zeros((x.shape[0], Wh.shape[0]))
    out = {"a": [], "h": [], "h_prev": []}
    for t in range(x.shape[1]):
        out["h_prev"].append(h)
        a = x[:, t] @ Wx + h @ Wh + b
        h = np.tanh(a)
        out["a"].append(a)
        out["h"].append(h)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def hand_lstm(x, W, U, b, order):
    M = U.shape[0]
    h, c = np.zeros((x.shape[0], M)), np.zeros((x.shape[0], M))
    out = {k: [] for k in ("zi", "zf", "zc", "zo", "i", "f", "g", "o", "c", "h", "c_prev", "h_prev")}
    for t in order:
        out["h_prev"].append(h)
        out["c_prev"].append(c)
        z = x[:, t] @ W + h @ U + b
        zi, zf, zc, zo = np.split(z, 4, axis=1)
        i, f, g, o = sigmoid(zi), sigmoid(zf), np.tanh(zc), sigmoid(zo)
        c = f * c + i * g
        h = o * np.tanh(c)
        for k, v in zip(out, (zi, zf, zc, zo, i, f, g, o, c, h)):
            out[k].append(v)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def hand_gru(x, W, U, b, reset_after):
    M = U.shape[0]
    h = np.zeros((x.shape[0], M))
    out = {k: [] for k in ("az", "ar", "ah", "z", "r", "hh", "h")}
    for t in range(x.shape[1]):
        if reset_after:
            xz, xr, xh = np.split(x[:, t] @ W + b[0], 3, axis=1)
            rz, rr, rh = np.split(h @ U + b[1], 3, axis=1)
            az, ar = xz + rz, xr + rr
            z, r = sigmoid(az), sigmoid(ar)
            ah = xh + r * rh
        else:
            xz, xr, xh = np.split(x[:, t] @ W + b, 3, axis=1)
            az, ar = xz + h @ U[:, :M], xr + h @ U[:, M:2 * M]
            z, r = sigmoid(az), sigmoid(ar)
            ah = xh + (r * h) @ U[:, 2 * M:]
        hh = np.tanh(ah)
        h = z * h + (1 - z) * hh
        for k, v in zip(out, (az, ar, ah, z, r, hh, h)):
            out[k].append(v)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def assert_matches(lt, expected, atol=2e-5):
    for k, v in expected.items():
        np.testing.assert_allclose(lt[k], v, atol=atol, err_msg=f"{lt.name}: {k}")


# --- trace ------------------------------------------------------------------------------
def test_simple_rnn_trace_equals_hand_loop(rng):
    x = rng.standard_normal((3, 7, 4)).astype("float32")
    layer = SimpleRNN(5, return_sequences=True)
    w = set_varied(layer, rng, x.shape)
    lt = trace(layer, x)[0]
    assert_matches(lt, hand_simple_rnn(x.astype(float), *w))
    np.testing.assert_array_equal(lt.x, x)
    # the trace runs the reference steps, the layer may run compiled: float32 rounding apart
    np.testing.assert_allclose(lt.output, layer(x), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_lstm_trace_equals_hand_loop_in_real_time_order(rng, go_backwards):
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    layer = LSTM(4, go_backwards=go_backwards)
    w = set_varied(layer, rng, x.shape)
    lt = trace(layer, x)[0]
    order = range(5, -1, -1) if go_backwards else range(6)
    hand = hand_lstm(x.astype(float), *w, order)
    if go_backwards:                       # the hand loop stacks in processing order
        hand = {k: v[:, ::-1] for k, v in hand.items()}
    assert_matches(lt, hand)
    np.testing.assert_array_equal(lt.x, x)           # x[:, t] really is step t's input
    assert lt.go_backwards is go_backwards
    assert list(lt.processing_step) == (list(range(5, -1, -1)) if go_backwards else list(range(6)))
    last = lt.h[:, 0] if go_backwards else lt.h[:, -1]
    np.testing.assert_allclose(last, layer(x), atol=1e-6)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_trace_equals_hand_loop(rng, reset_after):
    x = rng.standard_normal((3, 5, 2)).astype("float32")
    layer = GRU(4, reset_after=reset_after)
    w = set_varied(layer, rng, x.shape)
    lt = trace(layer, x)[0]
    assert_matches(lt, hand_gru(x.astype(float), *w, reset_after))
    assert ("rh" in lt) is reset_after


@pytest.mark.parametrize("compiled", [True, False])
def test_xp_is_the_projection_the_step_received(rng, compiled):
    """``xp`` is the step's input as it arrived, ``x_t @ kernel`` (plus the bias where Keras
    adds it to the projection: SimpleRNN, and a GRU's input bias), not the pre-activation
    the step then computes from it; the pre-activations are xp + h U (+ b). The trace runs
    the cells' reference steps, so this holds with the compiled kernels on or off."""
    from unrolled.fast import kernels
    before = kernels._enabled
    kernels.set_enabled(compiled)
    try:
        x = rng.standard_normal((3, 5, 2)).astype("float32")
        for make in (SimpleRNN, LSTM, GRU):
            layer = make(4, return_sequences=True)
            w = set_varied(layer, rng, x.shape)
            lt = trace(layer, x)[0]
            pre = lt["a" if make is SimpleRNN else "z" if make is LSTM else "az"]
            b_in = w[2][0] if make is GRU else w[2] if make is SimpleRNN else 0
            np.testing.assert_allclose(lt.xp, x.astype(float) @ w[0] + b_in, atol=1e-6)
            assert np.abs(lt.xp[..., :4] - pre[..., :4]).max() > 0.1   # not the pre-activation
            np.testing.assert_allclose(lt.output, layer(x), rtol=2e-6, atol=1e-6)
            if make is not GRU:
                h = np.concatenate([np.zeros_like(lt.h[:, :1]), lt.h[:, :-1]], axis=1)
                np.testing.assert_allclose(pre, x @ w[0] + h @ w[1] + w[2], atol=1e-5)
    finally:
        kernels.set_enabled(before)


def test_model_trace_reads_every_layer_and_bidirectional_directions(rng):
    i = Input((5, 3))
    h = Bidirectional(GRU(3, return_sequences=True, name="gru"), merge_mode="concat", name="bi")(i)
    h = LSTM(2, name="lstm")(h)
    model = Model(i, Dense(2, name="dense")(h))
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    tr = trace(model, x)
    assert tr.keys() == ["bi", "bi/forward_gru", "bi/backward_gru", "lstm", "dense"]
    fwd, bwd = tr.recurrent[0], tr.recurrent[1]
    assert not fwd.go_backwards and bwd.go_backwards
    merged = tr[0].output
    np.testing.assert_allclose(merged[..., :3], fwd.h, atol=1e-6)
    np.testing.assert_allclose(merged[..., 3:], bwd.h, atol=1e-6)   # real time order both
    lstm = tr.recurrent[2]
    np.testing.assert_array_equal(lstm.x, merged)
    np.testing.assert_allclose(tr[-1].input, lstm.h[:, -1], atol=1e-6)
    np.testing.assert_allclose(tr.outputs, model.predict(x, verbose=0), atol=1e-6)


def test_stacked_cells_and_masks_are_traced(rng):
    i = Input((4,), dtype="int32")
    e = Embedding(6, 3, mask_zero=True)(i)
    h = RNN(StackedRNNCells([SimpleRNNCell(3), LSTMCell(2)]), name="rnn")(e)
    model = Model(i, Flatten()(h))
    ids = np.array([[1, 2, 0, 0], [3, 4, 5, 1]])
    tr = trace(model, ids)
    c0, c1 = tr["rnn/cell_0"], tr["rnn/cell_1"]
    np.testing.assert_array_equal(c0.mask, ids != 0)
    np.testing.assert_allclose(c1.x, c0.output, atol=1e-7)          # cell 1 reads cell 0
    assert "c" in c1 and "c" not in c0


def test_to_dataframe_long_format(rng):
    layer = GRU(3)
    x = rng.standard_normal((2, 4, 2)).astype("float32")
    lt = trace(layer, x)[0]
    df = lt.to_dataframe()
    assert list(df.columns) == ["layer", "quantity", "sample", "t", "unit", "value"]
    row = df[(df.quantity == "z") & (df["sample"] == 1) & (df.t == 2) & (df.unit == 0)]
    assert row.value.item() == pytest.approx(float(lt.z[1, 2, 0]))
    assert len(df) == sum(v.size for v in lt.values.values())


# --- equations ----------------------------------------------------------------------------
def numbers_of(text, lhs):
    """The vector after the last '=' on the (possibly continued) line of ``lhs``."""
    block = re.search(rf"^  {re.escape(lhs)}\s+=(.*?)(?=^  \S|\Z)", text, re.M | re.S).group(1)
    return np.array([float(v) for v in re.findall(r"-?\d+\.\d+", block.split("=")[-1])])


@pytest.mark.parametrize("make, names", [
    (lambda: SimpleRNN(4), ("a", "h")),
    (lambda: LSTM(3, go_backwards=True), ("zi", "zf", "zc", "zo", "i", "f", "g", "o", "c", "tc", "h")),
    (lambda: GRU(3), ("az", "ar", "z", "r", "rh", "ah", "hh", "h")),
    (lambda: GRU(3, reset_after=False), ("az", "ar", "z", "r", "ah", "hh", "h")),
])
def test_equation_numbers_are_the_traced_values(rng, make, names):
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    layer = make()
    set_varied(layer, rng, x.shape)
    lt = trace(layer, x)[0]
    for t in (0, 3, -1):
        eq = equations(layer, x, t=t, sample=1)
        text = str(eq)
        for n in names:
            np.testing.assert_allclose(numbers_of(text, n), lt[n][1, t], atol=6e-5, err_msg=n)
            np.testing.assert_array_equal(eq.values[n], lt[n][1, t])
        # the displayed terms add up to the pre-activation
        first = eq.lines[2] if names[0] != "zi" else eq.lines[3]
        terms = [np.array([float(v) for v in re.findall(r"-?\d+\.\d+", p)])
                 for p in first.substituted.split(" + ")]
        np.testing.assert_allclose(sum(terms), first.result, atol=3e-4)
        assert "\\begin{aligned}" in eq._repr_latex_() and "<table" in eq._repr_html_()


def test_equations_for_dense_and_from_a_trace(rng):
    dense = Dense(3, activation="relu")
    x = rng.standard_normal((2, 4)).astype("float32")
    set_varied(dense, rng, x.shape)
    eq = equations(dense, x, sample=1)
    np.testing.assert_allclose(numbers_of(str(eq), "y"), dense(x)[1], atol=6e-5)
    model = Sequential([Input((4, 2)), SimpleRNN(3, name="rnn"), Dense(1, name="out")])
    tr = trace(model, rng.standard_normal((1, 4, 2)))
    eq = equations(tr["rnn"], t=1, units=[0, 2])
    assert "units [0, 2]" in eq.title and len(eq.values["h"]) == 2


# --- bad input ----------------------------------------------------------------------------
def test_bad_inputs_say_what_was_expected(rng):
    layer = LSTM(3)
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"t=5 is out of range.*\[0, 4\]"):
        equations(layer, x, t=5)
    with pytest.raises(ValueError, match="sample=7 is out of range"):
        equations(layer, x, sample=7)
    with pytest.raises(ValueError, match="units"):
        equations(layer, x, units=[9])
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        trace(layer, rng.standard_normal((2, 5, 4)))
    model = Sequential([Input((5, 3)), layer])
    with pytest.raises(ValueError, match=r"expected shape=\(None, 5, 3\)"):
        trace(model, rng.standard_normal((2, 6, 3)))
    with pytest.raises(TypeError, match="equations knows SimpleRNN, LSTM, GRU, Dense.*Flatten"):
        equations(Flatten(), x)
    with pytest.raises(TypeError, match="Model or Layer"):
        trace(lambda v: v, x)
    with pytest.raises(TypeError, match="get_layer"):
        equations(model, x)
