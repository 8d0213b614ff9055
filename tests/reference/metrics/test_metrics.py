"""Metrics against keras.metrics, and the loss/accuracy logging of Keras's fit."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras.src.trainers import compile_utils  # noqa: E402

from unrolled import metrics  # noqa: E402

CASES = [
    ("mse", metrics.MeanSquaredError, keras.metrics.MeanSquaredError, "real"),
    ("mae", metrics.MeanAbsoluteError, keras.metrics.MeanAbsoluteError, "real"),
    ("accuracy", metrics.Accuracy, keras.metrics.Accuracy, "int"),
    ("binary_accuracy", metrics.BinaryAccuracy, keras.metrics.BinaryAccuracy, "binary"),
    ("categorical_accuracy", metrics.CategoricalAccuracy, keras.metrics.CategoricalAccuracy,
     "onehot"),
    ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy,
     keras.metrics.SparseCategoricalAccuracy, "sparse"),
    # issue 20.14
    ("rmse", metrics.RootMeanSquaredError, keras.metrics.RootMeanSquaredError, "real"),
    ("mape", metrics.MeanAbsolutePercentageError, keras.metrics.MeanAbsolutePercentageError,
     "real"),
    ("msle", metrics.MeanSquaredLogarithmicError, keras.metrics.MeanSquaredLogarithmicError,
     "binary"),
    ("logcosh", metrics.LogCoshError, keras.metrics.LogCoshError, "real"),
    ("cosine", metrics.CosineSimilarity, keras.metrics.CosineSimilarity, "real"),
    ("poisson", metrics.Poisson, keras.metrics.Poisson, "binary"),
    ("kl_divergence", metrics.KLDivergence, keras.metrics.KLDivergence, "onehot"),
    ("hinge", metrics.Hinge, keras.metrics.Hinge, "binary"),
    ("squared_hinge", metrics.SquaredHinge, keras.metrics.SquaredHinge, "binary"),
]


def batch(kind, shape, rng):
    y_pred = rng.uniform(size=shape).astype("float32")
    if kind == "real":
        y_true = rng.normal(size=shape).astype("float32")
    elif kind == "int":
        y_true = rng.integers(0, 2, shape).astype("float32")
        y_pred = rng.integers(0, 2, shape).astype("float32")
    elif kind == "binary":
        y_true = rng.integers(0, 2, shape).astype("float32")
    elif kind == "onehot":
        y_true = np.eye(shape[-1], dtype="float32")[rng.integers(0, shape[-1], shape[:-1])]
    else:
        y_true = rng.integers(0, shape[-1], shape[:-1])
    return y_true, y_pred


def weights(shape, rng, which):
    n = shape[0]
    return {"none": None,
            "per_sample": rng.uniform(0, 2, n).astype("float32"),
            "per_sample_col": rng.uniform(0, 2, (n, 1)).astype("float32"),
            "per_value": rng.uniform(0, 2, shape[:-1]).astype("float32")}[which]


WEIGHTINGS = [((7, 3), w) for w in ("none", "per_sample", "per_value")] + [
    ((4, 5, 3), w) for w in ("none", "per_sample", "per_sample_col", "per_value")]


@pytest.mark.parametrize("shape, which", WEIGHTINGS, ids=[f"{len(s)}d-{w}" for s, w in WEIGHTINGS])
@pytest.mark.parametrize("name, ours, theirs, kind", CASES, ids=[c[0] for c in CASES])
def test_matches_keras_over_batches(name, ours, theirs, kind, shape, which):
    rng = np.random.default_rng(0)
    mine, keras_metric = ours(), theirs()
    assert mine.name == keras_metric.name
    for _ in range(3):
        y_true, y_pred = batch(kind, shape, rng)
        sw = weights(shape, rng, which)
        mine.update_state(y_true, y_pred, sample_weight=sw)
        keras_metric.update_state(y_true, y_pred, sample_weight=sw)
        np.testing.assert_allclose(mine.result(), float(keras_metric.result()), rtol=1e-6)
    mine.reset_state()
    assert mine.result() == 0.0


def test_mean_with_weights_matches_keras():
    rng = np.random.default_rng(1)
    mine, theirs = metrics.Mean(), keras.metrics.Mean()
    for shape, sw_shape in [((5,), (5,)), ((4, 3), (4,)), ((4, 3), (4, 3)), ((), ())]:
        values = rng.normal(size=shape).astype("float32")
        sw = rng.uniform(size=sw_shape).astype("float32")
        mine.update_state(values, sample_weight=sw)
        theirs.update_state(values, sample_weight=sw)
        mine.update_state(values)
        theirs.update_state(values)
        np.testing.assert_allclose(mine.result(), float(theirs.result()), rtol=1e-6)


def test_binary_accuracy_threshold():
    y_true = np.array([[1.0], [0.0], [1.0]], "float32")
    y_pred = np.array([[0.8], [0.75], [0.6]], "float32")
    mine, theirs = metrics.BinaryAccuracy(threshold=0.7), keras.metrics.BinaryAccuracy(
        threshold=0.7)
    mine.update_state(y_true, y_pred)
    theirs.update_state(y_true, y_pred)
    assert mine.result() == float(theirs.result()) == pytest.approx(1 / 3)


def test_masked_update_matches_keras():
    rng = np.random.default_rng(2)
    y_true, y_pred = batch("real", (3, 4, 2), rng)
    mask = rng.uniform(size=(3, 4)) > 0.3
    sw = rng.uniform(size=3).astype("float32")
    import tensorflow as tf
    from keras.src.backend import set_keras_mask

    pred = tf.constant(y_pred)
    set_keras_mask(pred, tf.constant(mask))
    theirs = keras.metrics.MeanSquaredError()
    theirs.update_state(y_true, pred, sample_weight=sw[:, None])
    mine = metrics.MeanSquaredError()
    mine.update_state(y_true, y_pred, sample_weight=sw[:, None], mask=mask)
    np.testing.assert_allclose(mine.result(), float(theirs.result()), rtol=1e-6)


@pytest.mark.parametrize("identifier", ["accuracy", "acc", "Accuracy", "mse", "mae"])
@pytest.mark.parametrize("y_true_shape, y_pred_shape", [
    ((8, 1), (8, 1)), ((8,), (8, 1)), ((8,), (8, 4)), ((8, 1), (8, 4)), ((8, 4), (8, 4)),
    ((8, 5), (8, 5, 4)), ((8, 5, 4), (8, 5, 4)), ((8, 5, 1), (8, 5, 1)),
])
def test_for_compile_resolves_like_keras(identifier, y_true_shape, y_pred_shape):
    keras_metric = compile_utils.get_metric(identifier, np.zeros(y_true_shape),
                                            np.zeros(y_pred_shape))
    mine = metrics.for_compile(identifier, y_true_shape, y_pred_shape)
    assert type(mine).__name__ == type(keras_metric).__name__
    assert mine.name == keras_metric.name == identifier


def test_metric_instance_keeps_its_name():
    m = metrics.MeanAbsoluteError(name="my_mae")
    assert metrics.for_compile(m, (4, 1), (4, 1)) is m and m.name == "my_mae"


@pytest.mark.parametrize("with_weights", [False, True])
def test_loss_tracker_and_accuracy_reproduce_keras_history(with_weights):
    """With a zero learning rate every batch sees the same weights, so the History of a
    real Keras fit can be rebuilt from per-batch losses, weighted by batch size.
    ``metrics`` ignore sample_weight; ``weighted_metrics`` use it."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(23, 4)).astype("float32")
    y = rng.integers(0, 3, (23,))
    sw = rng.uniform(0, 2, 23).astype("float32") if with_weights else None
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], weighted_metrics=["accuracy"])
    history = model.fit(x, y, sample_weight=sw, batch_size=5, epochs=2, shuffle=False,
                        verbose=0).history
    assert set(history) == {"loss", "accuracy", "weighted_accuracy"}

    from unrolled.losses import SparseCategoricalCrossentropy
    logits = model.predict(x, verbose=0)
    tracker = metrics.loss_tracker()
    accuracy = metrics.for_compile("accuracy", y.shape, logits.shape)
    weighted = metrics.for_compile("accuracy", y.shape, logits.shape)
    loss = SparseCategoricalCrossentropy(from_logits=True)
    for start in range(0, 23, 5):
        part = slice(start, start + 5)
        w = None if sw is None else sw[part]
        tracker.update_state(loss(y[part], logits[part], sample_weight=w),
                             sample_weight=len(x[part]))
        accuracy.update_state(y[part], logits[part])
        weighted.update_state(y[part], logits[part], sample_weight=w)
    assert tracker.name == "loss" and accuracy.name == "accuracy"
    np.testing.assert_allclose(history["loss"][-1], tracker.result(), rtol=1e-6)
    np.testing.assert_allclose(history["accuracy"][-1], accuracy.result(), rtol=1e-6)
    np.testing.assert_allclose(history["weighted_accuracy"][-1], weighted.result(), rtol=1e-6)


def test_get():
    assert isinstance(metrics.get("mse"), metrics.MeanSquaredError)
    assert isinstance(metrics.get("accuracy"), metrics.Accuracy)
    assert isinstance(metrics.get("SparseCategoricalAccuracy"), metrics.SparseCategoricalAccuracy)
    m = metrics.BinaryAccuracy()
    assert metrics.get(m) is m
    wrapped = metrics.get(lambda t, p: np.abs(t - p).max(axis=-1))
    wrapped.update_state(np.zeros((2, 2)), np.ones((2, 2)))
    assert wrapped.result() == 1.0
    with pytest.raises(ValueError, match="binary_accuracy") as info:
        metrics.get("acc")
    assert "mean_absolute_error" in str(info.value)
    with pytest.raises(TypeError):
        metrics.get(3.5)


def test_new_losses_and_metrics_in_a_fit_equal_keras():
    """issue 20.14: compile(loss="log_cosh", metrics=["mape", RootMeanSquaredError(), "msle"])
    logs Keras's keys and numbers over two epochs."""
    import unrolled
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4, 3)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")

    def run(m, start=None):
        model = m.Sequential([m.Input((4, 3)), m.layers.GRU(3), m.layers.Dense(2)])
        model.compile(loss="log_cosh", optimizer="adam",
                      metrics=["mape", m.metrics.RootMeanSquaredError(), "msle"])
        if start is not None:
            model.set_weights(start)
        return model.get_weights(), model.fit(x, y, epochs=2, batch_size=8, shuffle=False,
                                              verbose=0).history
    start, want = run(keras)
    _, got = run(unrolled, start)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=key)


@pytest.mark.parametrize("cls", ["Precision", "Recall"])
@pytest.mark.parametrize("thresholds", [None, 0.3, [0.7]])
@pytest.mark.parametrize("shape", [(12,), (12, 1), (12, 3), (6, 4, 2)])
def test_precision_and_recall_match_keras_over_weighted_batches(cls, thresholds, shape):
    rng = np.random.default_rng(len(shape) * 7 + (thresholds is None))
    ours = getattr(metrics, cls)(thresholds=thresholds)
    theirs = getattr(keras.metrics, cls)(thresholds=thresholds)
    for batch in range(3):
        y_true = (rng.random(shape) > 0.5).astype("float32")
        y_pred = rng.random(shape).astype("float32")
        weight = rng.uniform(0, 2, shape[0]).astype("float32") if batch else None
        if weight is not None and len(shape) == 3:        # Keras takes no (N,) weights there
            with pytest.raises(ValueError, match="does not broadcast"):
                ours.update_state(y_true, y_pred, sample_weight=weight)
            weight = rng.uniform(0, 2, shape).astype("float32")
        ours.update_state(y_true, y_pred, sample_weight=weight)
        theirs.update_state(y_true, y_pred, sample_weight=weight)
        np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-6)
    ours.reset_state()
    assert ours.result() == 0.0                                 # divide_no_nan, as Keras
    with pytest.raises(NotImplementedError, match="top_k"):
        getattr(metrics, cls)(top_k=2)
    with pytest.raises(NotImplementedError, match="several thresholds"):
        getattr(metrics, cls)(thresholds=[0.3, 0.6])


def test_precision_and_recall_in_fit_equal_keras_and_ignore_the_output_mask():
    """Keras 3 weighs only MeanMetricWrapper metrics by an output mask: Precision and
    Recall count the masked steps too (checked here against Keras, with mask_zero)."""
    import unrolled
    rng = np.random.default_rng(5)

    def build(m):
        return m.Sequential([m.Input((7,), dtype="int32"),
                             m.layers.Embedding(20, 4, mask_zero=True),
                             m.layers.LSTM(3, return_sequences=True),
                             m.layers.Dense(2, activation="sigmoid")])
    theirs, ours = build(keras), build(unrolled)
    ours.set_weights(theirs.get_weights())
    x = rng.integers(0, 20, (16, 7)).astype("int32")
    x[:5, 4:] = 0
    y = (rng.random((16, 7, 2)) > 0.5).astype("float32")
    for mod, model in ((keras, theirs), (unrolled, ours)):
        model.compile(optimizer=mod.optimizers.Adam(0.05), loss="binary_crossentropy",
                      metrics=[mod.metrics.Precision(name="p"),
                               mod.metrics.Recall(thresholds=0.6, name="r"), "accuracy"])
    want = theirs.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    got = ours.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=2e-5, err_msg=key)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("shape", [(10, 6), (4, 3, 6)])
def test_top_k_accuracies_match_keras_with_ties(k, shape):
    rng = np.random.default_rng(k + len(shape))
    pairs = [(metrics.TopKCategoricalAccuracy(k=k), keras.metrics.TopKCategoricalAccuracy(k=k),
              "onehot"),
             (metrics.SparseTopKCategoricalAccuracy(k=k),
              keras.metrics.SparseTopKCategoricalAccuracy(k=k), "sparse")]
    for ours, theirs, kind in pairs:
        for _ in range(3):
            y_pred = np.round(rng.random(shape), 1).astype("float32")   # many ties
            labels = rng.integers(0, shape[-1], shape[:-1])
            y_true = np.eye(shape[-1], dtype="float32")[labels] if kind == "onehot" else labels
            ours.update_state(y_true, y_pred)
            theirs.update_state(y_true, y_pred)
            np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-6)
    assert metrics.get("top_k_categorical_accuracy").k == 5
    with pytest.raises(NotImplementedError, match="from_sorted_ids"):
        metrics.SparseTopKCategoricalAccuracy(from_sorted_ids=True)


def test_a_metric_given_twice_logs_twice_as_keras_numbers_it():
    """metrics=["mae", "mae", "mse"]: Keras logs mae, mae_1 and mse (CompileMetrics.result);
    the second "mae" was dropped from the logs before."""
    import unrolled
    x = np.random.default_rng(3).standard_normal((8, 5, 2)).astype("float32")
    y = np.random.default_rng(4).standard_normal((8, 1)).astype("float32")
    histories = []
    for mod in (keras, unrolled):
        model = mod.Sequential([mod.Input((5, 2)), mod.layers.GRU(3, name="gru"),
                                mod.layers.Dense(1, name="out")])
        if histories:
            model.set_weights(weights)
        weights = model.get_weights()
        model.compile(optimizer=mod.optimizers.SGD(0.1), loss="mse",
                      metrics=["mae", "mae", "mse", "mae"])
        histories.append(model.fit(x, y, epochs=2, batch_size=4, shuffle=False,
                                   validation_data=(x, y), verbose=0).history)
        histories.append(model.evaluate(x, y, verbose=0, return_dict=True))
    want_fit, want_eval, got_fit, got_eval = histories
    assert list(got_fit) == list(want_fit)            # sorted, as Keras's logs are
    assert "mae_2" in got_fit and "val_mae_1" in got_fit
    for key in want_fit:
        np.testing.assert_allclose(got_fit[key], want_fit[key], rtol=1e-5, err_msg=key)
    assert list(got_eval) == list(want_eval)
    np.testing.assert_allclose(list(got_eval.values()), list(want_eval.values()), rtol=1e-5)


def test_logs_are_sorted_as_keras_sorts_them_and_lists_keep_compile_order():
    """Keras 3's History, return_dict and callback logs have sorted keys (accuracy before
    loss); evaluate's list is the loss, then the metrics in compile order."""
    import unrolled
    x = np.random.default_rng(3).standard_normal((8, 5, 2)).astype("float32")
    y = (np.random.default_rng(4).standard_normal((8, 1)) > 0).astype("float32")
    seen = []
    results = []
    for mod in (keras, unrolled):
        model = mod.Sequential([mod.Input((5, 2)), mod.layers.GRU(3, name="gru"),
                                mod.layers.Dense(1, activation="sigmoid", name="out")])
        if results:
            model.set_weights(weights)
        weights = model.get_weights()
        model.compile(optimizer=mod.optimizers.SGD(0.1), loss="binary_crossentropy",
                      metrics=["mse", "accuracy", "mae"])
        logged = mod.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: seen.append(list(logs)))
        history = model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0,
                            validation_data=(x, y), callbacks=[logged]).history
        results.append((list(history), list(model.evaluate(x, y, verbose=0, return_dict=True)),
                        model.evaluate(x, y, verbose=0), seen[-1]))
    (want_keys, want_dict, want_list, want_batch), (got_keys, got_dict, got_list, got_batch) = results
    assert got_keys == want_keys == ["accuracy", "loss", "mae", "mse", "val_accuracy",
                                     "val_loss", "val_mae", "val_mse"]
    assert got_dict == want_dict and got_batch == want_batch
    np.testing.assert_allclose(got_list, want_list, rtol=1e-5)       # loss, mse, accuracy, mae
