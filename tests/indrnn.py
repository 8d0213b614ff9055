"""A new recurrent cell in one file: IndRNN (Li et al., 2018), the one docs/add-a-cell.md builds.

    a_t = x_t W + b + u * h_{t-1}        (u a vector: each unit sees only its own past)
    h_t = activation(a_t)

Import this module and ``IndRNN(units)`` trains, masks, saves and loads, and explain traces
it, shows its equations and writes it as NumPy code. ``tests/unit/layers/recurrent/test_add_a_cell.py``
checks it against a hand-written loop and by finite differences.
"""
import numpy as np

from unrolled.layers import RNN
from unrolled.layers.recurrent.cells import Cell, project
from unrolled.layers.recurrent.dropout import apply_mask
from unrolled.layers.recurrent.gates import gate_kernel_gradient, stack_steps
from unrolled.layers.registry import CellType, register


class IndRNNCell(Cell):
    """``h = activation(x W + b + u * h_prev)``. Weights: ``kernel (F, M)``,
    ``recurrent_kernel (M,)`` (the vector u), ``bias (M,)``."""

    # The names of the values ``step`` keeps for its backward, in order (explain.trace shows them).
    cache_names = ("h_in", "a", "h", "rec_mask")

    def __init__(self, units, activation="relu", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="ones",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(units, activation, use_bias, kernel_initializer, recurrent_initializer,
                         bias_initializer, dropout, recurrent_dropout, seed, **kwargs)

    def build(self, input_shape):
        f, m = input_shape[-1], self.units
        self.kernel = self.add_weight("kernel", (f, m), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (m,),
                                                self.recurrent_initializer)
        self.bias = self.add_weight("bias", (m,), self.bias_initializer) if self.use_bias else None
        self.built = True

    def project_inputs(self, x, out=None):
        """``x W + b`` for every step at once (the loop calls it on chunks of steps)."""
        return project(self, x, self.bias.value if self.use_bias else None, out)

    def step(self, xp_t, states, rec_mask=None):
        (h_prev,) = states
        h_in = apply_mask(h_prev, rec_mask)                   # recurrent dropout, if any
        a = xp_t + self.recurrent_kernel.value * h_in        # a = x W + b + u * h_prev
        h = self.activation(a)
        return h, [h], (h_in, a, h, rec_mask)

    def step_backward(self, cache, dout, dstates):
        h_in, a, h, rec_mask = cache
        dh = dout + dstates[0]                                # h is the output and the state
        da = self.activation.backward(a, h, dh)               # h = activation(a)
        dh_prev = da * self.recurrent_kernel.value            # a = ... + u * h_in
        if rec_mask is not None:
            dh_prev = dh_prev * rec_mask                      # h_in = h_prev * mask
        return da, [dh_prev]                                  # da is dLoss/d(x W + b)

    def weight_gradients(self, x, caches, dxp, stacked=None):
        """Summed over the steps of a chunk: ``x`` (T, B, F), ``dxp`` = da (T, B, M)."""
        h_in = stacked["h_in"] if stacked else stack_steps([c[0] for c in caches])
        grads = [gate_kernel_gradient(x, dxp),                 # dW = sum_t x_t^T da_t
                 np.sum(dxp * h_in, axis=(0, 1))]               # du = sum_t da_t * h_in
        if self.use_bias:
            grads.append(dxp.sum(axis=(0, 1)))                  # db = sum_t da_t
        return grads


class IndRNN(RNN):
    """``IndRNN(units)`` is ``RNN(IndRNNCell(units))``, with the loop's arguments too."""

    cell_class = IndRNNCell
    arguments = ("units", "activation", "use_bias", "kernel_initializer",
                 "recurrent_initializer", "bias_initializer", "dropout", "recurrent_dropout",
                 "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                 "seed")


ENTRY = register(CellType(
    IndRNNCell, IndRNN, "ind_rnn", "ind_rnn_cell",
    ("units", "activation", "use_bias", "kernel_initializer", "recurrent_initializer",
     "bias_initializer", "dropout", "recurrent_dropout", "seed"),
    blocks=1,
    # explain.equations: each line's result is the trace's value of that name (the cache)
    equations=(("a", "x_t @ kernel + bias + recurrent_kernel * h_prev"),
               ("h", "{activation}(a)")),
    symbols={"recurrent_kernel": "u"},                     # LaTeX: u, not U
    # explain.to_numpy_code: one step of NumPy inside the loop over t
    step_code=("h = {activation}(x[:, t] @ kernel + bias + recurrent_kernel * h)",)))
