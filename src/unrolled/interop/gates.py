"""The gate tables of the PyTorch and ONNX conversions, in one place, and the block reorder.

Read from the cell registry (``layers.registry``), by PyTorch's module name (``"RNN"`` is
SimpleRNN's), which is also the ONNX operator's: how many gate blocks the fused kernels
hold, and how PyTorch and ONNX order the blocks Keras orders ``i, f, c, o`` (LSTM) or
``z, r, h`` (GRU). ``torch.py``, ``torch_modules.py`` and ``onnx_export.py`` use them.
"""
import numpy as np

from ..layers.registry import CELL_TYPES

GATES = {t.torch: t.blocks for t in CELL_TYPES if t.torch}
GATE_ORDER = {t.torch: list(t.torch_order) for t in CELL_TYPES if t.torch}  # Keras j = torch
ONNX_GATE_ORDER = {t.torch: list(t.onnx_order) for t in CELL_TYPES if t.torch}  # ONNX j = Keras
KERAS_CLASS = {t.torch: t.layer for t in CELL_TYPES if t.torch}


def reorder_blocks(a, kind, order):
    """``a`` with its gate blocks along axis 0 reordered: block j of the result is block
    ``order[j]`` of ``a`` (``kind``'s number of blocks, ``GATES``)."""
    h = a.shape[0] // GATES[kind]
    return np.concatenate([a[i * h:(i + 1) * h] for i in order], axis=0)
