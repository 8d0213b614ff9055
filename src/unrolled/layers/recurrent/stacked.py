"""StackedRNNCells: several cells run one after another inside a single time step.

``RNN(StackedRNNCells([SimpleRNNCell(8), LSTMCell(4)]))`` is a two-layer recurrent
network that walks the sequence once: at every step the first cell reads ``x_t``, the
second reads the first one's output, and the last cell's output is the step's output.

It is a cell like any other (see ``cells.py``), so the shared loop in ``loop.py``
runs it unchanged. Two details make that work:

* ``project_inputs`` can only do the first cell's input product ahead of time (the later
  cells' inputs are computed during the step), so it returns the first cell's projection,
  and ``step`` projects each later cell's input itself.
* ``step_backward`` returns dLoss/d(projection) of *every* cell, side by side
  ``[dxp_0 | dxp_1 | ...]``, so that ``weight_gradients`` can give every cell its slice,
  and ``input_gradient`` turns the first cell's slice, the only one that touches x, into
  dLoss/dx (the first cell's own ``input_gradient``).
"""
import numpy as np

from ..base import Layer
from .gates import cell_input_gradient


class StackedRNNCells(Layer):
    """A cell made of ``cells`` run in order at every step (``keras.layers.StackedRNNCells``).

    States: the cells' states one after another, a flat list. For
    ``[SimpleRNNCell(3), LSTMCell(4)]`` that is ``[h_0, h_1, c_1]`` with
    ``state_size == [3, 4, 4]`` — Keras's order; Keras nests it as ``[h_0, [h_1, c_1]]``.
    Weights: every cell's weights, first cell first. Output: the last cell's output.

    Dropout inside the stacked cells is not supported: a cell with ``dropout`` or
    ``recurrent_dropout`` raises a ValueError.
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells)
        if not cells:
            raise ValueError("StackedRNNCells needs at least one cell; received an empty list.")
        for i, cell in enumerate(cells):
            for attr in ("project_inputs", "step", "step_backward", "weight_gradients",
                         "state_size"):
                if not hasattr(cell, attr):
                    raise ValueError(
                        f"Cell {i} of StackedRNNCells ({cell!r}) has no `{attr}`: every cell "
                        "must follow the cell contract of unrolled.layers.recurrent.cells."
                    )
            rates = (getattr(cell, "dropout", 0), getattr(cell, "recurrent_dropout", 0))
            if any(rates):
                raise ValueError(
                    f"Cell {i} of StackedRNNCells has dropout={rates[0]} and "
                    f"recurrent_dropout={rates[1]}; dropout inside stacked cells is not "
                    "supported. Use cells with dropout=0 and recurrent_dropout=0."
                )
        self.cells = cells

    @property
    def state_size(self):
        return [s for cell in self.cells for s in cell.state_size]

    @property
    def output_size(self):
        return self.cells[-1].output_size

    @property
    def units(self):
        # The loop sizes a recurrent dropout mask with ``units``; a stack draws none (dropout
        # in its cells is refused above), so this is only the width of the output.
        return self.output_size

    @property
    def weights(self):
        return [w for cell in self.cells for w in cell.weights]

    def _sublayers(self):
        return list(self.cells)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cell in self.cells:
            if not cell.built:
                cell.dtype = self.dtype
                cell.build(shape)
                cell.built = True
            shape = shape[:-1] + (cell.output_size,)       # the next cell reads this output
        self.built = True

    def _split(self, states):
        """The flat state list cut into one list per cell."""
        out, i = [], 0
        for cell in self.cells:
            n = len(cell.state_size)
            out.append(list(states[i:i + n]))
            i += n
        return out

    def project_inputs(self, x, out=None):
        return self.cells[0].project_inputs(x, out)         # only the first cell reads x

    def input_gradient(self, dxp, x):
        """dLoss/dx of a chunk of steps: the first cell's, from its slice of ``dxp``."""
        first = self.cells[0]
        return cell_input_gradient(first, dxp[..., :first.kernel.value.shape[1]], x)

    def step(self, xp_t, states, rec_mask=None):
        new_states, caches = [], []
        out = None
        for k, (cell, own) in enumerate(zip(self.cells, self._split(states))):
            x_k = out                                        # what cell k reads (None: x_t)
            xp = xp_t if k == 0 else cell.project_inputs(out)
            out, own_new, cache = cell.step(xp, own)
            new_states += own_new
            caches.append((x_k, cache))
        return out, new_states, caches

    def step_backward(self, caches, dout, dstates):
        dxps, dprev = [None] * len(self.cells), [None] * len(self.cells)
        dstates = self._split(dstates)
        for k in range(len(self.cells) - 1, -1, -1):
            cell = self.cells[k]
            dxp, dprev[k] = cell.step_backward(caches[k][1], dout, dstates[k])
            dxps[k] = dxp
            if k > 0:
                dout = dxp @ cell.kernel.value.T             # xp_k = out_{k-1} @ kernel_k + ...
        return np.concatenate(dxps, axis=-1), [d for ds in dprev for d in ds]

    def weight_gradients(self, x, caches, dxp):
        grads, col = [], 0
        for k, cell in enumerate(self.cells):
            width = cell.kernel.value.shape[1]
            dxp_k = np.ascontiguousarray(dxp[..., col:col + width])   # cell k's slice
            col += width
            x_k = x if k == 0 else np.stack([c[k][0] for c in caches])  # (T, B, input of k)
            grads += cell.weight_gradients(x_k, [c[k][1] for c in caches], dxp_k)
        return grads

    def get_config(self):
        cells = [{"class_name": type(c).__name__, "config": c.get_config()} for c in self.cells]
        return {**super().get_config(), "cells": cells}

    @classmethod
    def from_config(cls, config):
        from ... import layers                               # the cell classes, by name

        config = dict(config)
        cells = [getattr(layers, c["class_name"]).from_config(c["config"])
                 for c in config.pop("cells")]
        return cls(cells, **config)
