"""fit/evaluate/predict arguments against Keras 3.15: class_weight, steps_per_epoch,
validation_steps, validation_freq, initial_epoch, steps, callbacks, unknown arguments.

Each comparison trains the same recurrent model in both (same varied weights, shuffle
off) and compares History and the final weights at float32 tolerances."""
import warnings

import numpy as np
import pytest
from conftest import varied
from keras_ref import keras

from unrolled import callbacks as ucb
from unrolled.layers import LSTM, Dense, Input, SimpleRNN
from unrolled.models import Model
from unrolled.optimizers import SGD

RTOL = 1e-5


def pair(rng, units=3, activation=None, cell="lstm", seq=False, keras_too=True):
    """Our model with varied weights and Keras's with a copy (``keras_too=False``: ours
    alone, for the tests that check refusals and our own numbers)."""
    i = Input(shape=(5, 2))
    rnn = (LSTM if cell == "lstm" else SimpleRNN)(4, return_sequences=seq)
    ours = Model(i, Dense(units, activation=activation)(rnn(i)))
    ours.set_weights([varied(rng, *w.shape) for w in ours.weights])
    if not keras_too:
        return ours, None
    ki = keras.Input(shape=(5, 2))
    krnn = (keras.layers.LSTM if cell == "lstm" else keras.layers.SimpleRNN)(4, return_sequences=seq)
    theirs = keras.Model(ki, keras.layers.Dense(units, activation=activation)(krnn(ki)))
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def compile_both(ours, theirs, loss, metrics=None, lr=0.1):
    ours.compile(optimizer=SGD(lr), loss=loss, metrics=metrics)
    theirs.compile(optimizer=keras.optimizers.SGD(lr), loss=loss, metrics=metrics)


def fit_both(ours, theirs, *args, **kwargs):
    kwargs.setdefault("shuffle", False)
    kwargs.setdefault("verbose", 0)
    with warnings.catch_warnings(record=True) as w1:
        warnings.simplefilter("always")
        h1 = ours.fit(*args, **kwargs)
    with warnings.catch_warnings(record=True) as w2:
        warnings.simplefilter("always")
        h2 = theirs.fit(*args, **kwargs)
    assert h1.epoch == h2.epoch
    assert sorted(h1.history) == sorted(h2.history)
    for k in h2.history:
        np.testing.assert_allclose(h1.history[k], h2.history[k], rtol=RTOL, err_msg=k)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-6)
    ran_out = [lambda w: "ran out" in str(w.message)] * 2
    return h1, [sum(map(f, w)) for f, w in zip(ran_out, (w1, w2))]


def xs(rng, n):
    return rng.standard_normal((n, 5, 2)).astype("float32")


# --- class_weight ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sparse", "sparse_column", "onehot", "binary"])
def test_class_weight_matches_keras(rng, kind):
    n = 21                                   # batches of 8, 8, 5
    labels = rng.integers(0, 3, n)
    if kind == "binary":
        ours, theirs = pair(rng, 1, "sigmoid")
        y = rng.uniform(0, 1, (n, 1)).astype("float32")      # round() picks the class
        loss, cw = "binary_crossentropy", {0: 0.25, 1: 3.0}
    else:
        ours, theirs = pair(rng, 3, "softmax")
        y = {"sparse": labels, "sparse_column": labels[:, None],
             "onehot": np.eye(3, dtype="float32")[labels]}[kind]
        loss = "categorical_crossentropy" if kind == "onehot" else "sparse_categorical_crossentropy"
        cw = {0: 0.5, 2: 4.0}                                # class 1 missing: weight 1
    compile_both(ours, theirs, loss, ["accuracy"])
    x = xs(rng, n)
    fit_both(ours, theirs, x, y, batch_size=8, epochs=2, class_weight=cw,
             validation_data=(x[:7], y[:7]))
    assert ours.train_on_batch(x, y, class_weight=cw) == pytest.approx(
        theirs.train_on_batch(x, y, class_weight=cw), rel=RTOL)


def test_class_weight_changes_the_loss(rng):
    """A test able to fail: the weighted loss is not the unweighted one."""
    ours, _ = pair(rng, 3, "softmax", keras_too=False)
    ours.compile(optimizer=SGD(0.0), loss="sparse_categorical_crossentropy")
    x, y = xs(rng, 12), rng.integers(0, 3, 12)
    plain = ours.fit(x, y, epochs=1, verbose=0).history["loss"][0]
    weighted = ours.fit(x, y, epochs=1, verbose=0, class_weight={0: 5.0}).history["loss"][0]
    assert abs(weighted - plain) > 1e-3


def test_class_weight_refusals(rng):
    ours, _ = pair(rng, 3, "softmax", keras_too=False)
    ours.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy")
    x, y = xs(rng, 6), rng.integers(0, 3, 6)
    with pytest.raises(ValueError, match="class_weight"):
        ours.fit(x, y, class_weight={0: 2.0}, sample_weight=np.ones(6), verbose=0)
    with pytest.raises(ValueError, match="class_weight"):
        ours.train_on_batch(x, y, class_weight={0: 2.0}, sample_weight=np.ones(6))
    with pytest.raises(TypeError, match="class_weight"):
        ours.fit(x, y, class_weight=[1.0, 2.0, 3.0], verbose=0)
    seq, _ = pair(rng, 3, "softmax", seq=True, keras_too=False)
    seq.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="sequence"):
        seq.fit(x, rng.integers(0, 3, (6, 5)), class_weight={0: 2.0}, verbose=0)


# --- steps_per_epoch, validation_steps, validation_freq, initial_epoch ------------------
@pytest.mark.parametrize("steps,batch_size,expect_warnings", [
    (3, 6, 1),        # 4 batches: epochs of 3, 1, 3 batches; the short one warns
    (2, 6, 0),        # 4 batches: epochs of 2, 2, 2 (the second continues the first)
    (6, 6, 3),        # more steps than batches: every batch, and a warning, each epoch
    (3, None, 0),     # batch_size = ceil(20 / 3) = 7
])
def test_steps_per_epoch_matches_keras(rng, steps, batch_size, expect_warnings):
    ours, theirs = pair(rng, 2, cell="simple")
    compile_both(ours, theirs, "mse", ["mae"])
    x, y = xs(rng, 20), rng.standard_normal((20, 2)).astype("float32")
    seen = []
    cb = ucb.LambdaCallback(on_train_begin=lambda logs=None: seen.append(ours_params()))

    def ours_params():
        return dict(cb.params)
    _, warned = fit_both(ours, theirs, x, y, batch_size=batch_size, epochs=3,
                         steps_per_epoch=steps)
    assert warned == [expect_warnings] * 2
    ours.fit(x, y, batch_size=batch_size, epochs=1, steps_per_epoch=steps, verbose=0,
             callbacks=[cb])
    assert seen == [{"epochs": 1, "verbose": 0, "steps": steps}]


def test_validation_steps_and_freq_match_keras(rng):
    ours, theirs = pair(rng, 2, cell="simple")
    compile_both(ours, theirs, "mse", ["mae"])
    x, y = xs(rng, 20), rng.standard_normal((20, 2)).astype("float32")
    vx, vy = xs(rng, 11), rng.standard_normal((11, 2)).astype("float32")
    h, _ = fit_both(ours, theirs, x, y, batch_size=8, epochs=4, validation_data=(vx, vy),
                    validation_steps=1, validation_batch_size=4, validation_freq=2)
    assert len(h.history["val_loss"]) == 2 and len(h.history["loss"]) == 4
    h, _ = fit_both(ours, theirs, x, y, batch_size=8, epochs=3, validation_data=(vx, vy),
                    validation_freq=[1, 3])
    assert len(h.history["val_mae"]) == 2
    # validation_steps changes the number: only the first 4 validation samples count
    full = ours.evaluate(vx, vy, batch_size=4, verbose=0)[0]
    first = ours.evaluate(vx, vy, batch_size=4, steps=1, verbose=0)[0]
    assert abs(full - first) > 1e-4
    for bad in [(1, 2), 2.0, "2", 0]:
        with pytest.raises(ValueError, match="validation_freq"):
            ours.fit(x, y, validation_data=(vx, vy), validation_freq=bad, verbose=0)


def test_initial_epoch_matches_keras(rng, capsys):
    ours, theirs = pair(rng, 2, cell="simple")
    compile_both(ours, theirs, "mse")
    x, y = xs(rng, 16), rng.standard_normal((16, 2)).astype("float32")
    h, _ = fit_both(ours, theirs, x, y, batch_size=8, epochs=4, initial_epoch=2,
                    validation_split=0.25)
    assert h.epoch == [2, 3]
    ours.fit(x, y, batch_size=8, epochs=3, initial_epoch=1, verbose=2)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Epoch")]
    assert lines == ["Epoch 2/3", "Epoch 3/3"]
    ours.fit(x, y, batch_size=8, epochs=1, verbose=2)          # Keras prints no "Epoch 1/1"
    assert "Epoch" not in capsys.readouterr().out
    h = ours.fit(x, y, epochs=2, initial_epoch=2, verbose=0)
    assert h.epoch == [] and h.history == {}


# --- evaluate/predict steps and callbacks ------------------------------------------------
class Recorder:
    hooks = ("on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
             "on_predict_begin", "on_predict_end", "on_predict_batch_begin",
             "on_predict_batch_end", "on_epoch_begin", "on_epoch_end")

    def __init__(self, base):
        self.seen = []
        self.cb = base()
        for h in self.hooks:
            setattr(self.cb, h, self._record(h))

    def _record(self, hook):
        def call(*args, **kwargs):
            self.seen.append((hook,) + tuple(a for a in args if isinstance(a, int)))
        return call


def test_evaluate_predict_steps_and_callbacks_match_keras(rng):
    ours, theirs = pair(rng, 2)
    compile_both(ours, theirs, "mse", ["mae"])
    x, y = xs(rng, 10), rng.standard_normal((10, 2)).astype("float32")
    r1, r2 = Recorder(ucb.Callback), Recorder(keras.callbacks.Callback)
    for kw in [dict(batch_size=3, steps=2), dict(steps=4), dict(batch_size=4)]:
        e1 = ours.evaluate(x, y, verbose=0, callbacks=[r1.cb], **kw)
        e2 = theirs.evaluate(x, y, verbose=0, callbacks=[r2.cb], **kw)
        np.testing.assert_allclose(e1, e2, rtol=RTOL, err_msg=str(kw))
        p1 = ours.predict(x, verbose=0, callbacks=[r1.cb], **kw)
        p2 = theirs.predict(x, verbose=0, callbacks=[r2.cb], **kw)
        assert p1.shape == p2.shape
        np.testing.assert_allclose(p1, p2, rtol=RTOL, atol=1e-6)
    assert r1.seen == r2.seen
    with pytest.warns(UserWarning, match="ran out"):
        ours.evaluate(x, y, batch_size=3, steps=5, verbose=0)
    # fit's validation calls the test hooks of fit's callbacks, as Keras does
    r1, r2 = Recorder(ucb.Callback), Recorder(keras.callbacks.Callback)
    fit_both(ours, theirs, x, y, batch_size=4, epochs=2, validation_data=(x, y),
             validation_steps=2, callbacks=None)
    ours.fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), validation_steps=2,
             verbose=0, callbacks=[r1.cb])
    theirs.fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), validation_steps=2,
               verbose=0, callbacks=[r2.cb])
    assert r1.seen == r2.seen


# --- arguments that do not exist ---------------------------------------------------------
@pytest.mark.parametrize("name", ["workers", "use_multiprocessing", "max_queue_size", "foo"])
def test_unknown_arguments_are_refused_by_name(rng, name):
    ours, _ = pair(rng, 2, cell="simple", keras_too=False)
    ours.compile(optimizer=SGD(0.1), loss="mse")
    x, y = xs(rng, 4), np.zeros((4, 2), "float32")
    with pytest.raises(TypeError, match=name):
        ours.fit(x, y, verbose=0, **{name: 1})
    with pytest.raises(ValueError, match=name):          # Keras: ValueError from evaluate
        ours.evaluate(x, y, verbose=0, **{name: 1})
    with pytest.raises(TypeError, match=name):
        ours.predict(x, verbose=0, **{name: 1})
    with pytest.raises(TypeError, match=name):
        ours.train_on_batch(x, y, **{name: 1})
    with pytest.raises(TypeError, match=name):
        ours.test_on_batch(x, y, **{name: 1})
    with pytest.raises(ValueError, match="steps_per_epoch"):
        ours.fit(x, y, steps_per_epoch=0, verbose=0)
    with pytest.raises(ValueError, match="shuffle"):
        ours.fit(x, y, shuffle="yes", verbose=0)


def test_missing_targets_and_unimplemented_compile_arguments_are_refused(rng):
    ours, _ = pair(rng, 2, cell="simple", keras_too=False)
    x = xs(rng, 4)
    for name, value in [("weighted_metrics", ["mae"]), ("loss_weights", [2.0])]:
        with pytest.raises(NotImplementedError, match=name):
            ours.compile(optimizer=SGD(0.1), loss="mse", **{name: value})
    ours.compile(optimizer=SGD(0.1), loss="mse", weighted_metrics=[], loss_weights=None)
    for call in (lambda: ours.fit(x, verbose=0), lambda: ours.evaluate(x, verbose=0),
                 lambda: ours.train_on_batch(x), lambda: ours.test_on_batch(x)):
        with pytest.raises(ValueError, match="without y"):
            call()
