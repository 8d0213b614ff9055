"""``keras.backend``, ``keras.random``, ``keras.saving``, ``keras.datasets`` under
``import unrolled as keras`` (issue 20.15), and Keras 3's per-process metric names: each
check runs the same function with real Keras and with unrolled passed as the module."""
import sys

import keras as real_keras
import numpy as np
import pytest

import unrolled

MODULES = [real_keras, unrolled]


# ---- metric names, numbered per process as Keras 3 numbers them ---------------------------
def metric_names(keras):
    """Models compiled with metric objects, names and a function, in one fresh session:
    History's keys and the names of metrics built in between."""
    keras.backend.clear_session()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype("float32")
    y = (rng.random((8, 1)) > 0.5).astype("float32")

    def fit(metrics, **kwargs):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid",
                                                                        name="out")])
        model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=metrics, **kwargs)
        history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, validation_data=(x, y))
        return sorted(history.history)

    def myMetric(y_true, y_pred):              # noqa: N802 (Keras logs it as "my_metric")
        return keras.losses.mean_absolute_error(y_true, y_pred)

    out = {"first": fit([keras.metrics.Precision()]),
           "second": fit([keras.metrics.Precision()]),
           "two": fit([keras.metrics.Precision(), keras.metrics.Recall(),
                       keras.metrics.Recall(), keras.metrics.AUC()]),
           "strings": fit(["precision", "auc", "mae", myMetric])}
    out["after"] = [keras.metrics.Precision().name, keras.metrics.AUC().name,
                    keras.metrics.Recall(name="kept").name, keras.metrics.Mean().name,
                    keras.metrics.MeanSquaredError().name,
                    keras.metrics.MeanMetricWrapper(myMetric).name]
    keras.backend.clear_session()
    out["cleared"] = [keras.metrics.Precision().name, keras.layers.Dense(1).name,
                      keras.layers.Dense(1).name, keras.backend.get_uid("dense"),
                      keras.backend.get_uid("nothing_yet")]
    keras.backend.clear_session()
    return out


@pytest.fixture(scope="module")
def keras_names():
    return metric_names(real_keras)


def test_metric_names_are_numbered_per_process_as_keras_numbers_them(keras_names):
    ours = metric_names(unrolled)
    assert keras_names["second"] == ["loss", "precision_1", "val_loss", "val_precision_1"]
    for key in keras_names:
        assert ours[key] == keras_names[key], key


# ---- keras.backend --------------------------------------------------------------------------
def test_backend_settings_read_as_keras_reads_them():
    for name in ("floatx", "epsilon", "image_data_format"):
        assert getattr(unrolled.backend, name)() == getattr(real_keras.backend, name)(), name
    assert unrolled.backend.backend() == "numpy"
    assert real_keras.backend.backend() == "tensorflow"
    for dtype in (None, "float64", np.float32, "int32", int, float, bool):
        assert (unrolled.backend.standardize_dtype(dtype)
                == real_keras.backend.standardize_dtype(dtype)), dtype
    assert unrolled.backend.is_keras_tensor(unrolled.Input((3,)))
    assert not unrolled.backend.is_keras_tensor(np.zeros(3))


def test_image_data_format_channels_first_is_refused_not_ignored():
    with pytest.raises(NotImplementedError, match="channels_first"):
        unrolled.backend.set_image_data_format("channels_first")
    unrolled.backend.set_image_data_format("channels_last")
    for keras in MODULES:
        with pytest.raises(ValueError, match="data_format"):
            keras.backend.set_image_data_format("channels_middle")


def with_floatx(keras, value):
    # Keras caches its global dtype policy from floatx() at the first layer built after a
    # session starts; it is put back afterwards so that later tests see float32 layers.
    from keras.src.backend.common import global_state
    policy = global_state.get_global_attribute("dtype_policy")
    global_state.set_global_attribute("dtype_policy", None)
    keras.backend.set_floatx(value)
    try:
        layer = keras.layers.Dense(2, name="d")
        out = np.asarray(layer(np.ones((1, 3), dtype="float32")))
        return np.asarray(layer.get_weights()[0]).dtype.name, out.dtype.name, \
            keras.backend.floatx()
    finally:
        keras.backend.set_floatx("float32")
        global_state.set_global_attribute("dtype_policy", policy)


def test_set_floatx_changes_what_new_layers_compute_in():
    theirs, ours = with_floatx(real_keras, "float64"), with_floatx(unrolled, "float64")
    assert ours == theirs == ("float64", "float64", "float64")
    assert unrolled.backend.floatx() == "float32"


def with_epsilon(keras, eps):
    """Numbers that read epsilon: crossentropy clipping, MaxNorm/UnitNorm, Dot(normalize)."""
    keras.backend.set_epsilon(eps)
    try:
        y = np.array([[1.0], [0.0], [1.0]], "float32")
        p = np.array([[0.0], [1.0], [0.5]], "float32")
        bce = float(keras.losses.BinaryCrossentropy()(y, p))
        w = np.array([[3e-3, 0.5], [4e-3, 2.0]], "float32")
        unit = np.asarray(keras.constraints.UnitNorm()(w))
        maxn = np.asarray(keras.constraints.MaxNorm(1.0)(w))
        a = np.array([[[1e-4, 0.0]]], "float32")
        b = np.array([[[0.3, 0.4]]], "float32")
        dot = np.asarray(keras.layers.Dot(axes=-1, normalize=True, name="dot")([a, b]))
        return bce, unit, maxn, dot, keras.backend.epsilon()
    finally:
        keras.backend.set_epsilon(1e-7)


@pytest.mark.parametrize("eps", [1e-3, 1e-7])
def test_set_epsilon_reaches_the_losses_constraints_and_dot(eps):
    theirs, ours = with_epsilon(real_keras, eps), with_epsilon(unrolled, eps)
    assert ours[-1] == theirs[-1] == eps
    for i, (got, want) in enumerate(zip(ours[:-1], theirs[:-1])):
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=str(i))
    assert unrolled.backend.epsilon() == 1e-7


def test_set_epsilon_reaches_batchnorm_masked_moments():
    x = np.random.default_rng(3).normal(size=(2, 3, 2)).astype("float32")
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)

    def run(keras):
        keras.backend.set_epsilon(0.5)
        try:
            layer = keras.layers.BatchNormalization(name="bn")
            return np.asarray(layer(x, training=True, mask=mask))
        finally:
            keras.backend.set_epsilon(1e-7)
    np.testing.assert_allclose(run(unrolled), run(real_keras), rtol=1e-5, atol=1e-6)


def test_auc_reads_epsilon_when_built():
    y = np.array([1, 0, 1, 0], "float32")
    p = np.array([1.005, 0.0, 0.4, 0.3], "float32")

    def run(keras, eps):
        keras.backend.set_epsilon(eps)
        try:
            metric = keras.metrics.AUC(thresholds=[0.9, 0.1, 0.35], name="auc")
        finally:
            keras.backend.set_epsilon(1e-7)
        metric.update_state(y, p)
        return float(metric.result()), np.asarray(metric.thresholds, dtype=np.float64)
    for eps in (1e-2, 1e-7):
        (ours, ours_t), (theirs, theirs_t) = run(unrolled, eps), run(real_keras, eps)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
        np.testing.assert_allclose(ours_t, theirs_t, rtol=1e-7, atol=0)
    assert run(unrolled, 1e-2)[1][-1] == 1.01            # the outer thresholds: 1 + eps


def test_a_backend_name_unrolled_lacks_says_what_it_has():
    assert hasattr(real_keras.backend, "result_type")
    with pytest.raises(AttributeError, match="has no attribute 'result_type'.*clear_session"):
        unrolled.backend.result_type


# ---- keras.random ---------------------------------------------------------------------------
def draws(keras):
    r = keras.random
    x = np.arange(1, 41, dtype="float32").reshape(8, 5)
    gen = r.SeedGenerator(7, name="g")
    out = {
        "normal": r.normal((3, 4), mean=2.0, stddev=0.5, seed=1),
        "normal64": r.normal((2,), dtype="float64", seed=1),
        "uniform": r.uniform((3, 4), minval=-1.0, maxval=3.0, seed=2),
        "randint": r.randint((50,), 2, 6, seed=3),
        "randint8": r.randint((4,), 0, 3, dtype="int8", seed=3),
        "truncated": r.truncated_normal((400,), mean=1.0, stddev=2.0, seed=4),
        "dropout": r.dropout(x, 0.5, seed=5),
        "dropout_rows": r.dropout(x, 0.4, noise_shape=(8, 1), seed=5),
        "shuffle": r.shuffle(x, seed=6),
        "shuffle1": r.shuffle(x, axis=1, seed=6),
        "gen_1": r.uniform((3,), seed=gen), "gen_2": r.uniform((3,), seed=gen),
        "again": r.normal((3, 4), mean=2.0, stddev=0.5, seed=1),
        "categorical": r.categorical(np.log([[0.5, 0.5, 1e-9], [1e-9, 1e-9, 1.0]]), 20, seed=8),
        "gamma": r.gamma((10,), 2.0, seed=9),
        "binomial": r.binomial((10,), 5, 0.5, seed=9),
        "beta": r.beta((10,), 2.0, 3.0, seed=9),
    }
    out = {k: np.asarray(v) for k, v in out.items()}
    out["state"] = np.asarray(gen.state.value if hasattr(gen.state, "value") else gen.state)
    out["gen_name"] = gen.name
    errors = []
    for call in (lambda: r.uniform((2,), dtype="int32"), lambda: r.randint((2,), 0, 3,
                                                                         dtype="float32"),
                 lambda: r.normal((2,), seed="one")):
        with pytest.raises(ValueError) as e:
            call()
        errors.append(str(e.value).split(".")[0])
    out["errors"] = errors
    return out


@pytest.fixture(scope="module")
def keras_draws():
    return draws(real_keras)


def test_random_functions_have_keras_shapes_dtypes_and_seed_semantics(keras_draws):
    ours = draws(unrolled)
    assert ours["errors"] == keras_draws["errors"]
    assert ours["gen_name"] == keras_draws["gen_name"] == "g"
    np.testing.assert_array_equal(ours["state"].astype(np.int64), keras_draws["state"])
    for key, want in keras_draws.items():
        if isinstance(want, np.ndarray) and key != "state":     # TensorFlow keeps it in int64
            assert ours[key].shape == want.shape and ours[key].dtype == want.dtype, key
    for draws_ in (ours, keras_draws):
        np.testing.assert_array_equal(draws_["again"], draws_["normal"])     # an int seed repeats
        assert not np.array_equal(draws_["gen_1"], draws_["gen_2"])          # a generator advances
        assert draws_["randint"].min() >= 2 and draws_["randint"].max() <= 5
        assert np.all(np.abs(draws_["truncated"] - 1.0) <= 4.0 + 1e-5)
        assert np.all((draws_["uniform"] >= -1) & (draws_["uniform"] < 3))
        x = np.arange(1, 41, dtype="float32").reshape(8, 5)
        kept = draws_["dropout"] != 0
        np.testing.assert_allclose(draws_["dropout"][kept], x[kept] / 0.5, rtol=1e-6)
        rows = draws_["dropout_rows"] != 0                     # whole rows kept or dropped
        assert np.all(rows.all(axis=1) | ~rows.any(axis=1))
        np.testing.assert_allclose(draws_["dropout_rows"][rows], x[rows] / 0.6, rtol=1e-6)
        assert sorted(map(tuple, draws_["shuffle"])) == sorted(map(tuple, x))     # rows move whole
        assert sorted(map(tuple, draws_["shuffle1"].T)) == sorted(map(tuple, x.T))
        assert set(draws_["categorical"][0]) <= {0, 1} and set(draws_["categorical"][1]) == {2}
        assert np.all(draws_["gamma"] > 0) and np.all((draws_["beta"] > 0) & (draws_["beta"] < 1))
        assert set(np.unique(draws_["binomial"])) <= set(range(6))


def test_random_moments_match_keras():
    for fn, args in (("normal", dict(mean=2.0, stddev=0.5)), ("uniform", dict(minval=-1.0,
                                                                                maxval=3.0)),
                     ("truncated_normal", dict(mean=1.0, stddev=2.0))):
        theirs = np.asarray(getattr(real_keras.random, fn)((20000,), seed=11, **args))
        ours = getattr(unrolled.random, fn)((20000,), seed=11, **args)
        # 20000 draws: the means agree within ~5 standard errors, the spreads within 5%
        assert abs(ours.mean() - theirs.mean()) < 5 * theirs.std() / np.sqrt(10000), fn
        np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.05, err_msg=fn)


def test_unseeded_draws_follow_set_random_seed():
    unrolled.utils.set_random_seed(5)
    a = unrolled.random.normal((4,))
    unrolled.utils.set_random_seed(5)
    np.testing.assert_array_equal(unrolled.random.normal((4,)), a)
    assert not np.array_equal(unrolled.random.normal((4,)), a)


# ---- keras.saving ---------------------------------------------------------------------------
def registry(keras, package):
    saving = keras.saving

    @saving.register_keras_serializable(package=package)
    class Scale:
        def __init__(self, factor):
            self.factor = factor

        def get_config(self):
            return {"factor": self.factor}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    @saving.register_keras_serializable(package=package, name="twice")
    def double(x):
        return 2 * x

    with pytest.raises(ValueError) as missing:
        saving.register_keras_serializable(package=package)(type("NoConfig", (), {}))
    config = saving.serialize_keras_object(Scale(3))
    back = saving.deserialize_keras_object(config)
    with saving.custom_object_scope({"Scaled": Scale}):
        scoped = saving.get_registered_object("Scaled")
    return {"name": saving.get_registered_name(Scale),
            "fn_name": saving.get_registered_name(double),
            "object": saving.get_registered_object(f"{package}>Scale") is Scale,
            "fn": saving.get_registered_object(f"{package}>twice") is double,
            "listed": f"{package}>Scale" in saving.get_custom_objects(),
            "unregistered": saving.get_registered_name(np.ndarray),
            "missing": str(missing.value),
            "config": {**config, "registered_name": config["registered_name"].split(">")[1]},
            "back": (type(back) is Scale, back.factor),
            "fn_back": saving.deserialize_keras_object(saving.serialize_keras_object(double))(4),
            "scoped": scoped is Scale, "after_scope": saving.get_registered_object("Scaled"),
            "none": saving.get_registered_object("nothing>here")}


def test_register_keras_serializable_and_the_registry_as_keras():
    assert registry(unrolled, "ours") == {**registry(real_keras, "theirs"),
                                          **{"name": "ours>Scale", "fn_name": "ours>twice"}}
    config = unrolled.saving.serialize_keras_object(unrolled.saving.get_registered_object(
        "ours>Scale")(2))
    assert config["registered_name"] == "ours>Scale"


def library_objects(keras):
    return [keras.optimizers.Adam(learning_rate=0.01, name="adam"),
            keras.optimizers.SGD(momentum=0.9, name="sgd"),
            keras.optimizers.RMSprop(name="rmsprop"), keras.losses.MeanSquaredError(),
            keras.losses.BinaryCrossentropy(from_logits=True), keras.regularizers.L2(0.01),
            keras.constraints.MaxNorm(2.0), keras.initializers.GlorotUniform(seed=1),
            keras.initializers.Orthogonal(gain=2.0), keras.activations.get("tanh"),
            keras.metrics.MeanAbsoluteError(), keras.metrics.Precision(name="p"),
            keras.layers.Dense(3, activation="relu", name="dense_a"),
            keras.layers.LSTM(4, return_sequences=True, name="lstm_a"),
            keras.layers.GRU(2, reset_after=False, go_backwards=True, name="gru_a"),
            keras.layers.Embedding(10, 3, mask_zero=True, name="emb_a")]


PLAIN = [None, 3, "x", (1, [2.5, "x"]), {"a": None, "b": b"bytes"}, np.float32(1.5),
         np.arange(3, dtype="int32")]


def test_serialize_keras_object_is_read_by_keras_and_the_other_way():
    ser_k = real_keras.saving.serialize_keras_object
    de_k = real_keras.saving.deserialize_keras_object
    ser_u = unrolled.saving.serialize_keras_object
    de_u = unrolled.saving.deserialize_keras_object
    for theirs, ours in zip(library_objects(real_keras), library_objects(unrolled)):
        want = ser_k(theirs)
        # ours, read by Keras, is Keras's own object; Keras's, read by us, writes back as ours
        assert ser_k(de_k(ser_u(ours))) == want
        assert ser_u(de_u(want)) == ser_u(ours)
    for value in PLAIN:
        config = ser_k(value)
        assert ser_u(value) == config
        back, want = de_u(config), de_k(config)
        assert type(back) is type(want) and str(back) == str(want)


def test_a_serialized_layer_keeps_its_numbers_both_ways(rng):
    layer = unrolled.layers.GRU(3, return_sequences=True, name="gru_b")
    x = rng.normal(size=(2, 4, 5)).astype("float32")
    ours = layer(x)
    theirs = real_keras.saving.deserialize_keras_object(
        unrolled.saving.serialize_keras_object(layer))
    theirs.build((None, 4, 5))
    theirs.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(theirs(x)), ours, rtol=1e-6, atol=1e-6)
    built = real_keras.layers.Dense(2, name="dense_b")
    built.build((None, 5))
    back = unrolled.saving.deserialize_keras_object(
        real_keras.saving.serialize_keras_object(built))
    assert back.built and [w.shape for w in back.get_weights()] == [(5, 2), (2,)]


def test_configs_name_nothing_that_is_imported():
    assert "this" not in sys.modules
    for config in ({"module": "this", "class_name": "Anything", "config": {},
                    "registered_name": None},
                   {"module": "keras.layers", "class_name": "Lambda", "config": {"function": {}},
                    "registered_name": None}):
        with pytest.raises((TypeError, ValueError)):
            unrolled.saving.deserialize_keras_object(config)
    assert "this" not in sys.modules
    lam = {"class_name": "__lambda__", "config": {"value": "AAAA"}}
    with pytest.raises(ValueError, match="lambda"):
        unrolled.saving.deserialize_keras_object(lam)
    with pytest.raises(NotImplementedError, match="safe_mode"):
        unrolled.saving.deserialize_keras_object(lam, safe_mode=False)


def small_model(keras):
    model = keras.Sequential([keras.Input((4, 2)), keras.layers.LSTM(3, name="lstm_s"),
                              keras.layers.Dense(1, name="dense_s")])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_save_and_load_model_through_keras_saving(tmp_path, rng):
    x = rng.normal(size=(3, 4, 2)).astype("float32")
    ours = small_model(unrolled)
    unrolled.saving.save_model(ours, tmp_path / "ours.keras")
    theirs = real_keras.saving.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)),
                               ours.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    real_keras.saving.save_model(theirs, tmp_path / "theirs.keras")
    back = unrolled.saving.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), ours.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
    unrolled.saving.save_weights(ours, tmp_path / "w.weights.h5")
    unrolled.saving.load_weights(theirs, tmp_path / "w.weights.h5")
    for keras, model in ((real_keras, theirs), (unrolled, ours)):
        with pytest.raises(ValueError, match=r"argument\(s\) are not supported: \['colour'\]"):
            keras.saving.save_model(model, tmp_path / "x.keras", colour="red")


def test_overwrite_false_asks_as_keras_asks(tmp_path, monkeypatch):
    answers = []
    monkeypatch.setattr("builtins.input", lambda prompt: answers.append(prompt) or "n")
    for keras in MODULES:
        path = tmp_path / f"{keras.__name__}.keras"
        model = small_model(keras)
        keras.saving.save_model(model, path)
        size = path.stat().st_size
        path.write_bytes(b"keep")
        keras.saving.save_model(model, path, overwrite=False)
        assert path.read_bytes() == b"keep" and size > 4
    assert len(answers) == 2 and answers[0] == answers[1].replace("unrolled", "keras")


def test_what_unrolled_saving_cannot_do_is_refused(tmp_path):
    model = small_model(unrolled)
    with pytest.raises(NotImplementedError, match="zipped=False"):
        unrolled.saving.save_model(model, tmp_path / "m.keras", zipped=False)
    unrolled.saving.save_model(model, tmp_path / "m.h5", include_optimizer=False)  # honoured
    assert not unrolled.saving.load_model(tmp_path / "m.h5").compiled
    with pytest.raises(NotImplementedError, match="max_shard_size"):
        unrolled.saving.save_weights(model, tmp_path / "m.weights.h5", max_shard_size=1)
    with pytest.raises(TypeError, match="cannot serialize"):
        unrolled.saving.serialize_keras_object(object())
    assert hasattr(real_keras.saving, "KerasFileEditor")
    with pytest.raises(AttributeError, match="KerasFileEditor.*load_model"):
        unrolled.saving.KerasFileEditor


# ---- keras.datasets -------------------------------------------------------------------------
def test_datasets_are_named_but_refused_with_what_to_do_instead():
    from unrolled.datasets import imdb, mnist
    for name in ("imdb", "reuters", "mnist", "fashion_mnist", "cifar10", "cifar100",
                 "boston_housing", "california_housing"):
        assert hasattr(real_keras.datasets, name) and hasattr(unrolled.datasets, name)
    with pytest.raises(NotImplementedError, match=r"no network.*allow_pickle=False"):
        imdb.load_data(num_words=10000)
    with pytest.raises(NotImplementedError, match="get_word_index"):
        imdb.get_word_index()
    with pytest.raises(NotImplementedError, match="mnist"):
        mnist.load_data()
    with pytest.raises(AttributeError, match="no attribute 'svhn'"):
        unrolled.datasets.svhn


def test_keras_utils_holds_the_registry_and_clear_session_too():
    for name in ("clear_session", "register_keras_serializable", "get_custom_objects",
                 "get_registered_name", "get_registered_object", "custom_object_scope",
                 "CustomObjectScope", "serialize_keras_object", "deserialize_keras_object"):
        home = "backend" if name == "clear_session" else "saving"
        assert getattr(real_keras.utils, name) is getattr(getattr(real_keras, home), name)
        assert getattr(unrolled.utils, name) is getattr(getattr(unrolled, home), name), name


def test_set_random_seed_seeds_python_and_numpy_as_keras_does():
    """Scripts call keras.utils.set_random_seed, then draw their data with random/np.random:
    the same draws after unrolled's."""
    import random
    draws = []
    for mod in (real_keras, unrolled):
        mod.utils.set_random_seed(1234)
        draws.append((random.random(), np.random.rand(3).tolist()))
    assert draws[0] == draws[1]
