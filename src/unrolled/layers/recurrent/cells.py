"""Recurrent cells: the math of one time step, forward and backward side by side, and
the SimpleRNN layer (LSTM and GRU live in lstm.py and gru.py, each with its cell).

A cell knows nothing about sequences, masks or directions — ``loop.RNN`` owns the
time loop. A cell provides:

``project_inputs(x, out=None)``
    the input part of every time step at once, ``x @ kernel (+ bias)``, one matrix product
    over ``(T, B, F)`` (written into ``out`` when given).
``step(xp_t, states, rec_mask=None) -> (output, new_states, cache)``
    one step from the projected input ``xp_t`` and the previous states; ``rec_mask`` is
    the recurrent dropout mask of the call, if any.
``step_backward(cache, doutput, dstates) -> (dxp_t, dstates_prev)``
    the same step backwards: dLoss/d(xp_t) and dLoss/d(previous states), given
    dLoss/d(output) and dLoss/d(new states).
``weight_gradients(x, caches, dxp, stacked=None)``
    dLoss/d(weights) summed over the steps given, each as a single matrix product.
    ``RNN.backward`` calls it on consecutive chunks of steps and adds the results, so
    its stacked operands stay a fraction of the sequence. (``stacked``: the same operands
    already stacked over those steps, which the compiled path hands over in place of
    ``caches``.)

These are the reference: plain NumPy, written as the equations read. For the built-in
cells with their default activations, in float32, a compiled implementation of the whole
sequence (``unrolled.fast``) runs instead, with the same numbers within float32 rounding;
a cell never knows it.

Naming: ``d<name>`` is dLoss/d<name>, as in min-char-rnn.
"""
import numpy as np

from ... import activations, initializers
from ..base import Layer
from .dropout import apply_mask
from .gates import (gate_kernel_gradient, gate_product, gate_product_backward, stack_steps,
                    transposed)
from .loop import RNN


def _check_units(units):
    if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
        raise ValueError(
            f"Received an invalid value for argument `units`, expected a positive integer, "
            f"got {units!r}."
        )
    return int(units)


def _check_rate(name, rate):
    if not 0 <= rate <= 1:
        raise ValueError(f"`{name}` must be a float in [0, 1]; received {rate!r}.")
    return min(1.0, max(0.0, float(rate)))


def project(cell, x, bias, out=None):
    """A cell's ``project_inputs``: ``x @ kernel (+ bias)`` for all steps, one product (into
    ``out`` when given). ``x`` is ``(T, B, F)``, or ``(G, T, B, F)`` with per-gate dropout."""
    xp = gate_product(x, cell.kernel.value, per_gate=x.ndim == 4, out=out)
    if bias is not None:
        xp += bias
    return xp


class Cell(Layer):
    """What the built-in cells share: their common options, set as Keras sets them; Keras's
    weight arguments (``kernel_regularizer``, ..., ``bias_constraint``:
    ``Layer.weight_rules``); and Keras's cell config, the base layer's (name, trainable,
    dtype) then the options named in ``config_options``."""

    weight_rules = ("kernel", "recurrent", "bias")
    gates = 1
    config_options = ("units", "activation", "use_bias", "dropout", "recurrent_dropout", "seed")

    def __init__(self, units, activation, use_bias, kernel_initializer, recurrent_initializer,
                 bias_initializer, dropout, recurrent_dropout, seed, recurrent_activation=None,
                 implementation=2, **kwargs):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.activation = activations.get(activation)
        if recurrent_activation is not None:
            self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        # Keras draws one dropout mask per gate (inputs and state) in its "implementation 1",
        # which recurrent_dropout > 0 forces; otherwise one input mask shared by all gates.
        per_gate = self.gates > 1 and (implementation == 1 or self.recurrent_dropout > 0)
        self.dropout_mask_count = self.gates if per_gate else 1
        self.state_size = [self.units]
        self.output_size = self.units

    def input_gradient(self, dxp, x):
        """dLoss/dx of a chunk of steps from dLoss/d(xp): ``xp = x @ kernel (+ b)``, so
        ``dx = dxp @ kernel^T`` (per gate with per-gate input dropout)."""
        return gate_product_backward(dxp, x, self.kernel.value, x.ndim == 4)

    def get_config(self):
        return {**super().get_config(), **self.cell_config()}

    def cell_config(self):
        """The cell's options as Keras's config lists them (activations by name)."""
        return {k: getattr(self, k).name if k.endswith("activation") else getattr(self, k)
                for k in self.config_options}


class SimpleRNNCell(Cell):
    r"""The Elman cell of the seed notebook.

    .. math::  h_t = \mathrm{activation}(x_t W_x + b + h_{t-1} W_h)

    In code: ``xp_t = x_t @ kernel + bias`` (``project_inputs``, every step at once), then
    ``a = xp_t + h_prev @ recurrent_kernel`` and ``h = activation(a)``, Keras's order of the
    sums. The output is ``h``; the state is ``[h]``.

    Weights (Keras's layout): ``kernel (F, units)``, ``recurrent_kernel (units, units)``,
    ``bias (units,)``. Defaults: glorot_uniform, orthogonal, zeros.
    """

    # The names of the values ``step`` returns in its cache, in order (for explain.trace).
    cache_names = ("h_in", "a", "h", "rec_mask")

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(units, activation, use_bias, kernel_initializer, recurrent_initializer,
                         bias_initializer, dropout, recurrent_dropout, seed, **kwargs)

    def build(self, input_shape):
        f, m = input_shape[-1], self.units
        self.kernel = self.add_weight("kernel", (f, m), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (m, m), self.recurrent_initializer)
        self.bias = self.add_weight("bias", (m,), self.bias_initializer) if self.use_bias else None
        self.built = True

    def project_inputs(self, x, out=None):
        return project(self, x, self.bias.value if self.use_bias else None, out)

    def step(self, xp_t, states, rec_mask=None):
        (h_prev,) = states
        h_in = apply_mask(h_prev, rec_mask)                  # recurrent dropout, if any
        a = xp_t + np.dot(h_in, self.recurrent_kernel.value)  # a = x W_x + b + h_{t-1} W_h
        h = self.activation(a)                               # h = activation(a)
        return h, [h], (h_in, a, h, rec_mask)

    def step_backward(self, cache, dout, dstates):
        h_in, a, h, rec_mask = cache
        dh = dout + dstates[0]                               # h is both output and state
        da = self.activation.backward(a, h, dh)              # backprop through the activation
        dh_prev = np.dot(da, transposed(self.recurrent_kernel.value))  # a = ... + h_{t-1} W_h
        if rec_mask is not None:
            dh_prev *= rec_mask                              # through recurrent dropout
        return da, [dh_prev]

    def weight_gradients(self, x, caches, dxp, stacked=None):
        h_in = stacked["h_in"] if stacked else stack_steps([c[0] for c in caches])   # (T, B, M)
        grads = [gate_kernel_gradient(x, dxp, x.ndim == 4),       # dW_x = sum_t x_t^T da_t
                 gate_kernel_gradient(h_in, dxp)]                 # dW_h = sum_t h_{t-1}^T da_t
        if self.use_bias:
            grads.append(dxp.sum(axis=(0, 1)))                      # db   = sum_t da_t
        return grads


class SimpleRNN(RNN):
    """Fully-connected RNN whose output is fed back as the next step's state.

    ``SimpleRNN(units)`` is ``RNN(SimpleRNNCell(units))`` with Keras's arguments::

        h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)
    """

    cell_class = SimpleRNNCell
    arguments = ("units", "activation", "use_bias", "kernel_initializer",
                 "recurrent_initializer", "bias_initializer", "kernel_regularizer",
                 "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                 "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
                 "recurrent_dropout", "return_sequences", "return_state", "go_backwards",
                 "stateful", "unroll", "seed")
