"""Recurrent cells written the Keras way, run by the library's one time loop.

A Keras cell is a layer with ``state_size`` (an int, or a list of ints: one per state),
``build(input_shape)`` (the shape of one step's input, ``(batch, features)``) and
``call(inputs, states[, training]) -> (output, new_states)``, optionally ``output_size``
(else the first state's size) and ``get_initial_state(batch_size=None)`` (else zeros).
``RNN(cell)`` and ``RNN([cell, cell])`` wrap such cells in a ``KerasCells``, a cell of
the library's contract (``cells.py``), so ``loop.RNN`` runs them as it runs its own:
masks, ``go_backwards``, ``return_sequences``, ``return_state``, ``initial_state``,
``stateful``. Its input projection is the identity (the cell's ``call`` reads ``x_t``
itself); in a list, each cell reads the previous one's output, and receives its own
states as a list, as Keras's ``StackedRNNCells`` passes them.

Training needs the cell author's step backward (docs/custom-layers.md)::

    backward(self, inputs, states, output, new_states, doutput, dstates[, training])
        -> (dinputs, dstates_prev, dweights)

``doutput`` is dLoss/d(output) and ``dstates`` dLoss/d(new_states) (a list, one per
state); ``dstates_prev`` is dLoss/d(states), ``dweights`` one gradient per
``cell.weights`` entry (None: zeros). The loop sums the weight gradients over the steps.
Without it, ``fit`` refuses the model before its first step.
"""
import numpy as np

from ..base import Layer, unique_name
from ..custom_methods import missing_backward_message, weight_gradients


def _state_sizes(cell):
    size = getattr(cell, "state_size", None)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return [int(size)]
    if isinstance(size, (list, tuple)) and size and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size):
        return [int(s) for s in size]
    raise ValueError(f"RNN cell {getattr(cell, 'name', cell)!r}: state_size must be an "
                     f"integer, or a list/tuple of integers (one for each state tensor); "
                     f"received {size!r}.")


def _output_size(cell):
    size = getattr(cell, "output_size", None)
    return _state_sizes(cell)[0] if size is None else int(size)


def is_keras_cell(cell):
    return getattr(type(cell), "_keras_way", False)


def wrap(cell):
    """``cell`` as the loop runs it: a Keras-way cell, or a list of them, in a
    ``KerasCells``; anything else unchanged."""
    cells = list(cell) if isinstance(cell, (list, tuple)) else [cell]
    keras_way = [is_keras_cell(c) for c in cells]
    if not any(keras_way):
        return cell
    if not all(keras_way):
        raise TypeError("RNN: a list of cells mixes cells written the Keras way (`call`) with "
                        "unrolled's own cells; unrolled runs one kind or the other in a list.")
    return KerasCells(cells, stacked=isinstance(cell, (list, tuple)))


class KerasCells(Layer):
    """One Keras-way cell, or several run in order at each step (``stacked``): the cell
    contract of ``cells.py`` around their ``call`` and ``backward``. Attributes not found
    here are the (first) cell's (``rnn.cell.units``)."""

    kernel = None              # no input projection (``gates.projection_chunk`` reads this)
    dropout = 0.0              # the loop draws no dropout masks: a cell does its own
    recurrent_dropout = 0.0

    def __init__(self, cells, stacked=False):
        for c in cells:
            _state_sizes(c)
        name = unique_name("stacked_rnn_cells") if stacked else cells[0].name
        super().__init__(name=name, dtype=cells[0].dtype)
        self._cells, self._stacked, self._training = list(cells), stacked, False

    def __getattr__(self, name):
        if name.startswith("_") or "_cells" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["_cells"][0], name)

    @property
    def cells(self):
        if not self._stacked:
            raise AttributeError("cells")
        return list(self._cells)

    @property
    def state_size(self):
        return [s for c in self._cells for s in _state_sizes(c)]

    @property
    def output_size(self):
        return _output_size(self._cells[-1])

    units = output_size

    @property
    def weights(self):
        return [w for c in self._cells for w in c.weights]

    def _sublayers(self):
        return list(self._cells)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cell in self._cells:
            cell.dtype = self.dtype
            cell._maybe_build(shape)
            shape = shape[:-1] + (_output_size(cell),)
        self.built = True

    def begin_call(self, training):
        """The loop's ``training`` for this call: cells that declare it receive it."""
        self._training = bool(training)

    def initial_states(self, batch, dtype):
        """Each cell's ``get_initial_state(batch_size=...)`` where it has one, else zeros."""
        out = []
        for cell in self._cells:
            own = getattr(cell, "get_initial_state", None)
            if own is None:
                out += [np.zeros((batch, s), dtype) for s in _state_sizes(cell)]
                continue
            states = own(batch_size=batch)
            states = list(states) if isinstance(states, (list, tuple)) else [states]
            out += [np.asarray(getattr(s, "value", s), dtype) for s in states]
        return out

    def _split(self, states):
        out, i = [], 0
        for cell in self._cells:
            n = len(_state_sizes(cell))
            out.append(list(states[i:i + n]))
            i += n
        return out

    # --- the cell contract ------------------------------------------------------------------
    def project_inputs(self, x, out=None):
        if out is None:
            return x
        out[...] = x
        return out

    def input_gradient(self, dxp, x):
        return dxp

    def _kwargs(self, cell):
        return {"training": self._training} if "training" in type(cell)._call_declares else {}

    def step(self, xp_t, states, rec_mask=None):
        caches, new_all, x = [], [], xp_t
        for cell, own in zip(self._cells, self._split(states)):
            out, new = type(cell)._keras_call(cell, x, own, **self._kwargs(cell))
            out = self._array(out)
            new = [self._array(s) for s in (new if isinstance(new, (list, tuple)) else [new])]
            if len(new) != len(own):
                raise ValueError(f"Cell '{cell.name}' returned {len(new)} state(s); its "
                                 f"state_size declares {len(own)}.")
            caches.append([x, own, out, new, None])
            new_all += new
            x = out
        return x, new_all, caches

    def _array(self, value):
        value = np.asarray(getattr(value, "value", value))
        return value.astype(self.dtype) if value.dtype != self.dtype else value

    def step_backward(self, caches, dout, dstates):
        dstates, dprev = self._split(dstates), [None] * len(self._cells)
        for k in range(len(self._cells) - 1, -1, -1):
            cell = self._cells[k]
            user = type(cell)._keras_backward
            if user is None:
                raise NotImplementedError(missing_backward_message(cell))
            x, own, out, new, _ = caches[k]
            result = user(cell, x, own, out, new, dout, dstates[k], **self._kwargs(cell))
            if not (isinstance(result, (tuple, list)) and len(result) == 3):
                raise TypeError(f"Cell '{cell.name}': backward must return (dinputs, "
                                "dstates_prev, dweights).")
            dx, dp, dw = result
            dp = list(dp) if isinstance(dp, (list, tuple)) else [dp]
            if len(dp) != len(own):
                raise ValueError(f"Cell '{cell.name}': backward returned {len(dp)} state "
                                 f"gradient(s) for {len(own)} state(s).")
            caches[k][4] = weight_gradients(cell, dw)
            dprev[k] = [np.asarray(d, self.dtype) for d in dp]
            dout = np.asarray(dx, self.dtype)
        return dout, [d for ds in dprev for d in ds]

    def weight_gradients(self, x, caches, dxp, stacked=None):
        """The sums over these steps of the gradients each step's backward returned."""
        total = None
        for step in caches:
            grads = [g for entry in step for g in entry[4]]
            total = [g.copy() for g in grads] if total is None else [
                t + g for t, g in zip(total, grads)]
        return total

    def get_config(self):
        return {"cells": [c.get_config() for c in self._cells]}

    def recreate(self, **changes):
        """Fresh, unbuilt copies of the cells (Bidirectional's backward layer), each from
        its class's ``from_config(get_config())``, as Keras re-creates them."""
        if changes:
            raise TypeError(f"Cells written the Keras way take no changes: {sorted(changes)}.")
        return KerasCells([type(c).from_config(c.get_config()) for c in self._cells],
                          stacked=self._stacked)
