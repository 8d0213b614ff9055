"""Smaller hostile-file items (issue 26.10): layer names with ANSI escapes or carriage
returns reach the terminal through ``unrolled inspect`` only as visible escapes; a dtype
policy naming another module, or a class that is not a Keras dtype policy, is refused."""
import os
import subprocess
import sys

import pytest

import unrolled
from unrolled.saving.graph import model_from_config
from unrolled.io.safety import UnsafeModelError, UnsupportedModelError


def test_inspect_shows_control_characters_as_escapes(tmp_path):
    name = "evil\x1b[2J\x1b[31mred\rover"
    model = unrolled.Sequential([unrolled.Input((4, 2)), unrolled.layers.LSTM(3, name=name)],
                                name="m\x1b]0;title\x07")
    model.save(tmp_path / "m.unrolled.npz")
    out = subprocess.run([sys.executable, "-m", "unrolled", "inspect", "m.unrolled.npz"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\r" not in out.stdout and "\x07" not in out.stdout
    assert "evil\\x1b[2J\\x1b[31mred\\rover" in out.stdout


def _config(dtype):
    return {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "in"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "dtype": dtype}}]}}


def test_dtype_policies_are_keras_own_or_refused():
    ok = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float64"},
          "registered_name": None}
    assert model_from_config(_config(ok)).layers[0].dtype == "float64"
    with pytest.raises(UnsafeModelError, match="custom object"):
        model_from_config(_config({**ok, "module": "evil.policies"}))
    with pytest.raises(UnsupportedModelError, match="dtype policy 'Sneaky'"):
        model_from_config(_config({**ok, "class_name": "Sneaky"}))


def test_a_model_thousands_of_layers_deep_builds_trains_saves_and_loads(tmp_path):
    """issue 26.10: the graph walk recursed once per layer (RecursionError near 1,000)."""
    import numpy as np
    from unrolled.models import load_model
    a = unrolled.Input((2,))
    h = a
    for _ in range(2500):
        h = unrolled.layers.Dense(2)(h)
    model = unrolled.Model(a, h)
    x = np.ones((2, 2), np.float32)
    model.compile(loss="mse", optimizer="sgd")
    model.train_on_batch(x, x)
    model.save(tmp_path / "deep.keras")
    again = load_model(tmp_path / "deep.keras")
    assert len(again.layers) == 2501
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
