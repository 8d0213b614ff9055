"""The fast path (``unrolled.fast``, numba) against the reference cells.

The cells' ``step``/``step_backward`` are the reference; a compiled implementation of the
whole sequence (``fast.cells``), chosen by ``fast.plan``, must give the same outputs,
final states and gradients (input, initial states, weights) within float32 rounding:

    |fast - reference| <= RTOL * |reference| + ATOL * max(1, max |reference|)

per array, RTOL = 2e-6 and ATOL = 2e-6 (the compiled loops sum ``x W``, ``h U`` and the
bias in another order, or as one folded product, and BLAS's summation order depends on the
CPU kernel, so bit-identity is not promised). ``kernels.unfused()`` runs the reference
steps with the kernels otherwise on. numba is a test dependency: nothing here skips.
"""
import numba  # noqa: F401  (a test dependency, pyproject [test]: these tests never skip)
import numpy as np
import pytest

from unrolled import utils
from unrolled.fast import cells as fast_cells
from unrolled.fast import kernels, planning
from unrolled.layers import GRU, LSTM, RNN, GRUCell, LSTMCell, SimpleRNN
from unrolled.layers.recurrent import bptt, gates, inputs

RTOL = ATOL = 2e-6


def close(fast, ref, what=""):
    fast, ref = np.asarray(fast), np.asarray(ref)
    assert fast.shape == ref.shape and fast.dtype == ref.dtype, what
    bound = RTOL * np.abs(ref) + ATOL * max(1.0, float(np.abs(ref).max(initial=0)))
    excess = np.abs(fast.astype(np.float64) - ref) - bound
    assert excess.max(initial=-1) <= 0, (what, float(np.abs(fast - ref).max()))


@pytest.fixture(autouse=True)
def compiled_on():
    before = kernels._enabled
    kernels.set_enabled(True)
    yield
    kernels.set_enabled(before)


@pytest.fixture(params=["fold by size", "fold at any size"])
def fold(request, monkeypatch):
    """Run with the fold at its measured sizes (these small layers then project x W apart)
    and at any size, so both routes are checked."""
    if request.param == "fold at any size":
        monkeypatch.setattr(fast_cells.SimpleRNNSequence, "fold_min_macs", 0)
        monkeypatch.setattr(fast_cells.LSTMSequence, "fold_min_macs", 0)
    return request.param


@pytest.fixture
def plans(monkeypatch):
    """The plans the hook handed out in this test (so a test knows the fast path ran)."""
    made = []
    real = planning.plan

    def spy(*args, **kw):
        p = real(*args, **kw)
        made.append(p)
        return p

    monkeypatch.setattr(planning, "plan", spy)
    return made


def _layer(make, seed, b, t, f, m):
    """A layer with weights at an initializer's scale that differ per gate and unit."""
    r = np.random.default_rng(seed)
    layer = make(m)
    x = r.standard_normal((b, t, f)).astype(np.float32)
    layer.build(x.shape)
    layer.set_weights([(r.standard_normal(w.shape) / np.sqrt(w.shape[0] if len(w.shape) == 2 else 10))
                       .astype(np.float32) for w in layer.weights])
    init = [r.standard_normal((b, m)).astype(np.float32) for _ in layer.cell.state_size]
    return r, x, layer, init


LAYERS = {
    "lstm": lambda m, **kw: LSTM(m, return_sequences=True, return_state=True, **kw),
    "lstm-last-backwards": lambda m, **kw: LSTM(m, go_backwards=True, return_state=True,
                                                unit_forget_bias=False, **kw),
    "gru": lambda m, **kw: GRU(m, return_sequences=True, return_state=True, **kw),
    "gru-nobias-last-backwards": lambda m, **kw: GRU(m, use_bias=False, go_backwards=True,
                                                     return_state=True, **kw),
    "simple": lambda m, **kw: SimpleRNN(m, return_sequences=True, return_state=True, **kw),
    "simple-nobias-last-backwards": lambda m, **kw: SimpleRNN(m, use_bias=False,
                                                              go_backwards=True,
                                                              return_state=True, **kw),
    "simple-relu": lambda m, **kw: SimpleRNN(m, activation="relu", return_sequences=True,
                                             return_state=True, **kw),
    "simple-relu-zero-backwards": lambda m, **kw: SimpleRNN(
        m, activation="relu", return_sequences=True, go_backwards=True, return_state=True,
        zero_output_for_mask=True, **kw),
    "lstm-zero-last": lambda m, **kw: LSTM(m, return_state=True, zero_output_for_mask=True,
                                           **kw),
}
INFERENCE_ONLY = {   # GRU reset_after=False: compiled for inference, trained by the reference
    "gru-before": lambda m, **kw: GRU(m, reset_after=False, return_sequences=True,
                                      return_state=True, **kw),
    "gru-before-nobias-last-backwards": lambda m, **kw: GRU(
        m, reset_after=False, use_bias=False, go_backwards=True, return_state=True, **kw),
}
SIZES = [(1, 10, 3, 5), (4, 7, 3, 2), (6, 9, 3, 5), (32, 12, 5, 64)]


def _mask(r, b, t):
    mask = r.random((b, t)) > 0.4
    mask[0] = False                                   # every step masked
    if b > 2:
        mask[1, :3], mask[2] = False, True            # a late start; none masked
    return mask


@pytest.mark.sampled(0.4)
@pytest.mark.parametrize("chunk_steps", [2, None])       # projection chunks of 2 steps, or one
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("b,t,f,m", SIZES)
@pytest.mark.parametrize("kind", sorted({**LAYERS, **INFERENCE_ONLY}))
def test_inference_equals_the_reference(kind, b, t, f, m, masked, chunk_steps, fold, plans,
                                        monkeypatch):
    make = {**LAYERS, **INFERENCE_ONLY}[kind]
    r, x, layer, init = _layer(make, t + m, b, t, f, m)
    if chunk_steps:
        monkeypatch.setattr(inputs, "PROJECTION_CHUNK_BYTES", chunk_steps * b * 4 * m * 4)
    mask = _mask(r, b, t) if masked else None
    before = [s.copy() for s in init]
    fast = layer.call(x, mask=mask, initial_state=init)
    assert (plans[-1] is not None) == (m > 1)          # one unit: NumPy's BLAS takes another route
    with kernels.unfused():
        ref = layer.call(x, mask=mask, initial_state=init)
    assert plans[-1] is None
    for i, (a, c) in enumerate(zip(fast, ref)):
        close(a, c, f"output {i}")
    for s, s0 in zip(init, before):
        np.testing.assert_array_equal(s, s0)           # the initial states are not touched
    if masked:
        np.testing.assert_array_equal(fast[1][0], init[0][0])   # row 0: every step masked


UNIT_MAJOR_SIZES = [(1, 10, 3, 5), (4, 7, 3, 2), (17, 9, 3, 5), (32, 12, 5, 64)]


@pytest.mark.parametrize("chunk_steps", [2, None])
@pytest.mark.parametrize("b,t,f,m", UNIT_MAJOR_SIZES)
@pytest.mark.parametrize("kind", ["lstm", "lstm-last-backwards", "lstm-zero-last"])
def test_unit_major_inference_equals_the_reference(kind, b, t, f, m, chunk_steps,
                                                   monkeypatch):
    """The folded LSTM's unit-major loop (``lstm_folded_t``), forced at every size: the
    same outputs and final states as the reference steps, carried across chunks."""
    monkeypatch.setattr(fast_cells.LSTMSequence, "fold_min_macs", 0)
    monkeypatch.setattr(fast_cells.LSTMSequence, "unit_major_rows", 1)
    if chunk_steps:
        monkeypatch.setattr(inputs, "PROJECTION_CHUNK_BYTES", chunk_steps * b * f * 4)
    ran = []
    real = fast_cells.LSTMSequence._run_unit_major
    monkeypatch.setattr(fast_cells.LSTMSequence, "_run_unit_major",
                        lambda self, *a: ran.append(a[0].shape[0]) or real(self, *a))
    r, x, layer, init = _layer(LAYERS[kind], 5 + t, b, t, f, m)
    before = [s.copy() for s in init]
    fast = layer.call(x, initial_state=init)
    assert ran and sum(ran) == t and (chunk_steps is None or len(ran) > 1)
    with kernels.unfused():
        ref = layer.call(x, initial_state=init)
    assert len(fast) == len(ref)
    for i, (a, c) in enumerate(zip(fast, ref)):
        assert a.flags.c_contiguous
        close(a, c, f"output {i}")
    for s, s0 in zip(init, before):
        np.testing.assert_array_equal(s, s0)           # the initial states are not touched


def test_unit_major_is_chosen_per_blas_kernel_family(monkeypatch):
    """Unit-major folded inference where it was measured faster: from 16 rows on OpenBLAS's
    AVX-512 kernels; from 8 rows up to 2^22 multiply-adds a step on the others (AVX2)."""
    from unrolled.fast import blas
    cell = LSTMCell(64)
    cell.build((None, 16))
    big = LSTMCell(256)
    big.build((None, 32))
    seq, big_seq = fast_cells.of_cell(cell), fast_cells.of_cell(big)
    monkeypatch.setattr(blas, "core", lambda: "skylakex")
    assert seq.unit_major(16, 16) and not seq.unit_major(15, 16)
    assert big_seq.unit_major(128, 32) and big_seq.unit_major(1024, 32)
    monkeypatch.setattr(blas, "core", lambda: "haswell")
    assert seq.unit_major(8, 16) and not seq.unit_major(7, 16)
    assert seq.unit_major(32, 16) and not big_seq.unit_major(64, 32)
    monkeypatch.setattr(blas, "core", lambda: "")
    assert not big_seq.unit_major(128, 32)


def test_blas_matmul_t_equals_a_float64_product():
    """``blas.matmul_t``: the transposed product, from the transposed left operand."""
    r = np.random.default_rng(8)
    matmul_t = kernels._load()["matmul_t"]
    for rows, k, n in [(1, 5, 20), (2, 3, 4), (17, 80, 256), (32, 64, 256)]:
        a = r.standard_normal((rows, k)).astype(np.float32)
        w = r.standard_normal((k, n)).astype(np.float32)
        out_t = np.full(n * rows, np.nan, np.float32)
        matmul_t(np.ascontiguousarray(a.T).reshape(-1), rows, w, out_t)
        exact = a.astype(np.float64) @ w.astype(np.float64)
        np.testing.assert_allclose(out_t.reshape(n, rows).T, exact, rtol=0,
                                   atol=4 * k * 6e-8 * np.abs(exact).max())


def _train(layer, x, init, mask, training, seed):
    utils.set_random_seed(3)                            # the same dropout masks in both paths
    out, cache = layer.forward(x, initial_state=init, mask=mask, training=training)
    r = np.random.default_rng(seed)
    douts = [r.standard_normal(o.shape).astype(np.float32) for o in out]
    douts[1] = None                                     # an unused final state
    (dx, *dinit), dweights = layer.backward(cache, douts)
    return cache, [*out, dx, *dinit, *dweights]


TRAINING_OPTIONS = {
    "plain": {},
    "recurrent-dropout": {"recurrent_dropout": 0.4},
    "both-dropouts": {"dropout": 0.3, "recurrent_dropout": 0.4},
    "input-dropout": {"dropout": 0.3},
}


@pytest.mark.sampled(0.4)
@pytest.mark.parametrize("rows", [2048, 3])           # one BPTT chunk; chunks of few steps
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("options", sorted(TRAINING_OPTIONS))
@pytest.mark.parametrize("b,t,f,m", SIZES[1:])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_training_equals_the_reference(kind, b, t, f, m, options, masked, rows, fold,
                                       monkeypatch):
    monkeypatch.setattr(bptt, "BACKWARD_CHUNK_ROWS", rows)
    monkeypatch.setattr(bptt, "SEPARATE_DXP_CHUNK_ROWS", rows)
    r, x, layer, init = _layer(lambda u: LAYERS[kind](u, **TRAINING_OPTIONS[options]),
                               11 + t, b, t, f, m)
    mask = _mask(r, b, t) if masked else None
    training = options != "plain"
    cache, fast = _train(layer, x, init, mask, training, 1)
    assert cache.sequence is not None                   # the compiled forward and BPTT ran
    with kernels.unfused():
        cache, ref = _train(layer, x, init, mask, training, 1)
    assert cache.sequence is None and len(cache[3]) == t   # one reference cache per step
    assert len(fast) == len(ref)
    for i, (a, c) in enumerate(zip(fast, ref)):
        close(a, c, f"result {i}")
    if masked:
        dx = fast[len(layer.cell.state_size) + 1]
        np.testing.assert_array_equal(dx[0], 0)        # row 0: every step masked


def test_what_the_fast_path_covers():
    """Each implementation declares its cases; the rest runs the reference loop."""
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)

    def plan(layer, dtype=f32, training=False, rec=None, dp=None, batch=4):
        layer.build((batch, 3, 2))
        return planning.plan(layer.cell, dtype, batch, training=training, rec_mask=rec,
                             dp_mask=dp)

    rec = np.ones((4, 4, 3), np.float32)
    assert plan(LSTM(3)) and plan(LSTM(3), training=True, rec=rec)
    assert plan(LSTM(3), f64) is None                        # float64: the gradient checks
    assert plan(LSTM(3, activation="relu")) is None           # not Keras's default gates
    assert plan(LSTM(1)) is None                              # one unit
    assert plan(GRU(3, reset_after=False)) is not None
    assert plan(GRU(3, reset_after=False), training=True) is None
    assert plan(SimpleRNN(3, activation="relu"), training=True) is not None
    assert plan(SimpleRNN(3, activation="softsign")) is None
    assert plan(LSTM(3), rec=rec) is None                     # inference has no dropout
    assert plan(RNN(LSTMCell(3))) is not None                 # the cell decides, not the layer

    class MyCell(LSTMCell):                                   # a subclass runs the reference
        pass

    assert plan(RNN(MyCell(3))) is None
    with kernels.unfused():
        assert plan(LSTM(3)) is None
    kernels.set_enabled(False)
    assert plan(LSTM(3)) is None


def test_the_fold_starts_at_the_measured_sizes():
    """SimpleRNN folds from B * M * M = 2^24 multiply-adds per step (256 x 256 x 256), LSTM
    from B * M * 4M = 2^19 (32 x 64 x 256); never a GRU, float64, or without the kernels."""
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)

    def folds(cell, dtype, batch):
        return fast_cells.of_cell(cell).folds(dtype, batch)

    from unrolled.layers import SimpleRNNCell
    assert folds(SimpleRNNCell(256), f32, 256) and not folds(SimpleRNNCell(256), f32, 255)
    assert folds(LSTMCell(64), f32, 32) and not folds(LSTMCell(64), f32, 31)
    assert not folds(LSTMCell(64), f64, 1024) and not folds(GRUCell(512), f32, 1024)
    kernels.set_enabled(False)
    assert not folds(SimpleRNNCell(512), f32, 1024)


@pytest.mark.parametrize("make", [LSTM, GRU, SimpleRNN])
@pytest.mark.parametrize("compiled", [True, False])
def test_a_forward_cache_serves_one_backward_in_both_paths(make, compiled):
    _, x, layer, _ = _layer(lambda m: make(m), 5, 4, 6, 3, 5)
    kernels.set_enabled(compiled)
    out, cache = layer.forward(x)
    assert (cache.sequence is not None) == compiled
    layer.backward(cache, np.ones_like(out))
    with pytest.raises(RuntimeError, match="already used by a backward pass"):
        layer.backward(cache, np.ones_like(out))


def test_kernels_are_active_for_float32_only():
    assert kernels.enabled()
    assert kernels.active(np.dtype(np.float32))
    assert not kernels.active(np.dtype(np.float64))
    kernels.set_enabled(False)
    assert not kernels.active(np.dtype(np.float32))


def test_tanh_error_bound_and_special_values():
    x = np.concatenate([np.linspace(-12, 12, 400_001), np.geomspace(1e-30, 20, 10_000),
                        -np.geomspace(1e-30, 20, 10_000)]).astype(np.float32)
    got = kernels.tanh(x)
    assert got.dtype == np.float32
    err = np.abs(got.astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err.max() < 4e-7, err.max()
    rel = err / np.maximum(np.abs(np.tanh(x.astype(np.float64))), 1e-38)
    assert rel[np.abs(x) < 1e-3].max() < 2.5e-7               # tiny inputs stay relative
    special = kernels.tanh(np.array([np.nan, np.inf, -np.inf, 0.0, 1e30, -1e30], np.float32))
    assert np.isnan(special[0])
    np.testing.assert_array_equal(special[1:], [1, -1, 0, 1, -1])
    assert (np.abs(got) <= 1).all()


def test_tanh_keeps_layout_and_out_argument():
    x = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    expect = kernels.tanh(np.ascontiguousarray(x.T))
    np.testing.assert_array_equal(kernels.tanh(x.T), expect)          # non-contiguous input
    out = np.empty((8, 6), np.float32)
    assert kernels.tanh(x.T, out=out) is out
    np.testing.assert_array_equal(out, expect)
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(kernels.tanh(x64), np.tanh(x64))  # float64: NumPy's


@pytest.mark.parametrize("make", [LSTM, GRU, SimpleRNN])
def test_compiled_and_numpy_tanh_agree_to_float32_rounding(make):
    """The whole layer, kernels on vs off (np.tanh): the approximation's error stays small."""
    _, x, layer, _ = _layer(lambda m: make(m, return_sequences=True), 3, 5, 7, 4, 6)
    on = layer.call(x)
    kernels.set_enabled(False)
    off = layer.call(x)
    np.testing.assert_allclose(on, off, atol=2e-6)
    assert not np.array_equal(on, off)           # the two paths really differ


def test_blas_matmul_equals_a_float64_product():
    """The sequence loops' product calls NumPy's own BLAS (``fast.blas``)."""
    r = np.random.default_rng(7)
    matmul = kernels._load()["matmul"]
    for rows, k, n in [(1, 5, 20), (1, 64, 256), (2, 3, 4), (32, 64, 256), (300, 17, 9)]:
        a = r.standard_normal((rows, k)).astype(np.float32)
        w = r.standard_normal((k, n)).astype(np.float32)
        out = np.empty((rows, n), np.float32)
        matmul(a, w, False, out)
        exact = a.astype(np.float64) @ w.astype(np.float64)
        np.testing.assert_allclose(out, exact, rtol=0, atol=4 * k * 6e-8 * np.abs(exact).max())


def test_training_keeps_freed_memory_once_and_can_be_turned_off():
    """unrolled.memory raises glibc's thresholds at the first training step (Linux)."""
    import os
    import subprocess
    import sys
    code = ("import numpy as np, unrolled.memory as mem\n"
            "from unrolled.layers import Input, LSTM, Dense\n"
            "from unrolled.models import Sequential\n"
            "m = Sequential([Input((3, 2)), LSTM(4), Dense(1)]); m.compile('adam', 'mse')\n"
            "m.predict(np.ones((2, 3, 2), 'float32'), verbose=0)\n"
            "before = mem.applied\n"
            "m.train_on_batch(np.ones((2, 3, 2), 'float32'), np.ones((2, 1), 'float32'))\n"
            "print(before, mem.applied)\n")
    for env, expected in (("1", "True"), ("0", "False")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "UNROLLED_KEEP_MEMORY": env})
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["None", expected]     # untouched until training


def test_weights_are_kept_in_c_order_whatever_layout_they_come_in():
    """OpenBLAS multiplies by a Fortran-ordered matrix up to twice as slowly at a step's
    sizes: the orthogonal initializer's Q and a transposed PyTorch matrix are stored in C
    order (same values), and BPTT's transposed operands are C-ordered copies."""
    from unrolled.variables import Variable
    layer = LSTM(8)
    layer(np.zeros((2, 3, 4), np.float32))
    for w in layer.weights:
        assert w.value.flags.c_contiguous, w.path
    q = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    v = Variable(q, "k")
    assert v.value.flags.c_contiguous
    np.testing.assert_array_equal(v.value, q)
    t = gates.transposed(v.value)
    assert t.flags.c_contiguous
    np.testing.assert_array_equal(t, q.T)
    w, fortran = kernels.blas_operand(v.value.T)
    assert w.flags.c_contiguous and not fortran
    np.testing.assert_array_equal(w, q.T)
