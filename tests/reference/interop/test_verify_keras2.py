"""``unrolled verify`` compares a file with the Keras that wrote it (issue 21, the command
line): tf_keras for Keras 2 files, Keras 3 otherwise, and says which one it used."""
import sys

import keras
import numpy as np
import pytest
import tf_keras

from unrolled.interop.verify import verify


def _keras2_file(tmp_path):
    """A tf_keras (Keras 2) legacy .h5 whose LSTM gates use Keras 2's hard_sigmoid, which
    Keras 3 computes otherwise: only the Keras that wrote it agrees with unrolled."""
    rng = np.random.default_rng(7)
    model = tf_keras.Sequential([
        tf_keras.layers.LSTM(4, recurrent_activation="hard_sigmoid", input_shape=(5, 3),
                             name="lstm"),
        tf_keras.layers.Dense(2, name="out")])
    model.set_weights([rng.standard_normal(w.shape).astype("float32")
                       for w in model.get_weights()])
    path = tmp_path / "keras2.h5"
    model.save(path)
    return path


def test_a_keras2_file_is_compared_with_tf_keras(tmp_path, capsys):
    path = _keras2_file(tmp_path)
    assert verify(path, tol=1e-5) == 0
    out = capsys.readouterr().out
    assert f"compared with tf_keras {tf_keras.__version__} (written by Keras 2." in out
    assert "MISMATCH" not in out and "verified: outputs agree" in out


def test_without_tf_keras_it_says_which_keras_it_tried_and_why_it_cannot(tmp_path, capsys,
                                                                         monkeypatch):
    """Keras 3 refuses tf_keras 2.21's file (its LSTM config holds time_major): one clear
    error that says what to install, not Keras's traceback."""
    path = _keras2_file(tmp_path)
    monkeypatch.setitem(sys.modules, "tf_keras", None)         # as if not installed
    with pytest.raises(ValueError, match=r"cannot verify .*Keras 3\.\d+\.\d+ does not load it "
                                         r"\(ValueError: .*time_major.*pip install tf_keras"):
        verify(path, tol=1e-5)
    out = capsys.readouterr().out
    assert f"compared with Keras {keras.__version__}" in out and "hard_sigmoid" in out


def test_a_keras3_file_is_compared_with_keras3(tmp_path, capsys):
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(3, name="gru")])
    path = tmp_path / "keras3.keras"
    model.save(path)
    assert verify(path) == 0
    out = capsys.readouterr().out
    assert (f"compared with Keras {keras.__version__} (written by Keras "
            f"{keras.__version__})") in out
