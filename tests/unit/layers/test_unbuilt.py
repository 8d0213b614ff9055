"""Layers and cells used before they are built (issue 24.12): a recurrent layer's
``forward``/``call``/``gradients`` build it from the input, as ``layer(x)`` does (every
layer's ``forward`` does: tests/system/test_issue24_audit.py); a bare cell's ``step`` and
an unbuilt layer's weights say the layer is not built instead of an AttributeError deep
inside the math; a cell's ``get_config`` keeps ``name`` and ``dtype``."""
import numpy as np
import pytest

from unrolled import layers as L

KINDS = ["SimpleRNN", "LSTM", "GRU"]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_call_and_gradients_build_an_unbuilt_recurrent_layer(kind):
    x = np.random.default_rng(1).normal(size=(2, 5, 3))
    for method in ("forward", "call", "gradients"):
        layer = getattr(L, kind)(4, return_sequences=True, seed=3)
        if method == "forward":
            y = layer.forward(x)[0]
        elif method == "call":
            y = layer.call(x)
        else:
            dx, dw = layer.gradients(x, np.ones((2, 5, 4), np.float32))
            assert np.shape(dx[0]) == (2, 5, 3) and len(dw) == len(layer.weights) == 3
            y = layer(x)
        assert layer.built and y.shape == (2, 5, 4) and y.dtype == np.float32, method
        np.testing.assert_array_equal(y, layer(x))


@pytest.mark.parametrize("kind", KINDS)
def test_an_unbuilt_cell_says_it_is_not_built(kind):
    cell = getattr(L, kind + "Cell")(4, name="my_cell")
    states = [np.zeros((2, 4))] * (2 if kind == "LSTM" else 1)
    with pytest.raises(AttributeError, match=r"'my_cell' \(\w+Cell\) is not built yet.*build"):
        cell.step(np.zeros((2, 3)), states)
    assert not hasattr(cell, "kernel")          # hasattr still answers False


def test_an_unbuilt_dense_forward_builds_it_and_its_weights_say_they_are_not_built():
    x = np.random.default_rng(2).normal(size=(2, 4))
    layer = L.Dense(3, name="d")
    with pytest.raises(AttributeError, match="'d' \\(Dense\\) is not built yet"):
        layer.kernel
    y = layer.forward(x)[0]
    assert layer.built and y.shape == (2, 3)
    np.testing.assert_array_equal(y, layer(x))


@pytest.mark.parametrize("kind", KINDS)
def test_cell_get_config_keeps_name_and_dtype_and_round_trips(kind):
    cls = getattr(L, kind + "Cell")
    cell = cls(4, name="my_cell", dtype="float64", dropout=0.25)
    config = cell.get_config()
    assert (config["name"], config["dtype"], config["trainable"]) == ("my_cell", "float64", True)
    again = cls.from_config(config)
    assert (again.name, again.dtype, again.dropout) == ("my_cell", "float64", 0.25)
    assert again.get_config() == config
    # The layer's own config still carries the layer's name, not its cell's.
    layer = getattr(L, kind)(4, name="outer")
    assert layer.get_config()["name"] == "outer"
    assert getattr(L, kind).from_config(layer.get_config()).get_config() == layer.get_config()
