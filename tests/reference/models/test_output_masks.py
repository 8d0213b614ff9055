"""Output masks weigh the loss and the metrics, as in Keras 3.15.

With ``mask_zero=True`` (or ``Masking``) and ``return_sequences=True`` down to the output,
Keras attaches the mask to ``y_pred``: the loss weighs each unmasked time step
``total/valid`` (so "sum_over_batch_size" averages the valid steps only), times any
``sample_weight``; each compiled metric weighs a step by the 0/1 mask. Padded rows of
different lengths; targets are random in the padding too, so ignoring the mask shows."""
import numpy as np
import pytest
from conftest import varied
from keras_ref import keras

from unrolled.layers import GRU, LSTM, Dense, Embedding, Input, Masking, TimeDistributed
from unrolled.models import Model
from unrolled.optimizers import SGD

RTOL = 1e-5
N, T = 10, 6
LENGTHS = np.array([6, 3, 1, 5, 2, 6, 4, 1, 3, 5])
PAD = np.arange(T)[None, :] >= LENGTHS[:, None]            # True where padded


def same_weights(rng, ours, theirs):
    ours.set_weights([varied(rng, *w.shape) for w in ours.weights])
    theirs.set_weights(ours.get_weights())


def embedding_pair(rng, head):
    i = Input(shape=(T,), dtype="int32")
    h = LSTM(5, return_sequences=True)(Embedding(7, 4, mask_zero=True)(i))
    dense = Dense(3, activation="softmax")
    ours = Model(i, TimeDistributed(dense)(h) if head == "time_distributed" else dense(h))
    ki = keras.Input(shape=(T,), dtype="int32")
    kh = keras.layers.LSTM(5, return_sequences=True)(keras.layers.Embedding(7, 4, mask_zero=True)(ki))
    kd = keras.layers.Dense(3, activation="softmax")
    theirs = keras.Model(ki, keras.layers.TimeDistributed(kd)(kh) if head == "time_distributed" else kd(kh))
    same_weights(rng, ours, theirs)
    x = rng.integers(1, 7, (N, T)).astype("int32")
    x[PAD] = 0
    y = rng.integers(0, 3, (N, T))
    return ours, theirs, x, y, "sparse_categorical_crossentropy", ["accuracy"]


def masking_pair(rng, _):
    i = Input(shape=(T, 3))
    ours = Model(i, Dense(2)(GRU(4, return_sequences=True)(Masking(0.0)(i))))
    ki = keras.Input(shape=(T, 3))
    theirs = keras.Model(ki, keras.layers.Dense(2)(keras.layers.GRU(4, return_sequences=True)(
        keras.layers.Masking(0.0)(ki))))
    same_weights(rng, ours, theirs)
    x = rng.standard_normal((N, T, 3)).astype("float32")
    x[PAD] = 0.0
    y = rng.standard_normal((N, T, 2)).astype("float32")
    return ours, theirs, x, y, "mse", ["mae"]


CASES = [(embedding_pair, "dense"), (embedding_pair, "time_distributed"), (masking_pair, None)]
IDS = ["embedding-lstm-dense", "embedding-lstm-timedistributed", "masking-gru-dense"]


def build(rng, make, head):
    ours, theirs, x, y, loss, metrics = make(rng, head)
    ours.compile(optimizer=SGD(0.5), loss=loss, metrics=metrics)
    theirs.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss, metrics=metrics)
    return ours, theirs, x, y


def assert_same(ours, theirs, a, b, what):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), what
        for k in b:
            np.testing.assert_allclose(a[k], b[k], rtol=RTOL, err_msg=f"{what} {k}")
    else:
        np.testing.assert_allclose(a, b, rtol=RTOL, err_msg=what)
    for wa, wb in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=RTOL, atol=2e-6, err_msg=f"{what}: weights")


def sample_weights(rng, kind):
    if kind is None:
        return None
    return rng.uniform(0.2, 2.0, (N, T) if kind == "per_step" else (N, 1)).astype("float32")


@pytest.mark.parametrize("make,head", CASES, ids=IDS)
@pytest.mark.parametrize("weights", [None, "per_step", "per_sample"])
def test_fit_and_evaluate_weigh_by_the_output_mask(rng, make, head, weights):
    ours, theirs, x, y = build(rng, make, head)
    sw = sample_weights(rng, weights)
    kw = dict(batch_size=4, epochs=2, shuffle=False, verbose=0, sample_weight=sw,
              validation_data=(x[:5], y[:5]))
    h1, h2 = ours.fit(x, y, **kw).history, theirs.fit(x, y, **kw).history
    assert_same(ours, theirs, h1, h2, "fit history")
    e1 = ours.evaluate(x, y, batch_size=4, sample_weight=sw, verbose=0, return_dict=True)
    e2 = theirs.evaluate(x, y, batch_size=4, sample_weight=sw, verbose=0, return_dict=True)
    assert_same(ours, theirs, e1, e2, "evaluate")


@pytest.mark.parametrize("make,head", CASES, ids=IDS)
def test_train_and_test_on_batch_weigh_by_the_output_mask(rng, make, head):
    ours, theirs, x, y = build(rng, make, head)
    sw = sample_weights(rng, "per_step")
    for step in range(2):
        a = ours.train_on_batch(x, y, return_dict=True)
        b = theirs.train_on_batch(x, y, return_dict=True)
        assert_same(ours, theirs, a, b, f"train_on_batch {step}")
    a = ours.train_on_batch(x, y, sample_weight=sw, return_dict=True)
    b = theirs.train_on_batch(x, y, sample_weight=sw, return_dict=True)
    assert_same(ours, theirs, a, b, "train_on_batch with sample_weight")
    a = ours.test_on_batch(x, y, sample_weight=sw, return_dict=True)
    b = theirs.test_on_batch(x, y, sample_weight=sw, return_dict=True)
    assert_same(ours, theirs, a, b, "test_on_batch")


def test_the_mask_is_the_only_thing_padding_changes(rng):
    """Targets in the padding do not matter at all; those in valid steps do."""
    ours, _, x, y = build(rng, masking_pair, None)
    base = ours.evaluate(x, y, verbose=0, return_dict=True)
    y2 = y.copy()
    y2[PAD] += 100.0
    assert ours.evaluate(x, y2, verbose=0, return_dict=True) == base
    y2[~PAD] += 1.0
    changed = ours.evaluate(x, y2, verbose=0, return_dict=True)
    assert abs(changed["loss"] - base["loss"]) > 0.1 and changed["mae"] != base["mae"]
