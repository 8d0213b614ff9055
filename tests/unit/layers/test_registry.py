"""The cell registry (``unrolled.layers.registry``): one entry per recurrent cell type, read
by serialization, interop and explain."""
import numpy as np
import pytest

from unrolled.layers import GRU, LSTM, RNN, SimpleRNN, registry
from unrolled.layers.registry import CELL_TYPES


@pytest.mark.parametrize("entry", CELL_TYPES, ids=lambda t: t.name)
def test_each_entry_is_consistent_with_its_classes(entry):
    layer = entry.layer(3)
    layer(np.zeros((2, 4, 5), np.float32))
    cell = layer.cell
    assert isinstance(cell, entry.cell)
    assert registry.of_cell(cell) is entry and registry.of_layer(entry.name) is entry
    assert registry.of_torch(entry.torch) is entry
    assert registry.of_kind(entry.name) is entry
    assert len(entry.states) == len(cell.state_size)
    assert cell.kernel.shape == (5, entry.blocks * 3)
    assert cell.recurrent_kernel.shape == (3, entry.blocks * 3)
    assert sorted(entry.torch_order) == list(range(entry.blocks))
    assert sorted(entry.onnx_order) == list(range(entry.blocks))
    assert not entry.gates or len(entry.gates) == entry.blocks
    # Every option is a read-only attribute of the layer, the cell's value.
    for option in entry.options:
        assert getattr(layer, option) is getattr(cell, option), option
    with pytest.raises(AttributeError):
        layer.units = 4


def test_an_unregistered_cell_has_no_entry():
    class LSTMCell:                      # another class of the same name
        pass
    assert registry.of_cell(LSTMCell()) is None
    assert registry.of_layer("Conv1D") is None and registry.of_torch("Linear") is None


def test_the_readers_take_their_tables_from_the_registry():
    from unrolled.explain import codegen_layers
    from unrolled.interop import onnx_export, torch as torch_interop
    from unrolled.saving import serialize
    for t in CELL_TYPES:
        assert serialize.LAYERS[t.name][:2] == (t.layer, t.snake)
        assert serialize.LAYERS[t.cell_name][:2] == (t.cell, t.cell_snake)
        assert set(t.options) <= set(serialize.LAYERS[t.name][2])
        assert torch_interop.KERAS_CLASS[t.torch] is t.layer
        assert torch_interop.GATE_ORDER[t.torch] == list(t.torch_order)
        assert onnx_export.ONNX_GATE_ORDER[t.torch] == list(t.onnx_order)
        assert t.equations is not None and t.step_code is not None      # explain
        assert t.name in codegen_layers.coded()
    assert {t.layer for t in CELL_TYPES} == {SimpleRNN, LSTM, GRU}
    assert RNN not in {t.layer for t in CELL_TYPES}
