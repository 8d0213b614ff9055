"""Embedding weights under Keras's sparse (IndexedSlices) updates, against real Keras.

A text model trains 5 steps in both libraries from Keras's initial weights. The batches
repeat some tokens within a batch and leave other vocabulary rows out, which is where the
sparse rule differs from the dense one (see ``unrolled/optimizers/sparse.py``).
"""
import numpy as np
import pytest
from keras_ref import keras

from unrolled import optimizers as uopt
from unrolled.layers import GRU, LSTM, Concatenate, Dense, Embedding, Input
from unrolled.models import Model

VOCAB, T, N = 12, 6, 8
STEPS = 5
TOL = 5e-5          # float32 training over 5 steps: sums in another order, not other rules

# (name, keyword arguments), the same for Keras's and our class of that name.
CASES = [
    ("SGD", dict(learning_rate=0.5, momentum=0.9)),
    ("Adam", dict(learning_rate=0.02)),
    ("Adam", dict(learning_rate=0.02, amsgrad=True)),
    ("AdamW", dict(learning_rate=0.02, weight_decay=0.1)),
    ("RMSprop", dict(learning_rate=0.01)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.5)),
    ("Adagrad", dict(learning_rate=0.1)),
    ("Adam", dict(learning_rate=0.02, clipnorm=0.05)),
    ("RMSprop", dict(learning_rate=0.01, clipvalue=0.002)),
    ("Adagrad", dict(learning_rate=0.1, global_clipnorm=0.05)),
    ("Adamax", dict(learning_rate=0.02)),                 # |g| per position, summed by row
    ("Nadam", dict(learning_rate=0.02)),
    ("Nadam", dict(learning_rate=0.02, clipnorm=0.05)),
]


def batches(mask_zero, n=N):
    """STEPS batches of token ids in [1, 8): rows 8..11 never appear, and within a batch
    tokens repeat (each batch draws from only 3 or 4 distinct ids). Id 0 pads the ends of
    some rows when ``mask_zero`` (and is an ordinary, repeated token otherwise)."""
    rng = np.random.default_rng(7)
    out = []
    for step in range(STEPS):
        pool = rng.choice(np.arange(1, 8), size=3 + step % 2, replace=False)
        x = rng.choice(pool, size=(n, T)).astype("int32")
        x[::3, T - 2:] = 0
        y = rng.integers(0, 4, size=(n,)).astype("int32")
        out.append((x, y))
    return out


def keras_model(mask_zero, branch):
    keras.utils.set_random_seed(3)
    L = keras.layers
    i = keras.Input((T,), dtype="int32")
    e = L.Embedding(VOCAB, 8, mask_zero=mask_zero)(i)
    h = L.LSTM(6)(e)
    if branch:                       # the embedding's output feeds two layers
        h = L.Concatenate()([h, L.GRU(5)(e)])
    return keras.Model(i, L.Dense(4, activation="softmax")(h))


def our_model(mask_zero, branch):
    i = Input((T,), dtype="int32")
    e = Embedding(VOCAB, 8, mask_zero=mask_zero)(i)
    h = LSTM(6)(e)
    if branch:
        h = Concatenate()([h, GRU(5)(e)])
    return Model(i, Dense(4, activation="softmax")(h))


def train_both(name, kwargs, mask_zero=False, branch=False, n=N):
    theirs = keras_model(mask_zero, branch)
    ours = our_model(mask_zero, branch)
    ours.set_weights(theirs.get_weights())
    theirs.compile(getattr(keras.optimizers, name)(**kwargs), "sparse_categorical_crossentropy")
    ours.compile(getattr(uopt, name)(**kwargs), "sparse_categorical_crossentropy")
    losses = [(ours.train_on_batch(x, y), float(theirs.train_on_batch(x, y)))
              for x, y in batches(mask_zero, n)]
    return ours, theirs, losses


def assert_same(ours, theirs, losses):
    for step, (a, b) in enumerate(losses):
        assert a == pytest.approx(b, rel=TOL, abs=TOL), f"loss of step {step + 1}"
    for w, a, b in zip(ours.weights, ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL, err_msg=w.path)


@pytest.mark.parametrize("name,kwargs", CASES, ids=lambda c: str(c))
def test_five_steps_of_a_text_model_equal_keras(name, kwargs):
    assert_same(*train_both(name, kwargs))


@pytest.mark.parametrize("name,kwargs", [CASES[1], CASES[4], CASES[6]], ids=lambda c: str(c))
def test_mask_zero_and_an_embedding_feeding_two_layers(name, kwargs):
    assert_same(*train_both(name, kwargs, mask_zero=True, branch=True))


def test_centered_rmsprop_with_few_repeats():
    # Centered, velocity - avg_g**2 goes negative for a token repeated more than
    # 1 / (1 - rho) = 10 times in a batch (per-position squares against a squared sum):
    # Keras then fails (InvalidArgumentError), so batches of 2 rows keep repeats fewer.
    assert_same(*train_both("RMSprop", dict(learning_rate=0.01, momentum=0.5, centered=True),
                            n=2))


def test_fit_without_shuffle_equals_keras():
    theirs, ours = keras_model(True, False), our_model(True, False)
    ours.set_weights(theirs.get_weights())
    theirs.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    ours.compile(uopt.Adam(0.02), "sparse_categorical_crossentropy")
    x = np.concatenate([b[0] for b in batches(True)])
    y = np.concatenate([b[1] for b in batches(True)])
    h1 = ours.fit(x, y, batch_size=N, epochs=1, shuffle=False, verbose=0).history["loss"]
    h2 = theirs.fit(x, y, batch_size=N, epochs=1, shuffle=False, verbose=0).history["loss"]
    assert h1[0] == pytest.approx(h2[0], rel=TOL)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL)


def test_public_gradients_stay_dense_and_sum_repeated_rows():
    ours = our_model(False, False)
    ours.compile("adam", "sparse_categorical_crossentropy")
    x, y = batches(False)[0]
    _, grads = ours.gradients(x, y)
    assert all(isinstance(g, np.ndarray) for g in grads)
    assert grads[0].shape == (VOCAB, 8)
    assert not grads[0][np.setdiff1d(np.arange(VOCAB), x)].any()


def test_one_embedding_shared_by_two_inputs():
    # Two calls: each call's positions count separately in the squares (TF concatenates).
    x1, y = batches(False)[0]
    x2 = batches(False)[1][0]
    keras.utils.set_random_seed(5)
    L = keras.layers
    ki, kj = keras.Input((T,), dtype="int32"), keras.Input((T,), dtype="int32")
    ke, kl = L.Embedding(VOCAB, 8), L.LSTM(6)
    theirs = keras.Model([ki, kj], L.Dense(4, activation="softmax")(
        L.Concatenate()([kl(ke(ki)), kl(ke(kj))])))
    i, j = Input((T,), dtype="int32"), Input((T,), dtype="int32")
    e, lstm = Embedding(VOCAB, 8), LSTM(6)
    ours = Model([i, j], Dense(4, activation="softmax")(Concatenate()([lstm(e(i)), lstm(e(j))])))
    ours.set_weights(theirs.get_weights())
    theirs.compile(keras.optimizers.Adagrad(0.1), "sparse_categorical_crossentropy")
    ours.compile(uopt.Adagrad(0.1), "sparse_categorical_crossentropy")
    losses = [(ours.train_on_batch([x1, x2], y), float(theirs.train_on_batch([x1, x2], y)))
              for _ in range(STEPS)]
    assert_same(ours, theirs, losses)


def test_indexed_slices_rows_and_an_optimizer_without_sparse_rule_gets_row_sums():
    from unrolled.optimizers.sparse import IndexedSlices
    from unrolled.variables import Variable

    g = IndexedSlices([1, 3, 1], np.array([[1.0, 2.0], [3.0, 4.0], [5.0, -6.0]], "float32"),
                      (4, 2))
    np.testing.assert_array_equal(g.dense(), [[0, 0], [6, -4], [0, 0], [3, 4]])
    np.testing.assert_array_equal(g.squares(), [[0, 0], [26, 40], [0, 0], [9, 16]])
    assert (g + g).indices.tolist() == [1, 3, 1, 1, 3, 1]

    seen = []

    class Plain(uopt.SGD):                  # a subclass that did not opt in to the rule
        sparse_updates = False

        def update_step(self, gradient, variable, learning_rate):
            seen.append(gradient)
            super().update_step(gradient, variable, learning_rate)

    var = Variable(np.zeros((4, 2), "float32"), "w")
    Plain(learning_rate=1.0).apply([g], [var])
    assert isinstance(seen[0], np.ndarray)
    np.testing.assert_array_equal(var.value, -g.dense())
