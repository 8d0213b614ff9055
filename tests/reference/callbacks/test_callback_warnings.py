"""Callbacks that would silently do nothing say so, as Keras's do (issue 26.8): a monitored
metric that is not in the logs, a checkpoint path that cannot be written."""
import os
import warnings

import numpy as np
import pytest

from unrolled import callbacks
from unrolled.layers import Dense, Input, SimpleRNN
from unrolled.models import Sequential


def _model():
    m = Sequential([Input((4, 2)), SimpleRNN(3), Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((8, 4, 2)).astype("float32")
    return m, x, x[:, -1, :1]


def test_early_stopping_on_a_missing_metric_warns_as_keras_does():
    import keras
    m, x, y = _model()
    with pytest.warns(UserWarning) as ours:
        m.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping(patience=0)])
    km = keras.Sequential([keras.Input((4, 2)), keras.layers.SimpleRNN(3), keras.layers.Dense(1)])
    km.compile(optimizer="sgd", loss="mse")
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        km.fit(x, y, epochs=2, verbose=0, callbacks=[keras.callbacks.EarlyStopping(patience=0)])
    expected = [str(w.message) for w in theirs if "Early stopping" in str(w.message)]
    got = [str(w.message) for w in ours if "Early stopping" in str(w.message)]
    assert expected and got == expected          # once per epoch, the same words


def test_a_best_only_checkpoint_without_its_metric_warns_and_saves_each_epoch(tmp_path):
    m, x, y = _model()
    path = tmp_path / "ckpt-{epoch}.keras"
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        m.fit(x, y, epochs=2, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(str(path), save_best_only=True)])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-1.keras", "ckpt-2.keras"]  # as Keras 3 saves


def test_a_checkpoint_creates_its_directory(tmp_path):
    m, x, y = _model()
    path = tmp_path / "runs" / "{epoch}" / "w.weights.npz"
    m.fit(x, y, epochs=1, verbose=0,
          callbacks=[callbacks.ModelCheckpoint(str(path), save_weights_only=True)])
    assert os.path.isfile(tmp_path / "runs" / "1" / "w.weights.npz")


def test_an_unwritable_checkpoint_path_fails_before_the_first_epoch(tmp_path):
    m, x, y = _model()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    epochs = []
    spy = callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs.append(e))
    with pytest.raises(NotADirectoryError, match="a_file.*not a directory"):
        m.fit(x, y, epochs=2, verbose=0,
              callbacks=[spy, callbacks.ModelCheckpoint(str(blocker / "sub" / "m.keras"))])
    assert epochs == []
    if os.geteuid() != 0:                        # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        with pytest.raises(PermissionError, match="not writable"):
            m.fit(x, y, epochs=1, verbose=0,
                  callbacks=[callbacks.ModelCheckpoint(str(locked / "m.keras"))])
