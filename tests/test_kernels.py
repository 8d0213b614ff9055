"""The optional compiled kernels (``unrolled.kernels``, numba): accuracy and identity.

The fused LSTM/GRU loops must perform exactly the float operations of the NumPy step
math, so with the kernels on, a fused step and the unfused NumPy lines (which call the
same compiled ``tanh``) agree bit for bit. The compiled ``tanh`` itself is an
approximation; its error is bounded here against float64. numba is a test dependency,
so none of this skips in CI.
"""
import numba  # noqa: F401  (a test dependency, pyproject [test]: these tests never skip)
import numpy as np
import pytest

from unrolled import kernels
from unrolled.layers import GRU, LSTM, LSTMCell, SimpleRNN, SimpleRNNCell


@pytest.fixture(autouse=True)
def compiled_on():
    before = kernels._enabled
    kernels.set_enabled(True)
    yield
    kernels.set_enabled(before)


def _fold_at_any_size(monkeypatch):
    monkeypatch.setattr(SimpleRNNCell, "fold_min_macs", 0)
    monkeypatch.setattr(LSTMCell, "fold_min_macs", 0)


@pytest.fixture(autouse=True, params=["fold by size", "fold at any size"])
def fold_sizes(request, monkeypatch):
    """Every test runs twice: with the fold at its measured sizes (these small layers then
    project x W apart) and with the fold at any size, so both routes are checked."""
    if request.param == "fold at any size":
        _fold_at_any_size(monkeypatch)
    return request.param


def test_the_fold_starts_at_the_measured_sizes(monkeypatch):
    """SimpleRNN folds from B * M * M = 2^24 multiply-adds per step (256 x 256 x 256), LSTM
    from B * M * 4M = 2^20; never for a GRU, in float64 or without the kernels."""
    monkeypatch.undo()                                         # the classes' own thresholds
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    assert SimpleRNNCell(256).folds(f32, 256) and not SimpleRNNCell(256).folds(f32, 255)
    assert SimpleRNNCell(512).folds(f32, 1024) and not SimpleRNNCell(64).folds(f32, 32)
    assert LSTMCell(64).folds(f32, 64) and not LSTMCell(64).folds(f32, 63)
    assert not LSTMCell(5).folds(f32, 1) and not LSTMCell(64).folds(f64, 1024)
    assert not LSTMCell(64, activation="relu").folds(f32, 1024)
    assert SimpleRNNCell(256, activation="relu").folds(f32, 256)
    assert not SimpleRNNCell(256, activation="softsign").folds(f32, 1024)
    kernels.set_enabled(False)
    assert not SimpleRNNCell(512).folds(f32, 1024)


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


def _case(make, seed, b=5, t=7, f=4, m=6):
    r = np.random.default_rng(seed)
    fused, plain = make(m), make(m)
    x = r.standard_normal((b, t, f)).astype(np.float32)
    fused.build(x.shape)
    plain.build(x.shape)
    weights = [r.standard_normal(w.shape).astype(np.float32) * 0.5 for w in fused.weights]
    fused.set_weights(weights)
    plain.set_weights(weights)
    return r, x, fused, plain


@pytest.mark.parametrize("make", [
    lambda m: LSTM(m, return_sequences=True, return_state=True),
    lambda m: GRU(m, return_sequences=True, return_state=True),
    lambda m: LSTM(m, return_sequences=True, go_backwards=True, unit_forget_bias=False),
    lambda m: GRU(m, return_sequences=True, use_bias=False),
    lambda m: SimpleRNN(m, return_sequences=True, return_state=True),
    lambda m: SimpleRNN(m, activation="relu", return_sequences=True),
], ids=["lstm", "gru", "lstm-backwards", "gru-nobias", "simple", "simple-relu"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_steps_equal_numpy_steps_bit_for_bit(make, seed):
    r, x, fused, plain = _case(make, seed)
    mask = r.random(x.shape[:2]) > 0.2
    out_f, cache_f = fused.forward(x, mask=mask)
    with kernels.unfused():
        out_p, cache_p = plain.forward(x, mask=mask)
    listed = isinstance(out_f, list)
    out_f, out_p = (out_f, out_p) if listed else ([out_f], [out_p])
    for a, b in zip(out_f, out_p):
        np.testing.assert_array_equal(a, b)
    douts = [r.standard_normal(o.shape).astype(np.float32) for o in out_f]
    douts = douts if listed else douts[0]
    (dx_f, *_), dw_f = fused.backward(cache_f, douts)
    with kernels.unfused():
        (dx_p, *_), dw_p = plain.backward(cache_p, douts)
    np.testing.assert_array_equal(dx_f, dx_p)
    for a, b in zip(dw_f, dw_p):
        np.testing.assert_array_equal(a, b)
    assert len(cache_f[3]) == x.shape[1]                     # one step cache per time step


def test_the_fused_path_really_runs(monkeypatch):
    calls = []
    real = kernels.call
    monkeypatch.setattr(kernels, "sequence", lambda dtype, units: False)   # step by step
    monkeypatch.setattr(kernels, "call", lambda name, *a: calls.append(name) or real(name, *a))
    for make in (LSTM, GRU, SimpleRNN):
        _, x, fused, _ = _case(lambda m: make(m), 0)
        out, cache = fused.forward(x)
        fused.backward(cache, np.ones_like(out))
    assert calls.count("lstm_forward") == 7 and calls.count("lstm_backward") == 7
    assert calls.count("gru_forward") == 7 and calls.count("gru_backward") == 7
    assert calls.count("simple_forward") == 7


def test_the_steps_fold_the_input_product_in_every_path(monkeypatch):
    """SimpleRNN and LSTM fold x_t W_x into the recurrent product, ``z = [x_t | h] @ [W_x;
    W_h]``, one gemm (``fold_product``), fused or not, so the unfused lines (explain's) see
    the sums the compiled loops see. With recurrent dropout (h masked; per gate for an LSTM)
    they do not fold: a SimpleRNN then lets BLAS add h U into the projected inputs
    (``matmul_add``, gemm with beta = 1). A GRU never folds: its candidate keeps h U_h apart."""
    calls = []
    real = kernels.call
    _fold_at_any_size(monkeypatch)                            # (these layers are small)
    monkeypatch.setattr(kernels, "sequence", lambda dtype, units: False)   # step by step
    monkeypatch.setattr(kernels, "call", lambda name, *a: calls.append(name) or real(name, *a))
    for make, folds, adds in ((LSTM, 7, 0), (SimpleRNN, 7, 0), (GRU, 0, 0),
                              (lambda m: LSTM(m, dropout=0.5), 7, 0),
                              (lambda m: LSTM(m, recurrent_dropout=0.5), 0, 0),
                              (lambda m: SimpleRNN(m, recurrent_dropout=0.5), 0, 7)):
        calls.clear()
        _, x, layer, _ = _case(lambda m: make(m), 1)
        layer.forward(x, training=True)
        with kernels.unfused():
            layer.forward(x, training=True)
        assert calls.count("fold_product") == 2 * folds
        assert calls.count("matmul_add") == 2 * adds
    r = np.random.default_rng(2)
    x, h, w, u = (r.standard_normal(s).astype(np.float32)
                  for s in ((64, 20), (64, 300), (20, 96), (300, 96)))
    xp = r.standard_normal((64, 96)).astype(np.float32)
    z = xp.copy()
    real("matmul_add", h, u, False, z)                              # z += h @ u, in place
    np.testing.assert_allclose(z, xp + np.dot(h, u), rtol=1e-5, atol=1e-5)
    o, fk = np.empty((64, 320), np.float32), np.concatenate([w, u])
    real("fold_product", x, h, o, fk, z)                            # z = [x | h] @ [w; u]
    np.testing.assert_array_equal(z, np.dot(np.hstack([x, h]), fk))
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    np.testing.assert_allclose(z, f64(x) @ f64(w) + f64(h) @ f64(u), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("make", [LSTM, GRU, SimpleRNN])
def test_compiled_and_numpy_tanh_agree_to_float32_rounding(make):
    """The whole layer, kernels on vs off (np.tanh): the approximation's error stays small."""
    r, x, fused, _ = _case(lambda m: make(m, return_sequences=True), 3)
    on = fused.call(x)
    kernels.set_enabled(False)
    off = fused.call(x)
    np.testing.assert_allclose(on, off, atol=2e-6)
    assert not np.array_equal(on, off)           # the two paths really differ


@pytest.mark.parametrize("make", [LSTM, GRU, SimpleRNN])
@pytest.mark.parametrize("compiled", [True, False])
def test_inference_and_training_project_in_the_same_chunks(make, compiled, monkeypatch):
    """Inference projects the inputs a chunk of steps at a time, and training's forward
    (which ``explain`` traces) projects in the same chunks. A BLAS library may sum a
    2-step and a 9-step product differently in the last bits (some OpenBLAS kernels do,
    others do not: that is the library's business, not asserted here), so the project
    promises only this: the same chunks in both paths, hence the same numbers bit for bit
    in one process, also across a masked and a reversed sequence; and chunked projection
    equal to one product within float32 rounding."""
    from unrolled.layers import gates
    kernels.set_enabled(compiled)
    r, x, layer, _ = _case(lambda m: make(m, return_sequences=True, go_backwards=True), 4,
                           b=16, t=9, f=16, m=16)
    mask = r.random(x.shape[:2]) > 0.3
    width = layer.cell.kernel.shape[-1]                    # G * units
    xs = np.ascontiguousarray(x.transpose(1, 0, 2)[::-1])
    one_product = layer.cell.project_inputs(xs)
    monkeypatch.setattr(gates, "PROJECTION_CHUNK_BYTES", 2 * x.shape[0] * width * 4)
    assert gates.projection_chunk(layer.cell, xs) == 2
    chunked = gates.project_in_chunks(layer.cell, xs, 2)
    np.testing.assert_allclose(chunked, one_product, rtol=1e-6, atol=1e-6)
    for kw in ({}, {"mask": mask}):
        kept, _ = layer.forward(x, **kw)                   # keeps caches (training's path)
        np.testing.assert_array_equal(layer.call(x, **kw), kept)


SEQUENCE_LAYERS = {
    "lstm": lambda m: LSTM(m, return_sequences=True, return_state=True),
    "lstm-last-backwards": lambda m: LSTM(m, go_backwards=True, return_state=True),
    "gru": lambda m: GRU(m, return_sequences=True, return_state=True),
    "gru-nobias-last": lambda m: GRU(m, use_bias=False, return_state=True),
    "gru-before": lambda m: GRU(m, reset_after=False, return_sequences=True, return_state=True),
    "gru-before-nobias-last-backwards": lambda m: GRU(m, reset_after=False, use_bias=False,
                                                      go_backwards=True),
    "simple": lambda m: SimpleRNN(m, return_sequences=True, return_state=True),
    "simple-nobias-backwards": lambda m: SimpleRNN(m, use_bias=False, go_backwards=True),
    "simple-relu": lambda m: SimpleRNN(m, activation="relu", return_sequences=True,
                                       return_state=True),
}


def _step_by_step(layer, x, **kw):
    """The layer's inference with the whole-sequence kernels turned off."""
    real = kernels.sequence
    kernels.sequence = lambda dtype, units: False
    try:
        return layer.call(x, **kw)
    finally:
        kernels.sequence = real


@pytest.mark.parametrize("order", ["C", "F", "strided"])
@pytest.mark.parametrize("b,t,m", [(1, 10, 5), (4, 7, 2), (32, 12, 64), (3, 5, 1)])
@pytest.mark.parametrize("kind", sorted(SEQUENCE_LAYERS))
def test_compiled_sequence_inference_equals_the_step_path_bit_for_bit(kind, b, t, m, order):
    """Inference runs a chunk of steps per compiled call, calling NumPy's own BLAS with
    np.dot's arguments: the numbers of the step path, bit for bit, for one row (gemv),
    many rows (gemm), and recurrent kernels in C order or strided (copied to C order by
    both). A Fortran-ordered kernel (weights are kept in C order, but a value can be set
    directly) is copied to C order by the compiled loops, which np.dot does not do: equal
    within float32 rounding then. One unit falls back to the step path."""
    r, x, layer, _ = _case(SEQUENCE_LAYERS[kind], t + m, b=b, t=t, f=3, m=m)
    rk = layer.cell.recurrent_kernel
    value = rk.value
    rk.value = {"C": np.ascontiguousarray(value), "F": np.asfortranarray(value),
                "strided": np.repeat(value, 2, axis=1)[:, ::2]}[order]
    np.testing.assert_array_equal(rk.value, value)
    init = [r.standard_normal((b, m)).astype(np.float32) for _ in layer.cell.state_size]
    before = [s.copy() for s in init]
    seq = layer.call(x, initial_state=init)
    step = _step_by_step(layer, x, initial_state=init)
    for a, c in zip(seq if isinstance(seq, list) else [seq], step if isinstance(step, list) else [step]):
        if order == "F":
            np.testing.assert_allclose(a, c, rtol=2e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, c)
    for s, s0 in zip(init, before):
        np.testing.assert_array_equal(s, s0)                   # the initial states are not touched
    assert kernels.sequence(np.dtype(np.float32), m) == (m > 1)


def _chunk_width(layer, x):
    """What a chunk of steps is sized by, per row: the inputs for a cell that folds x W into
    the recurrent product (SimpleRNN, LSTM), else the projection, G * units wide."""
    folds = getattr(layer.cell, "folds", None)
    return (x.shape[-1] if folds is not None and folds(x.dtype, x.shape[0])
            else layer.cell.kernel.shape[-1])


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple"])
def test_compiled_sequence_inference_runs_and_chunks(kind, monkeypatch, fold_sizes):
    """The sequence kernels really run (NumPy's BLAS is found here: a NumPy wheel), one call
    per chunk of steps (of the projection; of the inputs themselves for the cells that fold
    x W into the recurrent product), and stateful layers carry their states across calls."""
    from unrolled.layers import gates
    make = {"lstm": LSTM, "gru": GRU, "simple": SimpleRNN}[kind]
    r, x, layer, _ = _case(lambda m: make(m, return_sequences=True), 6, t=9)
    assert "matmul" in kernels._load(), "NumPy's own OpenBLAS was not found"
    calls = []
    real = kernels.run_sequence
    monkeypatch.setattr(kernels, "run_sequence",
                        lambda name, *a, **kw: calls.append(name) or real(name, *a, **kw))
    folded = fold_sizes != "fold by size" and kind != "gru"
    assert (_chunk_width(layer, x) == x.shape[-1]) == folded
    monkeypatch.setattr(gates, "PROJECTION_CHUNK_BYTES", 2 * x.shape[0] * _chunk_width(layer, x) * 4)
    chunked = layer.call(x)
    assert calls == [f"{kind}_folded" if folded else f"{kind}_sequence"] * 5   # steps 0-1, 2-3, ...
    np.testing.assert_array_equal(chunked, _step_by_step(layer, x))

    stateful = make(6, stateful=True, return_sequences=True)
    stateful.build(x.shape)
    stateful.set_weights(layer.get_weights())
    first, second = stateful.call(x[:, :4]), stateful.call(x[:, 4:])
    stateful.reset_state()
    np.testing.assert_array_equal(np.concatenate([first, second], axis=1), chunked)


MASKED_LAYERS = {
    "lstm": lambda m: LSTM(m, return_sequences=True, return_state=True),
    "lstm-zero-last-backwards": lambda m: LSTM(m, go_backwards=True, return_state=True,
                                               zero_output_for_mask=True),
    "gru": lambda m: GRU(m, return_sequences=True, return_state=True),
    "gru-last": lambda m: GRU(m, return_state=True),
    "simple": lambda m: SimpleRNN(m, return_sequences=True, return_state=True),
    "simple-zero-backwards": lambda m: SimpleRNN(m, return_sequences=True, go_backwards=True,
                                                 return_state=True, zero_output_for_mask=True),
    "simple-relu": lambda m: SimpleRNN(m, activation="relu", return_sequences=True,
                                       return_state=True),
}


MASKED_INFERENCE_LAYERS = {   # (GRU reset_after=False: compiled for inference, not training)
    **MASKED_LAYERS,
    "gru-before": lambda m: GRU(m, reset_after=False, return_sequences=True, return_state=True),
    "gru-before-zero-last": lambda m: GRU(m, reset_after=False, return_state=True,
                                          zero_output_for_mask=True),
}


@pytest.mark.parametrize("steps_per_chunk", [2, 100])
@pytest.mark.parametrize("kind", sorted(MASKED_INFERENCE_LAYERS))
def test_compiled_masked_inference_equals_the_step_path_bit_for_bit(kind, steps_per_chunk,
                                                                      monkeypatch):
    """A mask runs the masked sequence loops: each step's output is h where the mask keeps
    the step, else 0 (zero_output_for_mask) or the last output; masked rows keep their
    states. The step path's numbers bit for bit, across projection chunks, from non-zero
    initial states, with rows masked at the start, in the middle, and throughout."""
    from unrolled.layers import gates
    b, t, m = 6, 9, 5
    r, x, layer, _ = _case(MASKED_INFERENCE_LAYERS[kind], 31, b=b, t=t, f=3, m=m)
    mask = r.random((b, t)) > 0.4
    mask[0], mask[1, :3], mask[2] = False, False, True           # none, late start, all kept
    init = [r.standard_normal((b, m)).astype(np.float32) for _ in layer.cell.state_size]
    width = _chunk_width(layer, x)
    monkeypatch.setattr(gates, "PROJECTION_CHUNK_BYTES", steps_per_chunk * b * width * 4)
    calls = []
    real = kernels.run_sequence
    monkeypatch.setattr(kernels, "run_sequence",
                        lambda name, *a, **kw: calls.append(kw.get("mask") is not None)
                        or real(name, *a, **kw))
    seq = layer.call(x, mask=mask, initial_state=init)
    assert calls == [True] * -(-t // min(steps_per_chunk, t))  # the masked loop, per chunk
    step = _step_by_step(layer, x, mask=mask, initial_state=init)
    for a, c in zip(seq, step):
        np.testing.assert_array_equal(a, c)
    out, *states = seq
    np.testing.assert_array_equal(states[0][0], init[0][0])      # row 0: every step masked
    assert np.any(states[0][1] != init[0][1])
    if out.ndim == 3:                                            # per-step outputs
        first = out[1, -1] if layer.go_backwards else out[1, 0]  # row 1, first real step
        np.testing.assert_array_equal(first, 0)                  # masked before any output
    kept, _ = layer.forward(x, mask=mask, initial_state=init)    # training's step path
    for a, c in zip(seq, kept):
        np.testing.assert_array_equal(a, c)


TRAIN_LAYERS = {
    "lstm": lambda m: LSTM(m, return_sequences=True, return_state=True),
    "lstm-last-backwards": lambda m: LSTM(m, go_backwards=True, unit_forget_bias=False),
    "gru": lambda m: GRU(m, return_sequences=True, return_state=True),
    "gru-nobias-last-backwards": lambda m: GRU(m, use_bias=False, go_backwards=True,
                                               return_state=True),
    "simple": lambda m: SimpleRNN(m, return_sequences=True, return_state=True),
    "simple-nobias-last-backwards": lambda m: SimpleRNN(m, use_bias=False, go_backwards=True),
    "simple-relu-backwards": lambda m: SimpleRNN(m, activation="relu", go_backwards=True,
                                                 return_sequences=True),
}


def _train_pass(layer, x, init, seed, mask=None, training=False):
    out, cache = layer.forward(x, initial_state=init, mask=mask, training=training)
    outs = out if isinstance(out, list) else [out]
    r = np.random.default_rng(seed)
    douts = [r.standard_normal(o.shape).astype(np.float32) for o in outs]
    if layer.return_state:
        douts[1] = None                                      # an unused final state
    (dx, *dinit), dweights = layer.backward(cache, douts if isinstance(out, list) else douts[0])
    return cache, [*outs, dx, *dinit, *dweights]


@pytest.mark.parametrize("rows", [2048, 3])                  # one chunk; chunks of 1 step
@pytest.mark.parametrize("b,t,m", [(1, 10, 5), (4, 9, 2), (32, 12, 64)])
@pytest.mark.parametrize("kind", sorted(TRAIN_LAYERS))
def test_compiled_training_equals_the_step_path_bit_for_bit(kind, b, t, m, rows, monkeypatch):
    """Training without masks runs the forward and BPTT a chunk of steps per compiled call,
    keeping states in (T+1, B, M) buffers: the step path's outputs and gradients, bit for bit."""
    from unrolled.layers import recurrent
    monkeypatch.setattr(recurrent, "BACKWARD_CHUNK_ROWS", rows)
    monkeypatch.setattr(recurrent, "SEPARATE_DXP_CHUNK_ROWS", rows)
    r, x, layer, _ = _case(TRAIN_LAYERS[kind], 11 + t, b=b, t=t, f=3, m=m)
    init = [r.standard_normal((b, m)).astype(np.float32) for _ in layer.cell.state_size]
    before = [s.copy() for s in init]
    cache, compiled = _train_pass(layer, x, init, 1)
    assert cache.sequence is not None
    assert cache.consumed == (not kind.startswith("simple"))    # SimpleRNN's dxp is apart
    monkeypatch.setattr(kernels, "sequence", lambda dtype, units: False)
    cache, steps = _train_pass(layer, x, init, 1)
    assert cache.sequence is None
    assert len(compiled) == len(steps)
    for a, c in zip(compiled, steps):
        np.testing.assert_array_equal(a, c)
    for s, s0 in zip(init, before):
        np.testing.assert_array_equal(s, s0)


@pytest.mark.parametrize("rows", [2048, 3])                  # one chunk; chunks of 2 steps
@pytest.mark.parametrize("kind", sorted(MASKED_LAYERS))
def test_compiled_masked_training_equals_the_step_path_bit_for_bit(kind, rows, monkeypatch):
    """Masked training runs compiled too: masked rows carry their states forward, and in
    BPTT a masked step's output gradient goes on to the step before (unless
    zero_output_for_mask) while its state gradients skip it, across BPTT chunks. Outputs,
    input, initial-state and weight gradients: the step path's, bit for bit."""
    from unrolled.layers import recurrent
    monkeypatch.setattr(recurrent, "BACKWARD_CHUNK_ROWS", rows)
    monkeypatch.setattr(recurrent, "SEPARATE_DXP_CHUNK_ROWS", rows)
    b, t, m = 6, 9, 5
    r, x, layer, _ = _case(MASKED_LAYERS[kind], 17, b=b, t=t, f=3, m=m)
    mask = r.random((b, t)) > 0.4
    mask[0], mask[1, :3], mask[2], mask[3, -3:] = False, False, True, False
    init = [r.standard_normal((b, m)).astype(np.float32) for _ in layer.cell.state_size]
    cache, compiled = _train_pass(layer, x, init, 2, mask)
    assert cache.sequence is not None
    monkeypatch.setattr(kernels, "sequence", lambda dtype, units: False)
    cache, steps = _train_pass(layer, x, init, 2, mask)
    assert cache.sequence is None
    assert len(compiled) == len(steps)
    for a, c in zip(compiled, steps):
        np.testing.assert_array_equal(a, c)
    dx = compiled[1 + len(init) if layer.return_state else 1]   # after the outputs
    assert np.any(dx[3] != 0)                                    # gradients reached row 3
    np.testing.assert_array_equal(dx[0], 0)                      # row 0: every step masked


DROPOUT_LAYERS = {
    "lstm": lambda m: LSTM(m, recurrent_dropout=0.4, return_sequences=True, return_state=True),
    "lstm-both-last-backwards": lambda m: LSTM(m, dropout=0.3, recurrent_dropout=0.4,
                                               go_backwards=True),
    "gru": lambda m: GRU(m, recurrent_dropout=0.4, return_sequences=True, return_state=True),
    "gru-both-nobias-last": lambda m: GRU(m, dropout=0.3, recurrent_dropout=0.4,
                                          use_bias=False),
    "simple": lambda m: SimpleRNN(m, recurrent_dropout=0.4, return_sequences=True,
                                  return_state=True),
    "simple-both-last-backwards": lambda m: SimpleRNN(m, dropout=0.3, recurrent_dropout=0.4,
                                                      go_backwards=True),
    "simple-relu": lambda m: SimpleRNN(m, activation="relu", recurrent_dropout=0.4,
                                       return_sequences=True),
}


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("b,t,m,rows", [(1, 6, 5, 2048), (4, 9, 3, 2048), (6, 9, 5, 3),
                                        (32, 12, 64, 2048)])
@pytest.mark.parametrize("kind", sorted(DROPOUT_LAYERS))
def test_compiled_recurrent_dropout_training_equals_the_step_path_bit_for_bit(
        kind, b, t, m, rows, order, monkeypatch):
    """Training with recurrent dropout runs compiled too: for LSTM and GRU each gate's block
    of the recurrent product is its own product on h * mask[gate] (Keras's per-gate masks),
    and BPTT sums the gates' dLoss/dh in order; SimpleRNN's one mask scales h and dh. The same dropout masks give the step path's numbers, bit
    for bit: one row (gemv) and many, C- and Fortran-ordered recurrent kernels, one BPTT
    chunk or many, with a sequence mask too (rows = 3)."""
    from unrolled import utils
    from unrolled.layers import recurrent
    monkeypatch.setattr(recurrent, "BACKWARD_CHUNK_ROWS", rows)
    monkeypatch.setattr(recurrent, "SEPARATE_DXP_CHUNK_ROWS", rows)
    r, x, layer, _ = _case(DROPOUT_LAYERS[kind], 5 + t + m, b=b, t=t, f=3, m=m)
    rk = layer.cell.recurrent_kernel
    rk.value = (np.ascontiguousarray if order == "C" else np.asfortranarray)(rk.value)
    init = [r.standard_normal((b, m)).astype(np.float32) for _ in layer.cell.state_size]
    mask = None
    if rows == 3:
        mask = r.random((b, t)) > 0.3
        mask[0] = False
    results = []
    for compiled in (True, False):
        if not compiled:
            monkeypatch.setattr(kernels, "sequence", lambda dtype, units: False)
        utils.set_random_seed(3)                                 # the same dropout masks
        cache, got = _train_pass(layer, x, init, 4, mask, training=True)
        assert (cache.sequence is not None) == compiled
        results.append(got)
    for a, c in zip(*results):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("make", [LSTM, GRU, SimpleRNN])
def test_masks_and_recurrent_dropout_train_compiled(make):
    _, x, layer, _ = _case(lambda m: make(m, recurrent_dropout=0.3), 12)
    assert layer.forward(x)[1].sequence is not None
    assert layer.forward(x, mask=np.ones(x.shape[:2], bool))[1].sequence is not None
    assert layer.forward(x, training=True)[1].sequence is not None
    _, x, layer, _ = _case(lambda m: make(m, recurrent_dropout=0.3, activation="softsign"), 12)
    assert layer.forward(x, training=True)[1].sequence is None   # not a compiled cell
    _, x, layer, _ = _case(lambda m: make(m, recurrent_dropout=0.3, activation="relu"), 12)
    compiled = layer.forward(x, training=True)[1].sequence is not None
    assert compiled == (make is SimpleRNN)                       # a relu SimpleRNN is one


def test_gru_reset_before_infers_compiled_and_trains_step_by_step(monkeypatch):
    _, x, layer, _ = _case(lambda m: GRU(m, reset_after=False), 12)
    calls = []
    real = kernels.run_sequence
    monkeypatch.setattr(kernels, "run_sequence",
                        lambda name, *a, **kw: calls.append(name) or real(name, *a, **kw))
    layer.call(x)
    assert calls == ["gru_before_sequence"]
    assert layer.forward(x)[1].sequence is None


def test_blas_matmul_equals_np_dot_bit_for_bit():
    r = np.random.default_rng(7)
    matmul = kernels._load()["matmul"]
    for rows, k, n in [(1, 5, 20), (1, 64, 256), (2, 3, 4), (32, 64, 256), (300, 17, 9)]:
        a = r.standard_normal((rows, k)).astype(np.float32)
        w = r.standard_normal((k, n)).astype(np.float32)
        for b, fortran in ((w, False), (np.asfortranarray(w), True)):
            out = np.empty((rows, n), np.float32)
            matmul(a, b, fortran, out)
            np.testing.assert_array_equal(out, np.dot(a, b))
            assert kernels.blas_operand(b)[0].flags.c_contiguous


@pytest.mark.parametrize("make", [LSTM, GRU])
def test_a_cache_that_took_gradients_in_place_refuses_a_second_backward(make):
    """The compiled backward writes dxp over the activations kept in the forward cache."""
    _, x, layer, _ = _case(lambda m: make(m), 5)
    out, cache = layer.forward(x)
    layer.backward(cache, np.ones_like(out))
    with pytest.raises(RuntimeError, match="already used by a backward pass"):
        layer.backward(cache, np.ones_like(out))
    with kernels.unfused():                        # the NumPy lines keep their caches intact
        out, cache = layer.forward(x)
        first = layer.backward(cache, np.ones_like(out))
        again = layer.backward(cache, np.ones_like(out))
    np.testing.assert_array_equal(first[0][0], again[0][0])


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
    from unrolled.layers import gates
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
