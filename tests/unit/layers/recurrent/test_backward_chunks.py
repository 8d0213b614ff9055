"""BPTT sums the weight gradients one chunk of steps at a time (``RNN._backward_chunk``).

Small test sequences fit in one chunk, so these tests force small chunks and check that
the gradients are the whole-sequence ones: by finite differences in float64, and against
the one-chunk backward in float32 (compiled kernels) and float64.
"""
import numpy as np
import pytest

from gradcheck import check_layer_gradients
from unrolled import utils
from unrolled.fast import kernels
from unrolled.layers import GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell, StackedRNNCells
from unrolled.layers.recurrent import bptt

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
    monkeypatch.setattr(bptt, "BACKWARD_CHUNK_ROWS", rows)
    monkeypatch.setattr(bptt, "SEPARATE_DXP_CHUNK_ROWS", rows)


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
    lstm = LSTM(4)
    assert lstm._backward_chunk(50, 32) == 50                # 32 x 50 rows < 2048: one chunk
    assert lstm._backward_chunk(100, 256) == 13              # an eighth of the steps
    assert lstm._backward_chunk(1000, 256) == 125
    assert lstm._backward_chunk(20, 256) == 8                # at least 2048 rows
    simple = SimpleRNN(4)                  # compiled BPTT with dxp apart: at least 256 rows
    assert simple._backward_chunk(50, 32) == 50
    assert simple._backward_chunk(50, 32, separate_dxp=True) == 8
    assert simple._backward_chunk(100, 256, separate_dxp=True) == 13
    assert simple._backward_chunk(10, 1, separate_dxp=True) == 10   # the notebook: one chunk


@pytest.mark.parametrize("kind,h_index", [("simple", 0), ("lstm", 1), ("gru", 1)])
def test_compiled_bptt_reads_the_previous_states_as_a_slice_of_the_training_buffer(
        kind, h_index, monkeypatch):
    """The compiled training forward keeps h_{-1} .. h_{T-1} in one (T+1, B, M) buffer, so
    each chunk's weight gradient gets its previous states as a slice of it, not a copy;
    they are the reference steps' previous states within float32 rounding."""
    monkeypatch.setattr(kernels, "_enabled", True)      # on, even in the NumPy-path run
    if not kernels.fused(np.dtype("float32")):
        pytest.fail("numba is a test dependency: the compiled kernels must be active")
    _chunk_rows(monkeypatch, 2 * B)                            # chunks of 2 steps
    layer, x, _ = _build(kind, {}, "float32")
    with kernels.unfused():                                    # the reference steps
        _, reference = layer.forward(x)
    previous = np.stack([c[1 if kind == "gru" else 0] for c in reference[3]])   # their h_in
    _, cache = layer.forward(x)
    H = cache.sequence.buffers[h_index]
    np.testing.assert_allclose(H[:-1], previous, rtol=2e-6, atol=1e-6)
    seen = []
    real = type(layer.cell).weight_gradients

    def spy(cell, xs, caches, dxp, stacked=None):
        seen.append((len(xs), stacked["h_in"].copy(), np.shares_memory(stacked["h_in"], H)))
        return real(cell, xs, caches, dxp, stacked)

    monkeypatch.setattr(type(layer.cell), "weight_gradients", spy)
    layer.backward(cache, np.ones((B, M), "float32"))
    assert [n for n, _, _ in seen] == [1, 2, 2, 2]             # steps 6, 4-5, 2-3, 0-1
    assert all(shared for _, _, shared in seen)
    np.testing.assert_array_equal(np.concatenate([h for _, h, _ in seen[::-1]]), H[:-1])
