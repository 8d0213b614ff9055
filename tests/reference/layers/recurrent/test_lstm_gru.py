"""LSTM and GRU against real Keras and PyTorch: outputs, states, gradients, finite differences.

Every weight is drawn at random (normal * 0.5), so a wrong gate order or a transposed
block cannot hide behind constant weights.
"""
import numpy as np
import pytest
import tensorflow as tf
import torch
from keras_ref import keras

from unrolled import initializers as ui
from unrolled import utils
from unrolled.layers import GRU, LSTM, GRUCell, LSTMCell
from unrolled.layers.recurrent import dropout as dropout_mod
from unrolled.utils import to_list

OURS = {"lstm": LSTM, "gru": GRU}
THEIRS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
N_STATES = {"lstm": 2, "gru": 1}
ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear", "hard_sigmoid"]
RECURRENT_ACTIVATIONS = ["sigmoid", "hard_sigmoid", "tanh", "linear"]

MAX_DIFF = {}  # the largest |ours - reference| seen per comparison kind, printed at the end


@pytest.fixture(scope="module", autouse=True)
def _report_max_diffs():
    yield
    print("\nmax abs diff: " + ", ".join(f"{k} {v:.2e}" for k, v in sorted(MAX_DIFF.items())))


def _close(kind, got, want, atol=1e-5, rtol=1e-5):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    MAX_DIFF[kind] = max(MAX_DIFF.get(kind, 0.0), float(np.abs(got - want).max(initial=0)))
    np.testing.assert_allclose(got, want, atol=atol, rtol=rtol)


def _varied(rng, shape, dtype="float32"):
    return (rng.standard_normal(shape) * 0.5).astype(dtype)


def _mask(rng, b, t):
    m = rng.random((b, t)) > 0.3
    m[0, :3] = False          # a row whose first steps are masked
    m[-1, :] = False          # a row masked from start to end
    if b > 2:
        m[1, -1] = False      # a row whose last step is masked
    return m


def _pair(kind, rng, units, features, batch=None, dtype="float32", **cfg):
    """Our layer with random weights, and the same layer in Keras with a copy of them."""
    ours = OURS[kind](units, dtype=dtype, **cfg)
    ours.build((batch, None, features))
    ours.set_weights([_varied(rng, w.shape, dtype) for w in ours.weights])
    theirs = THEIRS[kind](units, dtype=dtype, **cfg)
    theirs.build((batch, None, features))
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def _random_case(kind, seed):
    """A random configuration of every option, with shapes and call arguments."""
    r = np.random.default_rng(seed)
    activation = str(r.choice(ACTIVATIONS))
    # Unbounded activations get gates in [0, 1], so that no state grows without bound.
    bounded = activation not in ("relu", "linear")
    gate_choices = RECURRENT_ACTIVATIONS if bounded else RECURRENT_ACTIVATIONS[:2]
    cfg = dict(activation=activation, recurrent_activation=str(r.choice(gate_choices)),
               use_bias=bool(r.random() < 0.8), return_sequences=bool(r.random() < 0.5),
               return_state=bool(r.random() < 0.5), go_backwards=bool(r.random() < 0.5),
               zero_output_for_mask=bool(r.random() < 0.5))
    if kind == "lstm":
        cfg["unit_forget_bias"] = bool(r.random() < 0.5)
    else:
        cfg["reset_after"] = bool(r.random() < 0.6)
    b, t, f, m = (int(v) for v in r.integers([2, 1, 1, 1], [6, 8, 6, 6]))
    x = _varied(r, (b, t, f), "float64") * 2
    call = {}
    if r.random() < 0.6:
        call["mask"] = _mask(r, b, t)
    if r.random() < 0.6:
        call["initial_state"] = [_varied(r, (b, m), "float64") for _ in range(N_STATES[kind])]
    return r, cfg, (b, t, f, m), x, call


def _cast(x, call, dtype):
    call = dict(call)
    if "initial_state" in call:
        call["initial_state"] = [s.astype(dtype) for s in call["initial_state"]]
    return x.astype(dtype), call


# --- (a) forward parity with Keras ----------------------------------------------------------

@pytest.mark.sampled(0.5)      # random configurations: make test runs a fixed half of them
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("seed", range(40))
def test_forward_matches_keras(kind, seed):
    r, cfg, (b, t, f, m), x, call = _random_case(kind, seed)
    x, call = _cast(x, call, "float32")
    ours, theirs = _pair(kind, r, m, f, **cfg)
    got, want = to_list(ours(x, **call)), to_list(theirs(x, **call))
    assert len(got) == len(want) == 1 + cfg["return_state"] * N_STATES[kind]
    for g, w in zip(got, want):
        _close("forward vs keras", g, w)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("return_state", [False, True])
def test_stateful_matches_keras_and_resets(kind, return_state, rng):
    ours, theirs = _pair(kind, rng, 4, 3, batch=2, stateful=True, return_sequences=True,
                         return_state=return_state)
    x1, x2 = (_varied(rng, (2, 5, 3)) for _ in range(2))
    for x in (x1, x2, x1):                                   # the state carries over calls
        for g, w in zip(to_list(ours(x)), to_list(theirs(x))):
            _close("forward vs keras", g, w)
    ours.reset_state()
    theirs.reset_state()
    for g, w in zip(to_list(ours(x2)), to_list(theirs(x2))):
        _close("forward vs keras", g, w)


def test_bias_initialization_matches_keras():
    for unit_forget_bias in (True, False):
        cfg = dict(unit_forget_bias=unit_forget_bias, kernel_initializer="zeros",
                   recurrent_initializer="zeros")
        ours = LSTM(3, bias_initializer=ui.Constant(0.03), **cfg)
        theirs = keras.layers.LSTM(3, bias_initializer=keras.initializers.Constant(0.03), **cfg)
        ours.build((None, 2, 4))
        theirs.build((None, 2, 4))
        np.testing.assert_array_equal(ours.get_weights()[2], theirs.get_weights()[2])
    cell = LSTMCell(5)
    cell.build((None, 2))
    np.testing.assert_array_equal(cell.bias.value, [0] * 5 + [1] * 5 + [0] * 10)  # exactly 1.0
    for reset_after, shape in ((True, (2, 12)), (False, (12,))):
        gru = GRU(4, reset_after=reset_after, bias_initializer=ui.Constant(0.1))
        gru.build((None, 2, 3))
        assert gru.cell.bias.shape == shape and np.all(gru.cell.bias.value == np.float32(0.1))


# --- (b) gradient parity with Keras ---------------------------------------------------------

def _keras_gradients(theirs, x, call, dys, training=False):
    xv = tf.constant(x)
    inits = [tf.constant(s) for s in call.get("initial_state", [])]
    kwargs = {"training": training}
    if inits:
        kwargs["initial_state"] = inits
    if "mask" in call:
        kwargs["mask"] = tf.constant(call["mask"])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([xv] + inits)
        outs = to_list(theirs(xv, **kwargs))
        loss = tf.add_n([tf.reduce_sum(o * dy) for o, dy in zip(outs, dys)])
    grads = [tape.gradient(loss, w) for w in theirs.trainable_weights]
    dx = tape.gradient(loss, xv)
    dinit = [tape.gradient(loss, s) for s in inits]
    outs = [np.asarray(o) for o in outs]
    return outs, [np.asarray(g) for g in grads], [np.asarray(dx)] + [np.asarray(g) for g in dinit]


def _our_gradients(ours, x, call, r, training=False):
    out, cache = ours.forward(x, training=training, mask=call.get("mask"),
                              initial_state=call.get("initial_state"))
    dys = [_varied(r, o.shape, x.dtype) for o in to_list(out)]
    dinputs, dweights = ours.backward(cache, dys if ours.return_state else dys[0])
    return to_list(out), dys, dweights, dinputs


@pytest.mark.sampled(0.5)      # random configurations: make test runs a fixed half of them
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("seed", range(100, 124))
def test_gradients_match_keras(kind, seed):
    r, cfg, (b, t, f, m), x, call = _random_case(kind, seed)
    x, call = _cast(x, call, "float32")
    ours, theirs = _pair(kind, r, m, f, **cfg)
    _, dys, dweights, dinputs = _our_gradients(ours, x, call, r)
    _, kweights, kinputs = _keras_gradients(theirs, x, call, dys)
    assert len(dweights) == len(kweights) and len(dinputs) == len(kinputs)
    for g, k in zip(dweights + dinputs, kweights + kinputs):
        # float32 BPTT accumulates rounding: on seed 108 (GRU) Keras's own gradients are
        # 1.8e-5 away from a float64 computation and ours (compiled tanh) 1.6e-5, in
        # opposite directions; so the pair is compared at 2e-5 + 1e-5 relative.
        _close("gradient vs keras", g, k, atol=2e-5)


@pytest.mark.parametrize("kind", ["lstm", "simple"])
@pytest.mark.parametrize("seed", range(4))
def test_folded_steps_match_keras(kind, seed, monkeypatch):
    """Made to fold at any size (``z = [x_t | h] @ [W; U]``, one product per step, which at
    their default sizes these small layers do not), SimpleRNN and LSTM still give Keras's
    outputs and gradients: masks, initial states, go_backwards, return_sequences."""
    from unrolled.fast import kernels
    from unrolled.fast import cells as fast_cells
    from unrolled.layers import SimpleRNN
    monkeypatch.setattr(fast_cells.LSTMSequence, "fold_min_macs", 0)
    monkeypatch.setattr(fast_cells.SimpleRNNSequence, "fold_min_macs", 0)
    r = np.random.default_rng(seed)
    b, t, f, m = 4, 6, 3, 5
    cfg = dict(return_sequences=bool(seed % 2), return_state=True, go_backwards=seed >= 2)
    ours_cls, theirs_cls = ((LSTM, keras.layers.LSTM) if kind == "lstm" else
                            (SimpleRNN, keras.layers.SimpleRNN))
    ours = ours_cls(m, **cfg)
    ours.build((None, None, f))
    ours.set_weights([_varied(r, w.shape) for w in ours.weights])
    theirs = theirs_cls(m, **cfg)
    theirs.build((None, None, f))
    theirs.set_weights(ours.get_weights())
    x = _varied(r, (b, t, f)) * 2
    call = {"mask": _mask(r, b, t)} if seed % 2 else {}
    call["initial_state"] = [_varied(r, (b, m)) for _ in ours.cell.state_size]
    assert fast_cells.of_cell(ours.cell).folds(np.dtype("float32"), b) == kernels.enabled()
    _, dys, dweights, dinputs = _our_gradients(ours, x, call, r)
    kouts, kweights, kinputs = _keras_gradients(theirs, x, call, dys)   # (one Keras call)
    got = to_list(ours(x, **call))
    assert len(got) == len(kouts)
    for g, w in zip(got, kouts):
        _close("folded forward vs keras", g, w)
    assert len(dweights) == len(kweights) and len(dinputs) == len(kinputs)
    for g, k in zip(dweights + dinputs, kweights + kinputs):
        _close("folded gradient vs keras", g, k, atol=2e-5)


@pytest.fixture
def fixed_dropout(monkeypatch):
    """Record the dropout masks the loop draws, so Keras can be given the very same ones."""
    drawn = []
    real = dropout_mod.dropout_mask

    def record(shape, rate, dtype):
        mask = real(shape, rate, dtype)
        drawn.append(mask)
        return mask

    monkeypatch.setattr(dropout_mod, "dropout_mask", record)
    return drawn


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dropout,recurrent_dropout", [(0.3, 0.0), (0.0, 0.4), (0.3, 0.4)])
def test_training_dropout_matches_keras_given_the_same_masks(kind, dropout, recurrent_dropout,
                                                             fixed_dropout, rng):
    ours, theirs = _pair(kind, rng, 4, 3, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=True, return_state=True)
    x = _varied(rng, (5, 6, 3))
    call = {"mask": _mask(rng, 5, 6)}
    utils.set_random_seed(3)
    outs, dys, dweights, dinputs = _our_gradients(ours, x, call, rng, training=True)
    masks = list(fixed_dropout)
    # Keras's cell keeps the masks of the current call. With recurrent_dropout it draws one
    # per gate (inputs and state), as the loop does: (gates, B, width) arrays here.
    per_gate = recurrent_dropout > 0
    dp = masks.pop(0) if dropout else None
    rec = masks.pop(0) if recurrent_dropout else None
    assert dp is None or dp.ndim == (3 if per_gate else 2)
    assert rec is None or rec.shape == (ours.cell.gates, 5, 4)
    theirs.cell._dropout_mask = None if dp is None else (
        [tf.constant(m) for m in dp] if per_gate else tf.constant(dp))
    theirs.cell._recurrent_dropout_mask = None if rec is None else [tf.constant(m) for m in rec]
    kouts, kweights, kinputs = _keras_gradients(theirs, x, call, dys, training=True)
    for g, k in zip(outs, kouts):
        _close("forward vs keras", g, k)
    for g, k in zip(dweights + dinputs, kweights + kinputs):
        _close("gradient vs keras", g, k)


@pytest.mark.parametrize("cell_cls,cfg", [(LSTMCell, {}), (GRUCell, {"reset_after": True}),
                                          (GRUCell, {"reset_after": False})])
def test_per_gate_recurrent_dropout_matches_keras_cell(cell_cls, cfg, rng):
    # Keras draws one recurrent-dropout mask per gate; our cells take them as (gates, B, M).
    ours = cell_cls(4, recurrent_dropout=0.5, **cfg)
    ours.build((None, 3))
    ours.set_weights([_varied(rng, w.shape) for w in ours.weights])
    theirs = getattr(keras.layers, cell_cls.__name__)(4, recurrent_dropout=0.5, **cfg)
    theirs.build((None, 3))
    theirs.set_weights(ours.get_weights())
    x = _varied(rng, (2, 3))
    states = [_varied(rng, (2, 4)) for _ in ours.state_size]
    rec_mask = (rng.random((ours.gates, 2, 4)) > 0.5).astype("float32") * 2
    theirs._recurrent_dropout_mask = [tf.constant(mk) for mk in rec_mask]
    want_h, want_states = theirs(x, states, training=True)
    h, new_states, _ = ours.step(ours.project_inputs(x[None])[0], states, rec_mask)
    for g, w in zip([h] + new_states, [want_h] + to_list(want_states)):
        _close("forward vs keras", g, w)


# --- (c) finite differences in float64 ------------------------------------------------------

def _relative_error(a, n):
    """Entry by entry, as min-char-rnn's gradient check; below 1e-4 (where central differences
    in float64 are only good to ~1e-10 absolute) the error is measured against 1e-4."""
    return (np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), 1e-4)).max(initial=0)


def _check_numerically(loss, params, analytic, names, eps=1e-5):
    """Central differences of ``loss()`` against ``analytic`` for every entry of every array."""
    assert len(params) == len(analytic) == len(names)
    for name, p, a in zip(names, params, analytic):
        n = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            up = loss()
            p[idx] = old - eps
            down = loss()
            p[idx] = old
            n[idx] = (up - down) / (2 * eps)
        err = _relative_error(a, n)
        key = "finite-difference rel. error"
        MAX_DIFF[key] = max(MAX_DIFF.get(key, 0.0), err)
        assert err < 1e-6, f"d{name}: relative error {err:.2e}"


FD_CASES = [
    {},
    {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
    {"activation": "sigmoid", "recurrent_activation": "tanh", "use_bias": False},
    {"activation": "linear", "return_sequences": True},
    {"recurrent_activation": "linear", "return_sequences": True},
    {"activation": "hard_sigmoid", "return_state": True, "go_backwards": True},
    {"return_sequences": True, "return_state": True, "call": ["mask", "initial_state"]},
    {"return_sequences": True, "zero_output_for_mask": True, "call": ["mask"]},
    {"go_backwards": True, "return_state": True, "call": ["mask", "initial_state"]},
    {"dropout": 0.3, "return_sequences": True, "call": ["training"]},
    {"recurrent_dropout": 0.4, "return_state": True, "call": ["training", "initial_state"]},
    {"dropout": 0.3, "recurrent_dropout": 0.4, "go_backwards": True, "call": ["training", "mask"]},
]


@pytest.mark.parametrize("kind,variant", [("lstm", {"unit_forget_bias": False}), ("lstm", {}),
                                          ("gru", {"reset_after": True}),
                                          ("gru", {"reset_after": False})])
@pytest.mark.parametrize("case", range(len(FD_CASES)))
def test_gradients_match_finite_differences(kind, variant, case):
    cfg = {**FD_CASES[case], **variant}
    opts = cfg.pop("call", [])
    r = np.random.default_rng(case)
    b, t, f, m = 3, 4, 3, 3
    layer = OURS[kind](m, dtype="float64", **cfg)
    layer.build((b, None, f))
    layer.set_weights([_varied(r, w.shape, "float64") for w in layer.weights])
    x = _varied(r, (b, t, f), "float64") * 2
    mask = _mask(r, b, t) if "mask" in opts else None
    inits = ([_varied(r, (b, m), "float64") for _ in range(N_STATES[kind])]
             if "initial_state" in opts else None)
    training = "training" in opts

    def run():
        utils.set_random_seed(7)                             # the same dropout masks every time
        return layer.forward(x, training=training, mask=mask, initial_state=inits)

    out, cache = run()
    dys = [_varied(r, o.shape, "float64") for o in to_list(out)]
    dinputs, dweights = layer.backward(cache, dys if layer.return_state else dys[0])

    def loss():
        return sum(float((o * dy).sum()) for o, dy in zip(to_list(run()[0]), dys))

    params = [w.value for w in layer.weights] + [x] + (inits or [])
    names = ([w.name for w in layer.weights] + ["x"]
             + [f"initial_state[{i}]" for i in range(len(inits or []))])
    _check_numerically(loss, params, list(dweights) + list(dinputs), names)


@pytest.mark.parametrize("cell_cls,cfg", [(LSTMCell, {}), (GRUCell, {"reset_after": True}),
                                          (GRUCell, {"reset_after": False})])
def test_per_gate_recurrent_dropout_finite_differences(cell_cls, cfg):
    # The cells' per-gate path (rec_mask of shape (gates, B, M)), through a three-step loop.
    r = np.random.default_rng(5)
    cell = cell_cls(3, dtype="float64", **cfg)
    cell.build((None, 2))
    cell.set_weights([_varied(r, w.shape, "float64") for w in cell.weights])
    xs = _varied(r, (3, 2, 2), "float64")                    # time-major (T, B, F)
    states0 = [_varied(r, (2, 3), "float64") for _ in cell.state_size]
    rec_mask = (r.random((cell.gates, 2, 3)) > 0.4) / 0.6
    dys = _varied(r, (3, 2, 3), "float64")

    def run():
        xp, states, caches, outs = cell.project_inputs(xs), states0, [], []
        for t in range(len(xs)):
            out, states, c = cell.step(xp[t], states, rec_mask)
            outs.append(out)
            caches.append(c)
        return np.stack(outs), caches

    outs, caches = run()
    dstates, dxp = [np.zeros_like(s) for s in states0], [None] * len(xs)
    for t in reversed(range(len(xs))):
        dxp[t], dstates = cell.step_backward(caches[t], dys[t], dstates)
    dxp = np.stack(dxp)
    analytic = cell.weight_gradients(xs, caches, dxp) + [dxp @ cell.kernel.value.T] + dstates
    params = [w.value for w in cell.weights] + [xs] + states0
    names = [w.name for w in cell.weights] + ["x"] + [f"state0[{i}]" for i in range(len(states0))]
    _check_numerically(lambda: float((run()[0] * dys).sum()), params, analytic, names)


# --- (d) PyTorch parity ---------------------------------------------------------------------

def _from_torch(kind, net, layer, suffix):
    """Keras-layout weights from one layer and direction of torch.nn.LSTM / torch.nn.GRU.

    LSTM: the gate order i, f, g, o is Keras's i, f, c, o; kernels are transposed and the two
    biases summed. GRU: PyTorch's r, z, n becomes Keras's z, r, h, and the two biases become
    the rows of Keras's reset_after bias (2, 3M).
    """
    p = {k: v.detach().numpy() for k, v in net.named_parameters()}
    w_ih, w_hh = p[f"weight_ih_l{layer}{suffix}"], p[f"weight_hh_l{layer}{suffix}"]
    b_ih, b_hh = p[f"bias_ih_l{layer}{suffix}"], p[f"bias_hh_l{layer}{suffix}"]
    m = w_hh.shape[1]
    gates = 4 if kind == "lstm" else 3
    assert w_ih.shape[0] == w_hh.shape[0] == b_ih.shape[0] == b_hh.shape[0] == gates * m
    if kind == "lstm":
        weights = [w_ih.T, w_hh.T, b_ih + b_hh]
    else:
        def zrh(a):                                          # rows r, z, n  ->  z, r, h
            r_, z_, n_ = np.split(a, 3, axis=0)
            return np.concatenate([z_, r_, n_], axis=0)
        weights = [zrh(w_ih).T, zrh(w_hh).T, np.stack([zrh(b_ih), zrh(b_hh)])]
    for w, want in zip(weights, [(w_ih.shape[1], gates * m), (m, gates * m)]):
        assert w.shape == want
    return weights


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_pytorch(kind, num_layers, bidirectional, rng):
    torch.manual_seed(0)
    b, t, f, m = 3, 6, 4, 5
    net = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(
        f, m, num_layers=num_layers, batch_first=True, bidirectional=bidirectional)
    with torch.no_grad():
        for param in net.parameters():
            param.normal_(0, 0.5)
    dirs = 2 if bidirectional else 1
    x = _varied(rng, (b, t, f))
    init = [_varied(rng, (num_layers * dirs, b, m)) for _ in range(N_STATES[kind])]
    torch_init = [torch.from_numpy(s) for s in init]
    with torch.no_grad():
        want, want_states = net(torch.from_numpy(x),
                                tuple(torch_init) if kind == "lstm" else torch_init[0])
    want_states = [s.numpy() for s in to_list(want_states)]

    seq, finals = x, []
    for layer in range(num_layers):
        outs = []
        for d, suffix in enumerate(["", "_reverse"][:dirs]):
            ours = OURS[kind](m, return_sequences=True, return_state=True, go_backwards=d == 1)
            ours.build((None, None, seq.shape[-1]))
            ours.set_weights(_from_torch(kind, net, layer, suffix))
            y, *states = ours(seq, initial_state=[s[layer * dirs + d] for s in init])
            outs.append(y[:, ::-1] if d == 1 else y)         # back in input order
            finals.append(states)
        seq = np.concatenate(outs, axis=-1)
    _close("forward vs pytorch", seq, want.numpy())
    for i, s in enumerate(want_states):                      # h_n (and c_n): (layers*dirs, B, M)
        _close("forward vs pytorch", np.stack([st[i] for st in finals]), s)


# --- (e) parameter counts, (f) bad input ----------------------------------------------------

@pytest.mark.parametrize("kind,units,features,cfg,count", [
    ("lstm", 6, 4, {}, 264), ("lstm", 3, 4, {"use_bias": False}, 84),
    ("lstm", 256, 64, {}, 328_704), ("gru", 5, 6, {}, 195),
    ("gru", 5, 6, {"reset_after": False}, 180), ("gru", 4, 3, {}, 108),
])
def test_parameter_counts(kind, units, features, cfg, count):
    ours = OURS[kind](units, **cfg)
    ours.build((None, None, features))
    theirs = THEIRS[kind](units, **cfg)
    theirs.build((None, None, features))
    assert ours.count_params() == theirs.count_params() == count
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]


def test_public_model_with_lstm_and_gru_matches_keras(rng):
    from unrolled.layers import Dense, Input
    from unrolled.models import Model

    inp = Input(shape=(6, 3))
    out = Dense(2)(GRU(4, go_backwards=True)(LSTM(5, return_sequences=True)(inp)))
    ours = Model(inp, out)
    k_inp = keras.Input(shape=(6, 3))
    k_out = keras.layers.Dense(2)(keras.layers.GRU(4, go_backwards=True)(
        keras.layers.LSTM(5, return_sequences=True)(k_inp)))
    theirs = keras.Model(k_inp, k_out)
    weights = [_varied(rng, w.shape) for w in ours.weights]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    x = _varied(rng, (4, 6, 3))
    _close("forward vs keras", ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


def test_bad_input_messages():
    for cls in (LSTM, GRU, LSTMCell, GRUCell):
        for units in (0, -3):
            with pytest.raises(ValueError, match="expected a positive integer"):
                cls(units)
    with pytest.raises(ValueError, match="use_cudnn"):
        LSTM(3, use_cudnn="sometimes")
    with pytest.raises(ValueError, match="dropout"):
        GRU(3, dropout=1.5)
    x = np.zeros((2, 4, 5), "float32")
    lstm, gru = LSTM(3), GRU(3)
    lstm(x)
    gru(x)
    with pytest.raises(ValueError,
                       match=r"expects 2 initial state\(s\) of shapes \[\(2, 3\), \(2, 3\)\]"):
        lstm(x, initial_state=[np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"expects 1 initial state"):
        gru(x, initial_state=[np.zeros((2, 3)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"Initial state 1 .* must have shape \(batch_size, 3\)"):
        lstm(x, initial_state=[np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError,
                       match=r"must have shape \(batch_size, 3\) = \(2, 3\); received \(5, 3\)"):
        gru(x, initial_state=[np.zeros((5, 3))])
    with pytest.raises(ValueError, match=r"shape \(2, 9\)"):
        gru.set_weights([np.zeros((5, 9)), np.zeros((3, 9)), np.zeros(9)])
