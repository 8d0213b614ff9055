"""The catalogue of bad input at every public boundary, with the exception and message each gets.

Each row: what the user does, the exception type, and a part of the message that says what
was expected. NaN and Inf in inputs are not errors: they propagate as NaN, never a crash.
"""
import numpy as np
import pytest

from unrolled import callbacks, initializers, losses, metrics, optimizers, utils
from unrolled.layers import (GRU, LSTM, Bidirectional, Dense, Embedding, Input, Reshape, SimpleRNN)
from unrolled.models import Model


def _model():
    i = Input((5, 3))
    m = Model(i, Dense(2)(LSTM(4)(i)))
    m.compile(loss="mse", optimizer="adam")
    return m


X, Y = np.zeros((4, 5, 3)), np.zeros((4, 2))

CASES = [
    # --- construction
    ("units=0", lambda: SimpleRNN(0), ValueError, "positive integer"),
    ("units='4'", lambda: LSTM("4"), ValueError, "positive integer"),
    ("unknown activation", lambda: GRU(3, activation="swishy"), ValueError, "Unknown activation"),
    ("unknown initializer", lambda: Dense(3, kernel_initializer="nope"), ValueError, "Unknown initializer"),
    ("unknown keyword", lambda: Dense(3, unitz=4), TypeError, "Unrecognized keyword"),
    ("dropout > 1", lambda: LSTM(3, dropout=1.5), ValueError, "dropout"),
    ("bad merge_mode", lambda: Bidirectional(LSTM(3), merge_mode="max"), ValueError, "merge_mode"),
    ("same go_backwards", lambda: Bidirectional(LSTM(3), backward_layer=LSTM(3)), ValueError, "go_backwards"),
    ("unknown loss", lambda: losses.get("msq"), ValueError, "Unknown loss"),
    ("unknown metric", lambda: metrics.get("f1"), ValueError, "Unknown metric"),
    ("unknown optimizer", lambda: optimizers.get("adamm"), ValueError, "Unknown optimizer"),
    ("initializer of wrong type", lambda: initializers.get(3.5), TypeError, "initializer"),
    ("callback of wrong type", lambda: _model().fit(X, Y, verbose=0, callbacks=["stop"]), TypeError, "Callback"),
    # --- shapes and ranks
    ("rank 2 into an RNN", lambda: SimpleRNN(3)(np.zeros((2, 3))), ValueError, "expected ndim=3"),
    ("rank 1 into Dense", lambda: Dense(3)(np.zeros(3)), ValueError, "min_ndim=2"),
    ("wrong feature size", lambda: _model().predict(np.zeros((2, 5, 4)), verbose=0), ValueError, "expected shape=(None, 5, 3)"),
    ("wrong timesteps", lambda: _model().predict(np.zeros((2, 6, 3)), verbose=0), ValueError, "found shape=(2, 6, 3)"),
    ("Reshape to a wrong size", lambda: Reshape((4, 4))(np.zeros((2, 3, 5))), ValueError, "total size"),
    # --- dtypes
    ("strings", lambda: _model().predict(np.full((1, 5, 3), "a"), verbose=0), TypeError, "numeric"),
    ("objects", lambda: _model().predict(np.array([[[None] * 3] * 5], dtype=object), verbose=0), TypeError, "numeric"),
    ("string targets", lambda: _model().fit(X, Y.astype(str), verbose=0), TypeError, "numeric"),
    ("token ids out of range", lambda: Embedding(5, 2)(np.array([[1, 7]])), ValueError, "input_dim"),
    # --- batches, x and y
    ("empty fit", lambda: _model().fit(np.zeros((0, 5, 3)), np.zeros((0, 2)), verbose=0), ValueError, "empty"),
    ("x and y lengths", lambda: _model().fit(X, Y[:3], verbose=0), ValueError, "4 samples but y has 3"),
    # issue 26.9: a sample_weight of the wrong length, NaN in it, zero timesteps
    ("sample_weight length", lambda: _model().fit(X, Y, sample_weight=np.ones(3), verbose=0),
     ValueError, "4 samples but `sample_weight` has 3"),
    ("sample_weight length, train_on_batch",
     lambda: _model().train_on_batch(X, Y, sample_weight=np.ones(5)), ValueError, "has 5"),
    ("NaN sample_weight", lambda: _model().fit(X, Y, sample_weight=[1, np.nan, 1, 1], verbose=0),
     ValueError, "NaN or Inf"),
    ("text sample_weight", lambda: _model().evaluate(X, Y, sample_weight=["a"] * 4, verbose=0),
     TypeError, "must be numeric"),
    ("validation sample_weight", lambda: _model().fit(X, Y, validation_data=(X, Y, np.ones(2)),
                                                      verbose=0), ValueError, "validation"),
    ("zero timesteps", lambda: LSTM(3)(np.zeros((2, 0, 3))), ValueError, "0 timesteps"),
    ("target width", lambda: _model().fit(X, np.zeros((4, 3)), verbose=0), ValueError, "target width"),
    ("NaN targets", lambda: _model().fit(X, np.full((4, 2), np.nan), verbose=0), ValueError, "NaN"),
    ("batch_size=0", lambda: _model().fit(X, Y, batch_size=0, verbose=0), ValueError, "batch_size"),
    ("disconnected graph", lambda: Model(Input((5, 3)), Dense(2)(Input((5, 3)))), ValueError, "Graph disconnected"),
    # --- masks and initial states
    ("mask of wrong shape", lambda: GRU(3)(np.zeros((2, 5, 3)), mask=np.ones((2, 5, 1), bool)), ValueError, "(batch, timesteps)"),
    ("too few initial states", lambda: LSTM(4)(np.zeros((2, 5, 3)), initial_state=[np.zeros((2, 4))]), ValueError, "expects 2 initial state"),
    ("initial state width", lambda: SimpleRNN(4)(np.zeros((2, 5, 3)), initial_state=[np.zeros((2, 5))]), ValueError, "(batch_size, 4)"),
    ("initial state batch", lambda: SimpleRNN(4)(np.zeros((2, 5, 3)), initial_state=[np.zeros((3, 4))]), ValueError, "(2, 4)"),
    # --- weights
    ("set_weights count", lambda: _model().set_weights([np.zeros(1)]), ValueError, "weight arrays"),
    ("set_weights shape", lambda: _model().layers[1].set_weights([np.zeros((4, 16))] * 3), ValueError, "has shape (3, 16)"),
]


@pytest.mark.parametrize("what,action,exc,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(what, action, exc, message):
    with pytest.raises(exc) as info:
        action()
    assert message in str(info.value), f"{what}: message was {info.value}"


def test_fit_before_compile_is_refused():
    i = Input((5, 3))
    with pytest.raises(ValueError, match="compile"):
        Model(i, Dense(2)(LSTM(4)(i))).fit(X, Y, verbose=0)


@pytest.mark.parametrize("layer", [SimpleRNN(3), LSTM(3), GRU(3), Bidirectional(GRU(3))])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_propagate_without_a_crash(layer, bad):
    x = np.zeros((2, 4, 3), "float32")
    x[0, 1, 2] = bad
    with np.errstate(all="ignore"):
        out = layer(x)
    assert np.isnan(out[0]).any() or np.isinf(out[0]).any() or np.all(np.abs(out[0]) <= 1)
    assert np.all(np.isfinite(out[1]))          # the other row is untouched


def test_gradient_clipping_tames_exploding_gradients(rng):
    # Large recurrent weights make the gradient explode through time; clipnorm keeps the
    # update bounded so training goes on, while plain SGD leaves the weights ruined.
    def run(**clip):
        # Seeded: from about 1 initialization in 300 (seed 51 of range(300)) the clipped
        # run's loss jumps at the first step and ends above where it started.
        utils.set_random_seed(0)
        i = Input((40, 1))
        model = Model(i, Dense(1)(SimpleRNN(8, activation="linear")(i)))
        w = model.get_weights()
        w[1] = np.eye(8, dtype="float32") * 1.15          # spectral radius > 1: explosion
        model.set_weights(w)
        model.compile(loss="mse", optimizer=optimizers.SGD(learning_rate=0.01, **clip))
        x = np.random.default_rng(0).standard_normal((16, 40, 1)).astype("float32")
        y = x[:, -1]
        with np.errstate(all="ignore"):
            h = model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                          callbacks=[callbacks.TerminateOnNaN()])
        return h.history["loss"], model.get_weights()
    losses_plain, w_plain = run()
    losses_clip, w_clip = run(clipnorm=1.0)
    assert all(np.isfinite(losses_clip)) and all(np.all(np.isfinite(w)) for w in w_clip)
    assert losses_clip[-1] < losses_clip[0]
    assert not all(np.isfinite(losses_plain)) or max(np.abs(w).max() for w in w_plain) > 1e3


def test_a_mask_on_a_layer_that_cannot_use_it():
    from unrolled.layers import Flatten, Masking
    with pytest.raises(TypeError, match="does not use a mask"):
        Flatten()(np.zeros((2, 3, 4)), mask=np.ones((2, 3), bool))
    i = Input((3, 4))
    model = Model(i, Dense(1)(Flatten()(Masking()(i))))
    with pytest.warns(UserWarning, match="does not support masking"):
        model.predict(np.ones((2, 3, 4)), verbose=0)
