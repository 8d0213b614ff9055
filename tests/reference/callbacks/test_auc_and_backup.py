"""The AUC metric and the BackupAndRestore callback against real Keras 3."""
import json
import os
import shutil

import numpy as np
import pytest
from keras_ref import keras

import unrolled
from unrolled import metrics
from unrolled.models import load_model

# ---------------------------------------------------------------- AUC

AUC_CASES = [
    dict(),
    dict(curve="PR"),
    dict(summation_method="minoring"),
    dict(summation_method="majoring"),
    dict(curve="PR", summation_method="minoring"),
    dict(curve="PR", summation_method="majoring"),
    dict(num_thresholds=7),
    dict(num_thresholds=50, curve="PR"),
    dict(thresholds=[0.25, 0.5, 0.75]),                    # evenly spaced: the fast path
    dict(thresholds=[0.9, 0.1, 0.3, 0.35, 0.6]),           # uneven: threshold by threshold
    dict(thresholds=[0.2, 0.4, 0.7], curve="PR"),
    dict(from_logits=True),
    dict(from_logits=True, curve="PR", num_thresholds=20),
]


def _batches(rng, logits, shape=(12,)):
    """3 batches with ties, exact 0 and 1 (and outside [0, 1] for logits), labels 0/1."""
    out = []
    for _ in range(3):
        p = rng.uniform(-0.2, 1.2, shape).astype("float32")
        p.reshape(-1)[:4] = [0.0, 1.0, 0.5, 0.5]
        if logits:
            p = rng.normal(0, 3, shape).astype("float32")
        y = (rng.uniform(size=shape) < 0.5).astype("float32")
        out.append((y, p, rng.uniform(0.2, 2.0, shape[:1]).astype("float32")))
    return out


@pytest.mark.parametrize("kwargs", AUC_CASES, ids=str)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("shape", [(12,), (10, 3)], ids=["1d", "2d"])
def test_auc_update_state_and_result_equal_keras(kwargs, weighted, shape, rng):
    ours, theirs = metrics.AUC(**kwargs), keras.metrics.AUC(**kwargs)
    for y, p, w in _batches(rng, kwargs.get("from_logits", False), shape):
        sw = w if weighted else None
        ours.update_state(y, p, sample_weight=sw)
        theirs.update_state(y, p, sample_weight=sw)
        assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-5, abs=1e-7)
    for name in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name).numpy(),
                                   rtol=1e-6, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(ours.thresholds, theirs.thresholds, rtol=1e-12)
    ours.reset_state()
    assert ours.result() == 0.0 and not ours.true_positives.any()


def test_auc_is_not_trivially_equal_across_curves(rng):
    """The curves and summations give different numbers on the same data (so the
    parametrized test distinguishes them)."""
    y, p, _ = _batches(rng, False)[0]
    values = set()
    for kwargs in AUC_CASES[:6]:
        m = metrics.AUC(**kwargs)
        m.update_state(y, p)
        values.add(round(m.result(), 6))
    assert len(values) == 6


def test_auc_config_and_refusals_like_keras():
    for kwargs in ({}, {"curve": "PR", "summation_method": "majoring", "num_thresholds": 9},
                   {"thresholds": [0.3, 0.1]}, {"from_logits": True}):
        ours = metrics.AUC(name="auc", **kwargs)
        theirs = keras.metrics.AUC(name="auc", **kwargs)
        assert ours.get_config() == theirs.get_config()
        assert metrics.AUC(**theirs.get_config()).get_config() == theirs.get_config()
    unrolled.backend.clear_session()                 # automatic names count per process
    keras.backend.clear_session()
    assert metrics.AUC().name == keras.metrics.AUC().name == "auc"
    assert metrics.AUC().name == keras.metrics.AUC().name == "auc_1"
    assert isinstance(metrics.get("auc"), metrics.AUC)
    assert unrolled.metrics.AUC is metrics.AUC
    for bad in ({"multi_label": True}, {"label_weights": [1.0, 2.0]},
                {"curve": "PRGAIN"}):
        with pytest.raises(NotImplementedError, match=next(iter(bad))):
            metrics.AUC(**bad)
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="area")


def _classifier(m):
    if m is keras:
        keras.utils.set_random_seed(2)
    inp = m.Input((6, 3))
    h = m.layers.GRU(5)(inp)
    return m.Model(inp, m.layers.Dense(1, activation="sigmoid")(h))


def _auc_metrics(m):
    return [m.metrics.AUC(name="auc"), m.metrics.AUC(curve="PR", name="pr_auc"),
            m.metrics.AUC(num_thresholds=50, summation_method="minoring", name="roc_min"),
            m.metrics.AUC(curve="PR", summation_method="majoring", name="pr_maj")]


def test_auc_in_a_three_epoch_fit_and_evaluate_equals_keras(rng):
    x = rng.standard_normal((40, 6, 3)).astype("float32")
    y = (x[:, :, 0].mean(axis=1) + 0.3 * rng.standard_normal(40) > 0).astype("float32")
    sw = rng.uniform(0.5, 2.0, 40).astype("float32")
    theirs, ours = _classifier(keras), _classifier(unrolled)
    ours.set_weights(theirs.get_weights())
    theirs.compile(keras.optimizers.Adam(0.02), "binary_crossentropy", metrics=_auc_metrics(keras))
    ours.compile(unrolled.optimizers.Adam(0.02), "binary_crossentropy",
                 metrics=_auc_metrics(unrolled))
    kw = dict(epochs=3, batch_size=16, shuffle=False, verbose=0, sample_weight=sw,
              validation_data=(x[:24], y[:24]))
    want = theirs.fit(x, y, **kw).history
    got = ours.fit(x, y, **kw).history
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=key)
    assert len(set(np.round(got["pr_auc"], 5)) | set(np.round(got["auc"], 5))) > 3
    want_eval = theirs.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    got_eval = ours.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert set(got_eval) == set(want_eval)
    for key in want_eval:
        assert got_eval[key] == pytest.approx(want_eval[key], rel=1e-5), key


def test_a_keras_file_with_auc_compiles_in_unrolled_and_back(rng, tmp_path):
    theirs = _classifier(keras)
    k_auc = keras.metrics.AUC(curve="PR", num_thresholds=30, name="pr")
    theirs.compile("adam", "binary_crossentropy", metrics=[k_auc])
    x = rng.standard_normal((8, 6, 3)).astype("float32")
    y = (rng.uniform(size=8) < 0.5).astype("float32")
    theirs.fit(x, y, epochs=1, verbose=0)          # so that the optimizer has its state
    theirs.save(tmp_path / "k.keras")
    ours = load_model(tmp_path / "k.keras")
    assert ours.compiled and ours.optimizer.iterations == 1
    (auc,) = ours._metric_ids
    assert isinstance(auc, metrics.AUC) and auc.get_config() == k_auc.get_config()
    want = theirs.evaluate(x, y, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, verbose=0, return_dict=True)
    assert got["pr"] == pytest.approx(want["pr"], rel=1e-5)
    ours.save(tmp_path / "u.keras")
    again = keras.saving.load_model(tmp_path / "u.keras")
    assert again.evaluate(x, y, verbose=0, return_dict=True)["pr"] == pytest.approx(
        want["pr"], rel=1e-5)


# ---------------------------------------------------------------- BackupAndRestore

class _Interrupt(Exception):
    pass


def _interrupter(m, epoch=None, batch=None):
    """A callback raising at the start of ``epoch`` (or at ``batch`` of epoch 1)."""
    class Interrupt(m.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, e, logs=None):
            self.epoch = e
            if e == epoch:
                raise _Interrupt

        def on_train_batch_begin(self, b, logs=None):
            if batch is not None and self.epoch == 1 and b == batch:
                raise _Interrupt
    return Interrupt()


def _regressor(m, seed=4):
    if m is keras:
        keras.utils.set_random_seed(seed)
    inp = m.Input((5, 2))
    h = m.layers.LSTM(4)(inp)
    model = m.Model(inp, m.layers.Dense(2)(h))
    return model


def _compile(model, m):
    model.compile(m.optimizers.Adam(0.05), "mse", metrics=["mae"])
    return model


def _xy(rng):
    return (rng.standard_normal((20, 5, 2)).astype("float32"),
            rng.standard_normal((20, 2)).astype("float32"))


FIT = dict(epochs=4, batch_size=8, shuffle=False, verbose=0)


def test_an_interrupted_fit_resumes_where_the_backup_left_it(rng, tmp_path):
    x, y = _xy(rng)
    init = _regressor(keras).get_weights()

    def fresh():
        model = _compile(_regressor(unrolled), unrolled)
        model.set_weights(init)
        return model

    whole_dir = tmp_path / "whole"
    whole = fresh()
    full = whole.fit(x, y, callbacks=[unrolled.callbacks.BackupAndRestore(whole_dir)],
                     **FIT).history
    assert not whole_dir.exists()                      # deleted after a successful fit

    backup = tmp_path / "backup"
    first = fresh()
    with pytest.raises(_Interrupt):
        first.fit(x, y, callbacks=[unrolled.callbacks.BackupAndRestore(backup),
                                   _interrupter(unrolled, epoch=2)], **FIT)
    assert sorted(os.listdir(backup)) == ["latest.weights.h5", "training_metadata.json"]
    assert json.loads((backup / "training_metadata.json").read_text()) == {"epoch": 2,
                                                                         "batch": 0}
    resumed = fresh()                                  # a new process: initial weights again
    history = resumed.fit(x, y, callbacks=[unrolled.callbacks.BackupAndRestore(backup)], **FIT)
    assert history.epoch == [2, 3]
    for key in full:
        np.testing.assert_allclose(history.history[key], full[key][2:], rtol=1e-6, err_msg=key)
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert resumed.optimizer.iterations == whole.optimizer.iterations == 12
    for a, b in zip(resumed.optimizer.variables, whole.optimizer.variables):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-6, atol=1e-7, err_msg=a.name)
    assert not backup.exists()
    # the next fit of the same model starts at its own initial_epoch again
    assert resumed.fit(x, y, **FIT).epoch == [0, 1, 2, 3]


def _keras_interrupted_at_epoch_2(shared, x, y, folder):
    """Keras's fit interrupted at the start of epoch 2 with a ``BackupAndRestore`` saving
    each epoch, and a fresh model's fit resuming from that backup: run once for the two
    tests that compare with it. Returns the first model's initial weights, the backup's
    metadata, a copy of the backup as the interruption left it, the resumed fit's epochs,
    history and weights, the resumed model's weights before its fit, and whether the
    backup was deleted after the resumed fit."""
    if "keras-epoch-2" in shared:
        return shared["keras-epoch-2"]
    model = _compile(_regressor(keras), keras)
    init = model.get_weights()
    backup = folder / "keras"
    with pytest.raises(_Interrupt):
        model.fit(x, y, callbacks=[keras.callbacks.BackupAndRestore(backup, "epoch"),
                                   _interrupter(keras, epoch=2)], **FIT)
    meta = json.loads((backup / "training_metadata.json").read_text())
    shutil.copytree(backup, folder / "left")
    again = _compile(_regressor(keras, seed=9), keras)
    again_init = again.get_weights()
    history = again.fit(x, y, callbacks=[keras.callbacks.BackupAndRestore(backup, "epoch")],
                        **FIT)
    shared["keras-epoch-2"] = dict(
        init=init, meta=meta, left=folder / "left", epoch=history.epoch,
        history=history.history, weights=again.get_weights(), again_init=again_init,
        deleted=not backup.exists())
    return shared["keras-epoch-2"]


@pytest.mark.parametrize("save_freq, where", [("epoch", dict(epoch=2)), (2, dict(batch=1)),
                                              (1, dict(batch=2))])
def test_interrupt_and_resume_equal_keras(save_freq, where, rng, tmp_path, shared,
                                          tmp_path_factory):
    """The same interruption in both libraries; with a batch frequency the resumed fit
    repeats the interrupted epoch from the state of the last backed-up batch."""
    x, y = _xy(rng)
    results = {}
    if save_freq == "epoch":                   # Keras's run is the next test's too
        k = _keras_interrupted_at_epoch_2(shared, x, y, tmp_path_factory.mktemp("backup"))
        assert k["deleted"]
        results["keras_init"] = k["init"]
        results["keras"] = (k["meta"], k["epoch"], k["history"], k["weights"])
    for m in (keras, unrolled):
        if m.__name__ in results:
            continue
        model = _compile(_regressor(m), m)
        if m is unrolled:
            model.set_weights(results["keras_init"])
        else:
            results["keras_init"] = model.get_weights()
        backup = tmp_path / m.__name__
        with pytest.raises(_Interrupt):
            model.fit(x, y, callbacks=[m.callbacks.BackupAndRestore(backup, save_freq),
                                       _interrupter(m, **where)], **FIT)
        meta = json.loads((backup / "training_metadata.json").read_text())
        again = _compile(_regressor(m, seed=9), m)
        history = again.fit(x, y, callbacks=[m.callbacks.BackupAndRestore(backup, save_freq)],
                            **FIT)
        results[m.__name__] = (meta, history.epoch, history.history, again.get_weights())
        assert not backup.exists()
    (k_meta, k_epochs, k_hist, k_w), (o_meta, o_epochs, o_hist, o_w) = (
        results["keras"], results["unrolled"])
    assert o_meta == k_meta and o_epochs == k_epochs
    for key in k_hist:
        np.testing.assert_allclose(o_hist[key], k_hist[key], rtol=1e-5, err_msg=key)
    for a, b in zip(o_w, k_w):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_keep_the_backup_and_double_checkpoint(rng, tmp_path):
    x, y = _xy(rng)
    model = _compile(_regressor(unrolled), unrolled)
    cb = unrolled.callbacks.BackupAndRestore(tmp_path / "b", double_checkpoint=True,
                                             delete_checkpoint=False)
    model.fit(x, y, callbacks=[cb], **FIT)
    names = sorted(os.listdir(tmp_path / "b"))
    assert names == ["latest.weights.h5", "latest.weights.h5.bkp", "training_metadata.json",
                     "training_metadata.json.bkp"]
    assert json.loads((tmp_path / "b" / "training_metadata.json.bkp").read_text())["epoch"] == 3
    # a damaged latest backup falls back to the previous one (epoch 3)
    (tmp_path / "b" / "latest.weights.h5").write_bytes(b"not hdf5")
    again = _compile(_regressor(unrolled), unrolled)
    assert again.fit(x, y, callbacks=[cb], **FIT).epoch == [3]
    with pytest.raises(ValueError, match="backup_dir"):
        unrolled.callbacks.BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq"):
        unrolled.callbacks.BackupAndRestore(tmp_path, save_freq="batch")


@pytest.mark.parametrize("writer", ["keras", "unrolled"])
def test_a_backup_directory_is_shared_with_keras(writer, rng, tmp_path, shared,
                                                 tmp_path_factory):
    """Keras's file names and layout (weights and optimizer state in one .weights.h5, the
    epoch in JSON): a fit interrupted in one library resumes in the other."""
    x, y = _xy(rng)
    writer_m, reader_m = (keras, unrolled) if writer == "keras" else (unrolled, keras)
    if writer_m is keras:                      # the interruption and resumption of the test
        k = _keras_interrupted_at_epoch_2(      # above, with save_freq="epoch"
            shared, x, y, tmp_path_factory.mktemp("backup"))
        shutil.copytree(k["left"], tmp_path / "c")
        want_epoch, want_history, want_weights = k["epoch"], k["history"], k["weights"]
    else:
        first = _compile(_regressor(writer_m), writer_m)
        first.set_weights(_regressor(keras).get_weights())
        with pytest.raises(_Interrupt):
            first.fit(x, y, callbacks=[writer_m.callbacks.BackupAndRestore(tmp_path / "b"),
                                       _interrupter(writer_m, epoch=2)], **FIT)
        shutil.copytree(tmp_path / "b", tmp_path / "c")
        reference = _compile(_regressor(writer_m, seed=9), writer_m)
        want = reference.fit(x, y,
                             callbacks=[writer_m.callbacks.BackupAndRestore(tmp_path / "b")],
                             **FIT)
        want_epoch, want_history, want_weights = want.epoch, want.history, reference.get_weights()
    resumed = _compile(_regressor(reader_m, seed=9), reader_m)
    if reader_m is unrolled:
        resumed.set_weights(k["again_init"])   # Keras's model of seed 9, before its fit
    got = resumed.fit(x, y, callbacks=[reader_m.callbacks.BackupAndRestore(tmp_path / "c")],
                      **FIT)
    assert got.epoch == want_epoch == [2, 3]
    for key in want_history:
        np.testing.assert_allclose(got.history[key], want_history[key], rtol=1e-5, err_msg=key)
    for a, b in zip(resumed.get_weights(), want_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
