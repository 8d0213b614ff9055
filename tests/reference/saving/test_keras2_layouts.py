"""Keras 2.0-2.2.2 files as those versions wrote them (issue 21.2, 21.5): a Sequential's
``model_config`` whose ``"config"`` is the list of layers, and GRU configs without
``reset_after`` (Keras <= 2.1 had no such option and computed what ``reset_after=False``
computes). Checked against ``tf_keras`` (Keras 2 on TensorFlow) where it reads the file,
and against Keras 2.1's GRU formula where it does not: tf_keras takes a missing
``reset_after`` as its own default, True, and refuses the (3M,) bias."""
import json

import h5py
import numpy as np
import pytest
import tf_keras  # the Keras 2 reference (make installs it)
from test_hard_sigmoid_versions import hs_keras2, inputs, keras2_weights, reference, write_keras2_h5

from unrolled.io.safety import ModelFileError
from unrolled.models import load_model



def _keras21_file(path, kind, weights, reset_after_key=False):
    """A Keras 2.1 .h5: the Sequential config as a list, GRU without reset_after."""
    write_keras2_h5(path, kind, weights, version=b"2.1.4")
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"] = config["config"]["layers"]
        if not reset_after_key:
            for layer in config["config"]:
                layer["config"].pop("reset_after", None)
        f.attrs["model_config"] = json.dumps(config).encode()
    return path


def test_a_keras21_sequential_lstm_loads_and_predicts_as_tf_keras(tmp_path, rng):
    weights = keras2_weights("lstm", rng)
    path = _keras21_file(tmp_path / "lstm.h5", "lstm", weights)
    x = inputs(rng)
    ours = load_model(path)
    want = tf_keras.models.load_model(path, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference("lstm", x, weights, hs_keras2),
                               atol=1e-5, rtol=1e-5)
    assert [layer.name for layer in ours.layers] == ["lstm_1", "dense_1"]


def test_a_keras21_gru_without_reset_after_is_reset_before(tmp_path, rng):
    weights = keras2_weights("gru", rng)                  # bias (3M,): one bias, Keras 2.1's
    path = _keras21_file(tmp_path / "gru.h5", "gru", weights)
    with pytest.raises(ValueError, match="reset_after"):  # tf_keras assumes True and gives up
        tf_keras.models.load_model(path, compile=False)
    ours = load_model(path)
    assert ours.layers[0].reset_after is False
    x = inputs(rng)
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference("gru", x, weights, hs_keras2),
                               atol=1e-5, rtol=1e-5)


def test_a_list_form_config_with_reset_after_true_keeps_it(tmp_path, rng):
    weights = keras2_weights("gru_reset_after", rng)
    path = _keras21_file(tmp_path / "gru.h5", "gru_reset_after", weights, reset_after_key=True)
    ours = load_model(path)
    assert ours.layers[0].reset_after is True
    x = inputs(rng)
    want = tf_keras.models.load_model(path, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, atol=1e-5, rtol=1e-5)


def test_a_gru_without_reset_after_but_a_two_row_bias_is_refused_not_misread(tmp_path, rng):
    weights = keras2_weights("gru_reset_after", rng)      # bias (2, 3M) with no key: damaged
    path = _keras21_file(tmp_path / "gru.h5", "gru_reset_after", weights)
    with pytest.raises(ModelFileError, match=r"shape \(2, 12\).*expects \(12,\)"):
        load_model(path)


def _fixed_batch(path, batch):
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][0]["config"]["batch_input_shape"] = [batch, 7, 3]
        f.attrs["model_config"] = json.dumps(config).encode()
    return path


def test_a_keras2_functional_model_with_one_output_predicts_an_array(tmp_path, rng):
    """Keras 2 wrote output_layers as a list even for one output (issue 21.8); and a fixed
    batch size in the input's batch_input_shape does not restrict predict (21.7)."""
    weights = keras2_weights("lstm", rng)
    path = write_keras2_h5(tmp_path / "f.h5", "lstm", weights, version=b"2.2.4", functional=True)
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["model_config"])["config"]["output_layers"] == [["dense_1", 0, 0]]
    _fixed_batch(path, 5)
    x = inputs(rng)[:2]
    ours = load_model(path).predict(x, verbose=0)
    want = tf_keras.models.load_model(path, compile=False).predict(x, verbose=0)
    assert isinstance(ours, np.ndarray) and isinstance(want, np.ndarray)
    np.testing.assert_allclose(ours, want, atol=1e-5, rtol=1e-5)
