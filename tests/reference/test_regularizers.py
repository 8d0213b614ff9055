"""Weight regularizers and constraints in training (issue 20.13), against Keras 3: the
same model in both, Keras's initial weights copied over, ``shuffle=False``; the epoch
losses (which include the penalties), the weights after training, ``evaluate`` and
``model.losses`` agree. Penalty gradients are checked by finite differences in float64."""
import warnings

import numpy as np
import pytest
import tf_keras  # the Keras 2 reference (make installs it)
from keras_ref import keras

import unrolled
from unrolled import constraints, regularizers


def _lstm(m):
    return m.Sequential([
        m.Input((6, 3)),
        m.layers.LSTM(4, kernel_regularizer=m.regularizers.L2(0.01),
                      recurrent_regularizer=m.regularizers.L1(0.002),
                      bias_regularizer=m.regularizers.L1L2(0.01, 0.02),
                      recurrent_constraint=m.constraints.MaxNorm(0.5)),
        m.layers.Dense(2, kernel_constraint=m.constraints.NonNeg(), bias_regularizer="l2")])


def _gru(m):
    return m.Sequential([
        m.Input((6, 3)),
        m.layers.GRU(5, return_sequences=True, bias_regularizer=m.regularizers.L2(0.05),
                     kernel_constraint=m.constraints.UnitNorm(axis=0)),
        m.layers.SimpleRNN(3, recurrent_regularizer="l2",
                           kernel_constraint=m.constraints.MinMaxNorm(0.2, 0.8, rate=0.5)),
        m.layers.Dense(2, kernel_regularizer="l1")])


def _text(m):
    return m.Sequential([
        m.Input((7,), dtype="int32"),
        m.layers.Embedding(20, 4, mask_zero=True,
                           embeddings_regularizer=m.regularizers.L2(0.02),
                           embeddings_constraint=m.constraints.MaxNorm(1.0, axis=1)),
        m.layers.Bidirectional(m.layers.LSTM(3, return_sequences=True,
                                             kernel_regularizer=m.regularizers.L1(0.01))),
        m.layers.TimeDistributed(m.layers.Dense(2, kernel_constraint=m.constraints.MaxNorm(0.7))),
    ])


def _frozen(m):
    model = _lstm(m)
    model.layers[0].trainable = False              # its penalties leave the loss (Keras)
    return model


MODELS = {"lstm": _lstm, "gru-simple": _gru, "embedding-bidirectional": _text,
          "frozen": _frozen}


def _data(kind, rng):
    if kind == "embedding-bidirectional":
        x = rng.integers(0, 20, (16, 7)).astype("int32")
        x[:4, 5:] = 0                                               # masked steps
        return x, rng.standard_normal((16, 7, 2)).astype("float32")
    x = rng.standard_normal((16, 6, 3)).astype("float32")
    return x, rng.standard_normal((16, 2)).astype("float32")


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_fit_with_regularizers_and_constraints_equals_keras(kind, optimizer, rng):
    theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
    ours.set_weights(theirs.get_weights())
    x, y = _data(kind, rng)
    sample_weight = rng.uniform(0.5, 2.0, y.shape[:2 if y.ndim == 3 else 1]).astype("float32")
    # (weighs the loss, not the penalties; per time step for the sequence outputs, where
    # Keras 3 takes no (N,) weights beside an output mask)
    for mod, model in ((keras, theirs), (unrolled, ours)):
        opt = (mod.optimizers.Adam(0.05) if optimizer == "adam"
               else mod.optimizers.SGD(1.0 if kind != "gru-simple" else 0.3))
        model.compile(optimizer=opt, loss="mse")
    kw = dict(epochs=3, batch_size=8, shuffle=False, verbose=0, sample_weight=sample_weight)
    want = theirs.fit(x, y, **kw).history["loss"]
    got = ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(got, want, rtol=2e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0),
                               rtol=2e-5)
    np.testing.assert_allclose(ours.losses, [float(v) for v in theirs.losses], rtol=2e-5,
                               atol=1e-8)
    assert len(ours.losses) == len(theirs.losses) == (1 if kind == "frozen" else
                                                      {"lstm": 4, "gru-simple": 3}.get(kind, 3))


@pytest.mark.parametrize("reg", [regularizers.L1(0.3), regularizers.L2(0.2),
                                 regularizers.L1L2(0.1, 0.4)])
def test_penalty_gradients_match_finite_differences(reg, rng):
    w = rng.standard_normal((4, 5))                  # float64, no entry at 0
    g = reg.gradient(w)
    eps = 1e-6
    fd = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        up, down = w.copy(), w.copy()
        up[i] += eps
        down[i] -= eps
        fd[i] = (reg(up) - reg(down)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    kw = keras.regularizers.get(regularizers.serialize(reg))
    np.testing.assert_allclose(reg(w.astype("float32")), float(kw(w.astype("float32"))),
                               rtol=1e-6)


@pytest.mark.parametrize("constraint", [constraints.MaxNorm(0.8), constraints.NonNeg(),
                                        constraints.UnitNorm(axis=1),
                                        constraints.MinMaxNorm(0.5, 1.5, rate=0.3)])
def test_constraints_equal_keras(constraint, rng):
    w = rng.standard_normal((6, 4)).astype("float32")
    theirs = keras.constraints.get(constraints.serialize(constraint))
    np.testing.assert_allclose(constraint(w), np.asarray(theirs(w)), rtol=1e-6, atol=1e-7)


def test_regularized_models_save_and_load_with_keras(tmp_path, rng):
    ours = _lstm(unrolled)
    ours.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras")
    lstm = back.layers[0]
    assert lstm.kernel_regularizer.get_config() == {"l2": 0.01}
    assert lstm.cell.recurrent_constraint.get_config() == {"max_value": 0.5, "axis": 0}
    assert type(back.layers[1].kernel_constraint).__name__ == "NonNeg"
    again = unrolled.models.load_model(tmp_path / "m.keras")
    assert again.layers[0].bias_regularizer.get_config() == {"l1": 0.01, "l2": 0.02}
    assert type(again.layers[0].cell.recurrent_kernel.constraint).__name__ == "MaxNorm"
    x, y = _data("lstm", rng)
    again.compile("adam", "mse")                     # trains: nothing is refused
    assert np.isfinite(again.train_on_batch(x, y))


def test_a_keras2_file_with_regularizers_loads_and_trains_them(tmp_path, rng):
    theirs = tf_keras.Sequential([
        tf_keras.layers.InputLayer(input_shape=(6, 3)),
        tf_keras.layers.LSTM(4, kernel_regularizer=tf_keras.regularizers.l2(0.01),
                             recurrent_constraint=tf_keras.constraints.max_norm(0.5)),
        tf_keras.layers.Dense(2)])
    theirs.save(tmp_path / "k2.h5")
    ours = unrolled.models.load_model(tmp_path / "k2.h5")
    reg = ours.layers[0].kernel_regularizer
    assert type(reg).__name__ in ("L2", "L1L2") and reg.l2 == pytest.approx(0.01)
    assert ours.layers[0].cell.recurrent_kernel.constraint.max_value == pytest.approx(0.5)
    theirs.compile(optimizer=tf_keras.optimizers.SGD(0.5), loss="mse")
    ours.compile(optimizer=unrolled.optimizers.SGD(0.5), loss="mse")
    x, y = _data("lstm", rng)
    want = theirs.train_on_batch(x, y)
    np.testing.assert_allclose(ours.train_on_batch(x, y), want, rtol=2e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def test_what_is_not_implemented_is_refused_and_functions_work_as_constraints(tmp_path, rng):
    with pytest.raises(NotImplementedError, match="OrthogonalRegularizer"):
        unrolled.layers.Dense(2, activity_regularizer="OrthogonalRegularizer")
    with pytest.raises(NotImplementedError, match="OrthogonalRegularizer"):
        unrolled.layers.Dense(2, kernel_regularizer="OrthogonalRegularizer")
    with pytest.raises(NotImplementedError, match="gradient"):
        unrolled.layers.Dense(2, kernel_regularizer=lambda w: 0.1 * np.sum(w ** 2))
    with pytest.raises(ValueError, match="Could not interpret"):
        unrolled.layers.LSTM(2, recurrent_regularizer="l3")
    with pytest.raises(ValueError, match="non-negative"):
        regularizers.L2(-1.0)
    clip = lambda w: np.clip(w, -0.05, 0.05)          # noqa: E731  (a function, as Keras takes)
    model = unrolled.Sequential([unrolled.Input((6, 3)),
                                 unrolled.layers.LSTM(4, kernel_constraint=clip),
                                 unrolled.layers.Dense(2)])
    model.compile("adam", "mse")
    x, y = _data("lstm", rng)
    model.train_on_batch(x, y)
    assert np.abs(model.layers[0].cell.kernel.value).max() <= 0.05
    with pytest.raises(ValueError, match="function"):
        model.save(tmp_path / "clip.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert unrolled.regularizers.get("l1_l2").get_config() == {"l1": 0.0, "l2": 0.0}
