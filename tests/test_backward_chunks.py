"""BPTT sums the weight gradients one chunk of steps at a time (``RNN._backward_chunk``).

Small test sequences fit in one chunk, so these tests force small chunks and check that
the gradients are the whole-sequence ones: by finite differences in float64, and against
the one-chunk backward in float32 (compiled kernels) and float64.
"""
import numpy as np
import pytest

from gradcheck import check_layer_gradients
from unrolled import kernels, utils
from unrolled.layers import GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell, StackedRNNCells
from unrolled.layers import recurrent
from unrolled.layers.gates import stack_steps

B, T, F, M = 3, 7, 4, 5

LAYERS = {
    "simple": lambda **kw: SimpleRNN(M, **kw),
    "lstm": lambda **kw: LSTM(M, **kw),
    "gru": lambda **kw: GRU(M, **kw),
    "gru_before": lambda **kw: GRU(M, reset_after=False, **kw),
    "stacked": lambda dropout=0.0, recurrent_dropout=0.0, **kw: RNN(   # (no dropout in stacks)
        StackedRNNCells([SimpleRNNCell(3), LSTMCell(4), GRUCell(M)]), **kw),
    "bidirectional": lambda **kw: Bidirectional(LSTM(M, return_sequences=kw.pop("return_sequences", False),
                                                     dropout=kw.pop("dropout", 0.0),
                                                     recurrent_dropout=kw.pop("recurrent_dropout", 0.0),
                                                     dtype=kw.pop("dtype")), **kw),
}

CASES = [
    {},
    {"return_sequences": True, "go_backwards": True},
    {"return_sequences": True, "mask": True},
    {"dropout": 0.3, "recurrent_dropout": 0.4, "training": True},
]


def _chunk_rows(monkeypatch, rows):
    """Chunks of max(ceil(T/8), ceil(rows/B)) steps: rows=B gives one step per chunk."""
    monkeypatch.setattr(recurrent, "BACKWARD_CHUNK_ROWS", rows)


def _build(kind, case, dtype, seed=0):
    cfg = {k: v for k, v in case.items() if k not in ("mask", "training")}
    if kind == "bidirectional":
        cfg.pop("go_backwards", None)
    layer = LAYERS[kind](dtype=dtype, **cfg)
    layer.build((B, T, F))
    r = np.random.default_rng(seed)
    layer.set_weights([(r.standard_normal(w.shape) * 0.5).astype(dtype) for w in layer.weights])
    x = (r.standard_normal((B, T, F))).astype(dtype)
    mask = r.random((B, T)) > 0.3 if case.get("mask") else None
    return layer, x, mask


def _gradients(layer, x, mask, training, dy_seed=1):
    utils.set_random_seed(7)                                 # the same dropout masks each time
    out, cache = layer.forward(x, training=training, mask=mask)
    dy = np.random.default_rng(dy_seed).standard_normal(out.shape).astype(out.dtype)
    (dx, *_), dweights = layer.backward(cache, dy)
    return [dx] + list(dweights)


@pytest.mark.parametrize("rows", [B, 2 * B])                 # chunks of 1 and of 2 steps
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_chunked_gradients_match_finite_differences(kind, case, rows, monkeypatch):
    _chunk_rows(monkeypatch, rows)
    layer, x, mask = _build(kind, CASES[case], "float64")
    training = CASES[case].get("training", False)

    class Seeded:                        # the same dropout masks on every forward call
        weights = layer.weights

        def forward(self, main, **kw):
            utils.set_random_seed(7)
            return layer.forward(main, training=training, mask=mask, **kw)

        def backward(self, cache, dy):
            return layer.backward(cache, dy)

    check_layer_gradients(Seeded(), [x], np.random.default_rng(3), tol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_chunked_gradients_equal_the_one_chunk_gradients(kind, case, dtype, monkeypatch):
    # float32 runs the compiled kernels, which write dxp over the cache: a new forward each time.
    layer, x, mask = _build(kind, CASES[case], dtype)
    training = CASES[case].get("training", False)
    _chunk_rows(monkeypatch, 10 ** 9)
    whole = _gradients(layer, x, mask, training)
    for rows in (B, 2 * B, 3 * B):
        _chunk_rows(monkeypatch, rows)
        chunked = _gradients(layer, x, mask, training)
        tol = 2e-6 if dtype == "float32" else 1e-13
        for w, c in zip(whole, chunked):
            np.testing.assert_allclose(c, w, rtol=tol, atol=tol * np.abs(w).max())


def test_chunk_sizes():
    layer = SimpleRNN(4)
    one_step = np.zeros((32, 4), "float32")
    assert layer._backward_chunk(50, one_step) == 50          # 32 x 50 rows < 2048: one chunk
    big = np.zeros((256, 4), "float32")
    assert layer._backward_chunk(100, big) == 13              # an eighth of the steps
    assert layer._backward_chunk(1000, big) == 125
    assert layer._backward_chunk(20, big) == 8                # at least 2048 rows


def test_compiled_simple_rnn_states_are_stacked_as_a_view(monkeypatch):
    if not kernels.fused(np.dtype("float32")):
        pytest.fail("numba is a test dependency: the compiled kernels must be active")
    _chunk_rows(monkeypatch, 2 * B)
    layer, x, _ = _build("simple", {}, "float32")
    _, cache = layer.forward(x)
    xp, caches = cache.xp, cache[3]
    h_ins = [c[0] for c in caches[1:]]                        # h_0 .. h_{T-2}: xp[0] .. xp[T-2]
    stacked = stack_steps(h_ins)
    assert np.shares_memory(stacked, xp)
    np.testing.assert_array_equal(stacked, np.stack(h_ins))
    first = stack_steps([c[0] for c in caches])               # starts with the initial state
    assert not np.shares_memory(first, xp)
    np.testing.assert_array_equal(first, np.stack([c[0] for c in caches]))


def test_stack_steps_copies_unless_the_steps_are_consecutive():
    buf = np.arange(4 * 3 * 2, dtype="float32").reshape(4, 3, 2)
    assert np.shares_memory(stack_steps([buf[1], buf[2], buf[3]]), buf)
    for items in ([buf[2], buf[1]],                          # reversed
                  [buf[0], buf[2]],                          # a gap
                  [buf[0], buf[1].copy()],                   # another owner
                  [buf[0, :, :1], buf[1, :, :1]]):           # not contiguous
        out = stack_steps(items)
        assert not np.shares_memory(out, buf)
        np.testing.assert_array_equal(out, np.stack(items))
