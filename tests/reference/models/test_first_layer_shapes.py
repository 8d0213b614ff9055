"""What older Keras scripts write (issue 20.6, 20.7): the first layer's ``input_shape``,
``input_dim``, ``batch_input_shape`` or an Embedding's ``input_length`` gives a Sequential
model its input, as in Keras 3 (``input_shape``/``input_dim``) and Keras 2 (tf_keras, the
rest); ``summary()`` of a model not built yet prints Keras's "(unbuilt)" table; 1-D targets
for a ``Dense(1)`` output train as in Keras, with ``(N,)`` sample weights."""
import warnings

import keras
import numpy as np
import pytest
import tf_keras  # the Keras 2 reference (make installs it)

import unrolled



def _quiet(build):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build()


@pytest.mark.parametrize("how", ["input_shape", "input_dim", "batch_input_shape", "input_length"])
def test_the_first_layers_shape_argument_is_the_models_input(how):
    def build(m):
        L = m.layers
        if how == "input_shape":
            return m.Sequential([L.LSTM(4, input_shape=(5, 3)), L.Dense(1)])
        if how == "input_dim":
            return m.Sequential([L.Dense(4, input_dim=3), L.Dense(1)])
        if how == "batch_input_shape":
            return m.Sequential([L.LSTM(4, batch_input_shape=(8, 5, 3), stateful=True), L.Dense(1)])
        return m.Sequential([L.Embedding(10, 4, input_length=5), L.GRU(3)])
    ours = _quiet(lambda: build(unrolled))
    reference = tf_keras if how in ("batch_input_shape", "input_length") else keras
    theirs = _quiet(lambda: build(reference))
    assert ours.built
    assert tuple(ours.inputs[0].shape) == tuple(theirs.inputs[0].shape)
    assert tuple(ours.outputs[0].shape) == tuple(theirs.outputs[0].shape)
    assert ours.count_params() == theirs.count_params()
    assert ("int" in str(ours.inputs[0].dtype)) == (how == "input_length")


def test_input_shape_warns_as_keras_does():
    with pytest.warns(UserWarning, match="Do not pass an `input_shape`/`input_dim`"):
        unrolled.layers.Dense(2, input_shape=(3,))
    with pytest.raises(ValueError, match="goes with `input_shape`"):
        unrolled.layers.Dense(2, batch_size=4)


def test_summary_of_an_unbuilt_model_is_keras_table():
    def lines(m):
        model = m.Sequential([m.layers.Embedding(10, 4, name="emb"), m.layers.LSTM(4, name="rnn"),
                              m.layers.Dense(1, name="out")], name="unbuilt")
        out = []
        model.summary(print_fn=lambda text, *a, **k: out.extend(text.splitlines()))
        return [line.rstrip() for line in out if line.strip()]
    assert lines(unrolled) == lines(keras)


def test_one_dimensional_targets_train_as_in_keras(rng):
    x = rng.standard_normal((20, 5, 3)).astype("float32")
    y = rng.standard_normal(20).astype("float32")
    labels = rng.integers(0, 2, 20)
    weights = np.linspace(0.5, 1.5, 20)

    def run(m, start=None):
        model = m.Sequential([m.Input((5, 3)), m.layers.GRU(4), m.layers.Dense(1, activation="sigmoid")])
        model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
        if start is not None:
            model.set_weights(start)
        w = model.get_weights()
        bce = model.fit(x, labels, sample_weight=weights, epochs=2, batch_size=8, shuffle=False,
                        verbose=0, validation_data=(x[:6], labels[:6])).history
        model.compile(loss="mse", optimizer="sgd")
        mse = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history
        return w, bce, mse, model.evaluate(x, y, verbose=0)

    start, *want = run(keras)
    _, *got = run(unrolled, start)
    for g, w in zip(got[:2], want[:2]):
        assert set(g) == set(w)
        for key in w:
            np.testing.assert_allclose(g[key], w[key], rtol=1e-5, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-5)
