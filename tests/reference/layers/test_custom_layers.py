"""Custom layers written the Keras way (build + call with ops), in Keras and in unrolled.

The classes come from ``tests/keras_way.py``, written once and defined on each library.
"""
import warnings

import numpy as np
import pytest

import unrolled
from gradcheck import check_layer_gradients
from keras_way import define

import keras  # noqa: E402  (a test dependency: CI installs it, so no skip)

K = define(keras.layers, keras.ops)
U = define(unrolled.layers, unrolled.ops)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _copy(src, dst):
    dst.set_weights([_np(w) for w in src.get_weights()])


# --- forward ------------------------------------------------------------------------------------
def test_eager_call_equals_keras(rng):
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    k, u = K.LinearTanh(6, name="lt"), U.LinearTanh(6, name="lt")
    expected = _np(k(x))
    got = u(x)
    _copy(k, u)
    got = u(x)
    assert type(got) is np.ndarray and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert [w.path for w in u.weights] == ["lt/w", "lt/b"]
    assert [tuple(w.shape) for w in u.weights] == [tuple(w.shape) for w in k.weights]


def _pair(build):
    km, um = build(keras, K), build(unrolled, U)
    km.set_weights([_np(w) for w in km.get_weights()])
    um.set_weights(km.get_weights())
    return km, um


def test_sequential_and_functional_equal_keras(rng):
    x = rng.standard_normal((4, 7, 3)).astype("float32")

    def sequential(lib, C):
        return lib.Sequential([lib.Input((7, 3)), C.LinearTanh(5, name="a"),
                               lib.layers.LSTM(4, name="lstm"), C.LinearTanh(2, name="b")])

    def functional(lib, C):
        inp = lib.Input((None, 3))
        h = C.TopHalf(name="top")(C.LinearTanh(6, name="c")(inp))
        return lib.Model(inp, lib.layers.GRU(3, name="gru")(h))

    for build in (sequential, functional):
        km, um = _pair(build)
        np.testing.assert_allclose(um.predict(x, verbose=0), km.predict(x, verbose=0),
                                   rtol=1e-6, atol=1e-6)
        assert [tuple(t.shape) for t in um.outputs] == [tuple(t.shape) for t in km.outputs]


def test_traced_output_shape_keeps_unknown_dimensions():
    for lib, C in ((keras, K), (unrolled, U)):
        inp = lib.Input((None, 6))
        out = C.TopHalf(name="top")(inp)
        pooled = C.MaskedMean(name="mm")(inp)
        assert tuple(out.shape) == (None, None, 3)
        assert tuple(pooled.shape) == (None, 6)
    ids = unrolled.Input((5,), dtype="int32")             # the trace runs on integer zeros
    assert tuple(unrolled.layers.Embedding(10, 3)(ids).shape) == (None, 5, 3)


def test_masks_in_models_equal_keras(rng):
    ids = rng.integers(1, 9, (4, 6)).astype("int32")
    ids[0, 4:] = 0
    ids[2, 2:] = 0

    def build(lib, C):
        inp = lib.Input((6,), dtype="int32")
        e = lib.layers.Embedding(9, 3, mask_zero=True, name="emb")(inp)
        h = C.PassThrough(name="pass")(e)                    # the mask passes on
        seq = lib.layers.SimpleRNN(4, return_sequences=True, name="rnn")(h)
        return lib.Model(inp, [C.MaskedMean(name="mean")(seq),       # declares mask
                               lib.layers.LSTM(2, name="lstm")(h)])

    km, um = _pair(build)
    for got, expected in zip(um.predict(ids, verbose=0), km.predict(ids, verbose=0)):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_eager_masks_and_training_equal_keras(rng):
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    x[~mask] = 0.0
    k_out = K.PassThrough(name="p")(keras.layers.Masking(0.0)(x))   # Keras: mask from Masking
    u_out = U.PassThrough(name="p")(x, mask=mask)
    np.testing.assert_array_equal(u_out._keras_mask, _np(k_out._keras_mask))
    np.testing.assert_allclose(u_out, _np(k_out), rtol=1e-6)
    kl, ul = keras.layers.LSTM(2), unrolled.layers.LSTM(2)
    expected = _np(kl(k_out))                                 # the LSTM reads the mask
    ul(u_out)
    _copy(kl, ul)
    np.testing.assert_allclose(ul(u_out), expected, rtol=1e-6, atol=1e-6)
    for train in (True, False):
        np.testing.assert_allclose(U.NoisyScale()(x, training=train),
                                   _np(K.NoisyScale()(x, training=train)), rtol=1e-6)
    mean = U.MaskedMean(name="mm")(u_out)                    # gets u_out's mask, gives none
    np.testing.assert_allclose(mean, _np(K.MaskedMean(name="mm")(k_out)), rtol=1e-6)
    assert getattr(mean, "_keras_mask", None) is None
    with pytest.warns(UserWarning, match="does not support masking"):
        U.NoisyScale(name="ns")(u_out)


def test_add_weight_forms_as_keras():
    for lib in (keras, unrolled):
        class Weights(lib.layers.Layer):
            def build(self, input_shape):
                self.a = self.add_weight((2, 3))                       # glorot, float32
                self.b = self.add_weight((3,), "ones", name="b")
                self.c = self.add_weight(shape=(), dtype="int32", trainable=False)
                self.d = self.add_weight(shape=[4], initializer="zeros", name="d",
                                         trainable=False)

            def call(self, inputs):
                return inputs

        layer = Weights(name="weights")
        layer(np.zeros((1, 2), "float32"))
        got = [(tuple(w.shape), np.dtype(w.dtype).name) for w in layer.weights]
        assert got == [((2, 3), "float32"), ((3,), "float32"), ((), "int32"), ((4,), "float32")]
        assert len(layer.trainable_weights) == 2 and len(layer.non_trainable_weights) == 2
        np.testing.assert_array_equal(_np(layer.weights[1].value if lib is unrolled else
                                          layer.weights[1]), np.ones(3))
    u = Weights(name="w2")
    u(np.zeros((1, 2), "float32"))
    assert [w.name for w in u.weights] == ["variable", "b", "variable_1", "d"]
    with pytest.raises(ValueError, match="both positionally and as a keyword"):
        u.add_weight((2,), shape=(2,))
    with pytest.raises(NotImplementedError, match="overwrite_with_gradient"):
        u.add_weight((2,), overwrite_with_gradient=True)


def test_held_layers_are_tracked_as_keras(rng):
    x = rng.standard_normal((3, 5)).astype("float32")
    k, u = K.Holder(name="holder"), U.Holder(name="holder")
    expected = _np(k(x))
    u(x)
    assert [tuple(w.shape) for w in u.weights] == [tuple(w.shape) for w in k.weights]
    _copy(k, u)
    np.testing.assert_allclose(u(x), expected, rtol=1e-6, atol=1e-7)
    u.trainable = False
    assert u.trainable_weights == [] and len(u.first.non_trainable_weights) == 2


def test_config_round_trip():
    layer = U.LinearTanh(7, name="lt_cfg", trainable=False)
    again = U.LinearTanh.from_config(layer.get_config())
    assert (again.units, again.name, again.trainable) == (7, "lt_cfg", False)


def test_overriding_call_of_a_built_in_layer_is_refused():
    with pytest.raises(TypeError, match="overrides `call` of Dense"):
        class Doubled(unrolled.layers.Dense):
            def call(self, inputs):
                return super().call(inputs) * 2


# --- training -----------------------------------------------------------------------------------
def test_backward_equals_finite_differences(rng):
    layer = U.LinearTanh(3, dtype="float64", name="lt64")
    x = rng.standard_normal((2, 4, 5))
    layer(x)
    check_layer_gradients(layer, [x], rng, tol=1e-6)


@pytest.fixture(scope="module")
def fit_pair():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((32, 6, 3)).astype("float32")
    y = rng.standard_normal((32, 2)).astype("float32")

    def build(lib, C):
        return lib.Sequential([lib.Input((6, 3)), C.LinearTanh(5, name="first"),
                               lib.layers.LSTM(4, name="lstm"), C.LinearTanh(2, name="last")])

    km, um = _pair(build)
    for m in (km, um):
        m.compile(optimizer="adam", loss="mse")
    kh = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    uh = um.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    return km, um, kh, uh, x


def test_fit_through_custom_layers_equals_keras(fit_pair):
    km, um, kh, uh, x = fit_pair
    np.testing.assert_allclose(uh["loss"], kh["loss"], rtol=1e-5)
    for got, expected in zip(um.get_weights(), km.get_weights()):
        np.testing.assert_allclose(got, _np(expected), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(um.predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_no_backward_is_refused_before_the_first_step(rng):
    x = rng.standard_normal((8, 5, 3)).astype("float32")
    y = rng.standard_normal((8, 2)).astype("float32")
    inp = unrolled.Input((5, 3))
    h = unrolled.layers.SimpleRNN(4, return_sequences=True, name="rnn")(inp)
    model = unrolled.Model(inp, U.MaskedMean(name="pool")(unrolled.layers.Dense(2)(h)))
    model.compile("sgd", "mse")
    before = model.get_weights()
    for call in (lambda: model.fit(x, y, verbose=0), lambda: model.train_on_batch(x, y)):
        with pytest.raises(NotImplementedError, match="'pool' \\(MaskedMean\\).*backward"):
            call()
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert model.predict(x, verbose=0).shape == (8, 2)
    assert np.isfinite(model.evaluate(x, y, verbose=0))


def test_weightless_first_layer_needs_no_backward(rng):
    x = rng.standard_normal((16, 5, 3)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")

    def build(lib, C):
        return lib.Sequential([lib.Input((5, 3)), C.NoisyScale(name="scale"),
                               lib.layers.GRU(3, name="gru"), lib.layers.Dense(1, name="out")])

    km, um = _pair(build)
    for m in (km, um):
        m.compile(optimizer="sgd", loss="mse")
    kh = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    uh = um.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(uh["loss"], kh["loss"], rtol=1e-5)


def test_wrong_gradient_count_says_so(rng):
    class Bad(unrolled.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],))

        def call(self, inputs):
            return inputs * self.w.value

        def backward(self, inputs, outputs, doutputs):
            return doutputs, []

    layer = Bad(name="bad")
    x = rng.standard_normal((2, 3)).astype("float32")
    with pytest.raises(ValueError, match="'bad': backward returned 0 weight gradient"):
        layer.gradients(x, np.ones((2, 3), "float32"))


def test_no_warning_for_plain_layers(rng):
    x = rng.standard_normal((2, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        U.LinearTanh(2)(x)


# --- files --------------------------------------------------------------------------------------
def _file_model(lib, C):
    inp = lib.Input((6, 3))
    h = C.LinearTanh(4, name="lt")(inp)
    h = lib.layers.RNN(C.MinimalRNNCell(5, name="minimal"), return_sequences=True, name="rnn")(h)
    return lib.Model(inp, C.LinearTanh(2, name="head")(h))


def test_keras_files_with_custom_layers_both_ways(tmp_path, rng):
    import json
    import zipfile
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    km, um = _pair(_file_model)
    expected = km.predict(x, verbose=0)
    kobjects = {"LinearTanh": K.LinearTanh, "MinimalRNNCell": K.MinimalRNNCell}
    uobjects = {"LinearTanh": U.LinearTanh, "MinimalRNNCell": U.MinimalRNNCell}
    um.save(tmp_path / "u.keras")                          # unrolled writes, Keras reads
    entry = json.loads(zipfile.ZipFile(tmp_path / "u.keras").read("config.json"))
    lt = entry["config"]["layers"][1]
    assert (lt["module"], lt["class_name"], lt["registered_name"]) == \
        ("keras_way", "LinearTanh", "LinearTanh")
    assert lt["config"]["units"] == 4 and lt["config"]["dtype"]["class_name"] == "DTypePolicy"
    back = keras.saving.load_model(tmp_path / "u.keras", custom_objects=kobjects)
    np.testing.assert_allclose(back.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    km.save(tmp_path / "k.keras")                          # Keras writes, unrolled reads
    ours = unrolled.models.load_model(tmp_path / "k.keras", custom_objects=uobjects)
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    assert type(ours.get_layer("lt")) is U.LinearTanh
    with pytest.raises(unrolled.io.safety.UnsafeModelError, match="custom_objects="):
        unrolled.models.load_model(tmp_path / "k.keras")      # the class is never imported
    with pytest.raises(NotImplementedError, match="must be a layer class"):
        unrolled.models.load_model(tmp_path / "k.keras", custom_objects={"LinearTanh": len})
    again = unrolled.models.model_from_json(um.to_json(), custom_objects=uobjects)
    assert [type(layer).__name__ for layer in again.layers] == \
        [type(layer).__name__ for layer in um.layers]


def test_saving_refuses_what_it_cannot_write(tmp_path):
    inp = unrolled.Input((5,))
    model = unrolled.Model(inp, U.Holder(name="holder")(inp))
    with pytest.raises(unrolled.io.safety.UnsupportedModelError, match="holds other layers"):
        model.save(tmp_path / "h.keras")

    class NoConfig(unrolled.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def call(self, inputs):
            return inputs

    model = unrolled.Model(inp, NoConfig(np.ones(2), name="nc")(inp))   # not a plain value
    with pytest.raises(unrolled.io.safety.UnsupportedModelError, match="override `get_config"):
        model.save(tmp_path / "n.keras")
    model = unrolled.Model(inp, NoConfig(3, name="nc3")(inp))   # Keras 3's automatic config
    model.save(tmp_path / "a.keras")
    back = unrolled.models.load_model(tmp_path / "a.keras", custom_objects={"NoConfig": NoConfig})
    assert back.get_layer("nc3").units == 3


def test_registered_class_is_found_without_custom_objects(tmp_path):
    from unrolled import saving

    @saving.register_keras_serializable(package="test_custom_layers")
    class Twice(unrolled.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    inp = unrolled.Input((3,))
    unrolled.Model(inp, Twice(name="twice")(inp)).save(tmp_path / "t.keras")
    back = unrolled.models.load_model(tmp_path / "t.keras")
    assert type(back.get_layer("twice")) is Twice
    np.testing.assert_allclose(back.predict(np.ones((1, 3), "float32"), verbose=0), 2.0)


def test_automatic_config_equals_keras():
    expected = K.MinimalRNNCell(5, name="m").get_config()
    got = U.MinimalRNNCell(5, name="m").get_config()
    assert {k: v for k, v in got.items() if k != "dtype"} == \
        {k: v for k, v in expected.items() if k != "dtype"}


def test_weights_in_arithmetic_as_keras(rng):
    def make(lib):
        class Affine(lib.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1],), initializer="random_normal")

            def call(self, inputs):
                return (self.w * 2.0 - 1.0) * inputs + (-self.w) / 4.0 + self.w[0] ** 2

        return Affine(name="affine")

    x = rng.standard_normal((3, 4)).astype("float32")
    k, u = make(keras), make(unrolled)
    expected = _np(k(x))
    u(x)
    _copy(k, u)
    got = u(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_explicit_mask_to_a_layer_without_masking_is_refused(rng):
    x = rng.standard_normal((2, 3, 2)).astype("float32")
    with pytest.raises(TypeError, match="'ls'.*mask= was passed"):
        U.LinearTanh(2, name="ls")(x, mask=np.ones((2, 3), bool))
