"""Subclassed models (``class Net(keras.Model)`` with ``__init__`` and ``call``), in Keras
and in unrolled: each class is written once against a module argument (``lib`` is
``keras`` or ``unrolled``, ``C`` the custom layers of ``tests/keras_way.py`` on it), Keras's
initial weights are copied over, and predictions, ``fit`` histories and weights compared.
"""
import warnings

import numpy as np
import pytest

import unrolled
from keras_way import define

import keras  # noqa: E402  (a test dependency: CI installs it, so no skip)

KC = define(keras.layers, keras.ops)
UC = define(unrolled.layers, unrolled.ops)


def define_models(lib, C):
    L = lib.layers

    class TextNet(lib.Model):
        """Embedding(mask_zero) -> Bidirectional(LSTM) -> LSTM -> Dense: the mask flows."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.emb = L.Embedding(20, 6, mask_zero=True, name="emb")
            # named: automatic names count per process, so "forward_lstm_<n>" would depend
            # on what ran before in this worker
            self.bi = L.Bidirectional(L.LSTM(4, return_sequences=True, name="enc"), name="bi")
            self.lstm = L.LSTM(3, name="lstm")
            self.out = L.Dense(1, name="out")

        def call(self, inputs, training=False):
            return self.out(self.lstm(self.bi(self.emb(inputs))))

    class Tagger(TextNet):
        """A subclass of a subclassed model: return_sequences down to the output, whose
        mask weighs the loss."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.lstm = L.LSTM(3, return_sequences=True, name="lstm")

    class EncoderDecoder(lib.Model):
        """Two inputs, states handed over, and ``proj`` called twice (shared weights)."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.enc = L.LSTM(4, return_state=True, name="enc")
            self.dec = L.GRU(4, return_sequences=True, name="dec")
            self.proj = L.Dense(3, activation="tanh", name="proj")
            self.out = L.Dense(2, name="out")

        def call(self, inputs):
            a, b = inputs
            _, h, _ = self.enc(self.proj(a))
            return self.out(self.dec(self.proj(b), initial_state=h))

    class WithCustom(lib.Model):
        """Keras-way layers inside: NoisyScale (x * 3 in training only: the training flag
        must reach it) and LinearTanh (its own backward); a list of layers."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.noisy = C.NoisyScale(name="noisy")
            self.blocks = [C.LinearTanh(5, name="lt"), L.SimpleRNN(4, name="rnn")]
            self.out = L.Dense(1, name="out")

        def call(self, inputs, training=None):
            h = self.noisy(inputs)
            for block in self.blocks:
                h = block(h)
            return self.out(h)

    class Residual(lib.Model):
        """One tensor read by three layers (its gradients summed), merge layers."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.rnn = L.GRU(4, return_sequences=True, name="rnn")
            self.inner = L.Dense(4, activation="tanh", name="inner")
            self.add = L.Add(name="add")
            self.cat = L.Concatenate(name="cat")
            self.pool = L.GlobalAveragePooling1D(name="pool")
            self.out = L.Dense(1, name="out")

        def call(self, inputs):
            h = self.rnn(inputs)
            return self.out(self.pool(self.cat([self.add([h, self.inner(h)]), h])))

    class Outer(lib.Model):
        """A subclassed model holding another."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = EncoderDecoder(name="inner")
            self.head = L.Dense(1, name="head")

        def call(self, inputs):
            return self.head(self.inner(inputs))

    class WithFunctional(lib.Model):
        """A functional model held and called like a layer."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            inp = lib.Input((None, 3))
            self.encoder = lib.Model(inp, L.LSTM(4, name="enc_lstm")(inp), name="encoder")
            self.head = L.Dense(2, name="head")

        def call(self, inputs):
            return self.head(self.encoder(inputs))

    class Regularized(lib.Model):
        """Weight and activity regularizers inside: ``model.losses`` and the loss."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.lstm = L.LSTM(3, kernel_regularizer="l2", name="lstm")
            self.out = L.Dense(1, activity_regularizer="l2", name="out")

        def call(self, inputs):
            return self.out(self.lstm(inputs))

    class Arith(lib.Model):
        """NumPy/ops arithmetic between layers: no tape through it."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.lstm = L.LSTM(4, name="lstm")
            self.out = L.Dense(1, name="out")

        def call(self, inputs):
            return self.out(self.lstm(inputs) * 2.0)

    class ArithOut(Arith):
        def call(self, inputs):
            return lib.ops.tanh(self.out(self.lstm(inputs)))

    class NoBackward(lib.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.lstm = L.LSTM(4, return_sequences=True, name="lstm")
            self.top = C.TopHalf(name="top")          # a weight, no backward
            self.out = L.Dense(1, name="out")

        def call(self, inputs):
            return self.out(self.top(self.lstm(inputs)))

    return {k: v for k, v in locals().items() if isinstance(v, type)}


KM = define_models(keras, KC)
UM = define_models(unrolled, UC)


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(autouse=True)
def _keras_seed():
    """Keras's initial weights (copied to unrolled) the same whatever ran before."""
    keras.utils.set_random_seed(20)


def _pair(name, x):
    km, um = KM[name](name="net"), UM[name](name="net")
    km(x)
    um(x)
    um.set_weights([_np(w) for w in km.get_weights()])
    return km, um


def _text(rng):
    x = rng.integers(1, 20, (12, 7))
    x[:, 5:] = 0
    x[2, 2:] = 0
    return x


def _fit_both(km, um, x, y, **kw):
    km.compile(keras.optimizers.Adam(0.01), "mse")
    um.compile(unrolled.optimizers.Adam(0.01), "mse")
    hk = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0, **kw).history
    hu = um.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0, **kw).history
    return hk, hu


def _check_fit(km, um, hk, hu):
    assert hu.keys() == hk.keys()
    for key in hk:
        np.testing.assert_allclose(hu[key], hk[key], rtol=1e-5)
    # Adam moves an entry by lr * m / (sqrt(v) + 1e-7): where a gradient is nearly zero (terms
    # that cancel, |g| ~ 1e-9), its float32 rounding, which BLAS's summation order decides,
    # comes out ~1e4 times larger: a full run once left one embedding entry 1.8e-5 from
    # Keras's after these 6 steps at lr=0.01. The histories above check the rest at 1e-5.
    for a, b in zip(um.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, _np(b), rtol=1e-5, atol=5e-5)


def _paths(model, prefix=""):
    return [w.path[len(prefix):] if w.path.startswith(prefix) else w.path for w in model.weights]


@pytest.fixture(scope="module")
def text_run():
    rng = np.random.default_rng(20)
    x = _text(rng)
    y = rng.standard_normal((12, 1)).astype("float32")
    km, um = _pair("TextNet", x)
    before = (_np(km.predict(x, verbose=0)), um.predict(x, verbose=0))
    hk, hu = _fit_both(km, um, x, y, validation_split=0.25)
    return km, um, x, y, before, hk, hu


def test_forward_weights_and_summary_equal_keras(text_run):
    km, um, x, y, (pk, pu), _, _ = text_run
    np.testing.assert_allclose(pu, pk, rtol=1e-6, atol=1e-7)
    assert _paths(um) == _paths(km, "net/")                  # Keras's tracking order
    assert [layer.name for layer in um.layers] == [layer.name for layer in km.layers]
    assert _summary(um) == _summary(km)


def _summary(model):
    out = []
    model.summary(print_fn=lambda text, *a, **k: out.extend(text.splitlines()))
    return [line.rstrip() for line in out if line.strip()]


def test_fit_with_masks_and_bidirectional_equals_keras(text_run):
    km, um, x, y, _, hk, hu = text_run
    _check_fit(km, um, hk, hu)
    np.testing.assert_allclose(um.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0),
                               rtol=1e-5)
    np.testing.assert_allclose(um(x), _np(km(x)), rtol=1e-5, atol=1e-6)


def test_output_mask_weighs_loss_and_train_on_batch(rng):
    x = _text(rng)
    y = rng.standard_normal((12, 7, 1)).astype("float32")
    km, um = _pair("Tagger", x)
    assert _paths(um) == _paths(km, "net/")
    km.compile(keras.optimizers.Adam(0.01), "mse")
    um.compile(unrolled.optimizers.Adam(0.01), "mse")
    for i in range(3):
        lk = km.train_on_batch(x[4 * i:4 * i + 4], y[4 * i:4 * i + 4])
        lu = um.train_on_batch(x[4 * i:4 * i + 4], y[4 * i:4 * i + 4])
        np.testing.assert_allclose(lu, float(lk), rtol=1e-5)
    # Adam moves an entry by lr * m / (sqrt(v) + 1e-7): where a gradient is nearly zero (terms
    # that cancel, |g| ~ 1e-9), its float32 rounding, which BLAS's summation order decides,
    # comes out ~1e4 times larger: a full run once left one embedding entry 1.8e-5 from
    # Keras's after these 6 steps at lr=0.01. The histories above check the rest at 1e-5.
    for a, b in zip(um.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, _np(b), rtol=1e-5, atol=5e-5)


def test_shared_layer_and_states_fit_equals_keras(rng):
    a = rng.standard_normal((12, 5, 3)).astype("float32")
    b = rng.standard_normal((12, 6, 3)).astype("float32")
    y = rng.standard_normal((12, 6, 2)).astype("float32")
    km, um = _pair("EncoderDecoder", [a, b])
    assert _paths(um) == _paths(km, "net/")
    np.testing.assert_allclose(um.predict([a, b], verbose=0), km.predict([a, b], verbose=0),
                               rtol=1e-6, atol=1e-7)
    _check_fit(km, um, *_fit_both(km, um, [a, b], y))


def test_tensor_read_by_several_layers_fit_equals_keras(rng):
    x = rng.standard_normal((12, 5, 3)).astype("float32")
    y = rng.standard_normal((12, 1)).astype("float32")
    km, um = _pair("Residual", x)
    assert _paths(um) == _paths(km, "net/")
    _check_fit(km, um, *_fit_both(km, um, x, y))


def test_nested_subclassed_model_fit_equals_keras(rng):
    a = rng.standard_normal((8, 5, 3)).astype("float32")
    b = rng.standard_normal((8, 4, 3)).astype("float32")
    y = rng.standard_normal((8, 4, 1)).astype("float32")
    km, um = _pair("Outer", [a, b])
    assert [w.shape for w in um.weights] == [tuple(w.shape) for w in km.weights]
    _check_fit(km, um, *_fit_both(km, um, [a, b], y))


def test_functional_model_inside_fit_equals_keras(rng):
    x = rng.standard_normal((12, 5, 3)).astype("float32")
    y = rng.standard_normal((12, 2)).astype("float32")
    km, um = _pair("WithFunctional", x)
    assert [layer.name for layer in um.layers] == ["encoder", "head"]
    _check_fit(km, um, *_fit_both(km, um, x, y))


def test_regularizers_fit_equals_keras(rng):
    x = rng.standard_normal((12, 5, 3)).astype("float32")
    y = rng.standard_normal((12, 1)).astype("float32")
    km, um = _pair("Regularized", x)
    _check_fit(km, um, *_fit_both(km, um, x, y))
    assert len(um.losses) == len(km.losses) == 2
    np.testing.assert_allclose(um.losses, [float(_np(v)) for v in km.losses], rtol=1e-5)


def test_custom_layers_and_training_flag_fit_equals_keras(rng):
    x = rng.standard_normal((12, 6, 3)).astype("float32")
    y = rng.standard_normal((12, 1)).astype("float32")
    km, um = _pair("WithCustom", x)
    assert _paths(um) == _paths(km, "net/")
    np.testing.assert_allclose(um.predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
    # NoisyScale triples its input in training: a wrong flag changes the loss
    np.testing.assert_allclose(um(x, training=True), _np(km(x, training=True)), rtol=1e-6,
                               atol=1e-6)
    _check_fit(km, um, *_fit_both(km, um, x, y))


def test_trainable_false_layer_equals_keras(rng):
    x = _text(rng)
    y = rng.standard_normal((12, 1)).astype("float32")
    km, um = _pair("TextNet", x)
    km.lstm.trainable = False
    um.lstm.trainable = False
    assert len(um.trainable_weights) == len(km.trainable_weights)
    assert len(um.non_trainable_weights) == len(km.non_trainable_weights) == 3
    frozen = [w.copy() for w in um.lstm.get_weights()]
    _check_fit(km, um, *_fit_both(km, um, x, y))
    for a, b in zip(um.lstm.get_weights(), frozen):
        np.testing.assert_array_equal(a, b)
    um.trainable = False
    assert um.trainable_weights == [] and not um.out.trainable


@pytest.mark.parametrize("name", ["Arith", "ArithOut"])
def test_arithmetic_outside_layers_is_refused_for_training(rng, name):
    x = rng.standard_normal((8, 5, 3)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    km, um = _pair(name, x)
    np.testing.assert_allclose(um.predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
    um.compile("adam", "mse")
    km.compile("adam", "mse")
    np.testing.assert_allclose(um.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0),
                               rtol=1e-6)
    before = um.get_weights()
    for train in (lambda: um.fit(x, y, epochs=1, verbose=0),
                  lambda: um.train_on_batch(x, y)):
        with pytest.raises(NotImplementedError, match="outside layer"):
            train()
    for a, b in zip(um.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(NotImplementedError, match="outside layer"):
        um.gradients(x, y)


def test_custom_layer_without_backward_is_refused(rng):
    x = rng.standard_normal((4, 5, 3)).astype("float32")
    um = UM["NoBackward"](name="nb")
    um.compile("adam", "mse")
    before = None
    with pytest.raises(NotImplementedError, match="'top'.*no `backward`"):
        um(x)
        before = um.get_weights()
        um.fit(x, np.zeros((4, 5, 1), "float32"), verbose=0)
    for a, b in zip(um.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_in_place_change_in_call_is_refused(rng):
    class InPlace(unrolled.Model):
        def __init__(self):
            super().__init__(name="inplace")
            self.lstm = unrolled.layers.LSTM(2)
            self.out = unrolled.layers.Dense(1)

        def call(self, inputs):
            h = self.lstm(inputs)
            h += 1.0
            return self.out(h)

    x = rng.standard_normal((4, 5, 3)).astype("float32")
    m = InPlace()
    m(x)                                  # inference keeps no cache: nothing to protect
    m.compile("adam", "mse")
    with pytest.raises(ValueError, match="read-only"):
        m.train_on_batch(x, np.zeros((4, 1), "float32"))


def test_files(rng, tmp_path):
    x = _text(rng)
    um = UM["TextNet"](name="net")
    with pytest.raises(ValueError, match="not built"):
        um.load_weights(tmp_path / "w.weights.npz")
    um(x)
    um.save_weights(tmp_path / "w.weights.npz")
    other = UM["TextNet"](name="net2")
    other(x)
    other.load_weights(tmp_path / "w.weights.npz")
    for a, b in zip(other.get_weights(), um.get_weights()):
        np.testing.assert_array_equal(a, b)
    for call in (lambda: um.save(tmp_path / "m.keras"),
                 lambda: um.save_weights(tmp_path / "m.weights.h5"),
                 lambda: um.load_weights(tmp_path / "m.weights.h5")):
        with pytest.raises(NotImplementedError, match="subclassed model"):
            call()


def test_unbuilt_summary_and_errors(rng):
    km, um = KM["TextNet"](name="net"), UM["TextNet"](name="net")
    assert _summary(um) == _summary(km)                      # "?" and "0 (unbuilt)"
    with pytest.warns(UserWarning, match="unbuilt state"):
        um.build((None, 7))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km.build((None, 7))
    assert um.built and _summary(um) == _summary(km)      # Keras 3 builds no layer here
    with pytest.raises(AttributeError, match="no defined input"):
        um.input
    with pytest.raises(NotImplementedError, match="symbolic"):
        um(unrolled.Input((7,), dtype="int32"))
    with pytest.raises(TypeError, match="Model needs inputs and outputs"):
        unrolled.Model()

    class Stepper(unrolled.Model):
        def __init__(self):
            super().__init__()
            self.d = unrolled.layers.Dense(1)

        def call(self, inputs):
            return self.d(inputs)

        def train_step(self, data):
            return {}

    with pytest.raises(NotImplementedError, match="train_step"):
        Stepper().compile("adam", "mse")
    with pytest.raises(NotImplementedError, match="train_step"):
        Stepper().predict(np.zeros((2, 3), "float32"), verbose=0)
    with pytest.raises(TypeError, match="overrides `call` of Sequential"):
        class MySequential(unrolled.Sequential):
            def call(self, inputs):
                return inputs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Stepper().name.startswith("stepper")
