"""LSTM: the cell's step math, forward and backward beside it, and the ``LSTM`` layer."""
import numpy as np

from ... import initializers
from .cells import Cell, project
from .dropout import apply_mask, is_per_gate, unmask
from .gates import gate_kernel_gradient, gate_product, gate_product_backward, stack_steps
from .loop import RNN


class _UnitForgetBias(initializers.Initializer):
    """Keras's LSTM bias with ``unit_forget_bias``: ``[init(M), ones(M), init(2M)]``."""

    def __init__(self, base, units):
        self.base, self.units = initializers.get(base), units

    def __call__(self, shape, dtype=None):
        m = self.units
        return np.concatenate([self.base((m,), dtype), np.ones((m,), dtype),
                               self.base((2 * m,), dtype)])


class LSTMCell(Cell):
    r"""Long short-term memory (Hochreiter & Schmidhuber, 1997), Keras's gate order i, f, c, o.

    With ``xp_t = x_t @ kernel`` (``project_inputs``, every step at once)::

        z = xp_t + h_prev @ recurrent_kernel + bias   # one product for all four gates
        zi, zf, zc, zo = split(z, 4)
        i = recurrent_activation(zi)                  # input gate
        f = recurrent_activation(zf)                  # forget gate
        g = activation(zc)                            # candidate cell value
        o = recurrent_activation(zo)                  # output gate
        c = f * c_prev + i * g
        tc = activation(c)
        h = o * tc

    The output is ``h``; the states are ``[h, c]``. Weights: ``kernel (F, 4M)``,
    ``recurrent_kernel (M, 4M)``, ``bias (4M,)``, columns split ``[i | f | c | o]``.
    With ``unit_forget_bias`` (the default) the bias starts as ``[init(M), ones(M), init(2M)]``.

    Recurrent dropout: Keras multiplies ``h_prev`` by an independent mask for each gate
    (``rec_mask`` of shape ``(4, B, M)``, see ``gates.py``).
    """

    gates = 4
    config_options = ("units", "activation", "recurrent_activation", "use_bias",
                      "unit_forget_bias", "dropout", "recurrent_dropout", "seed")
    # The names of the values ``step`` returns in its cache, in order (for explain.trace).
    cache_names = ("h_in", "rec_mask", "c_prev", "z", "i", "f", "g", "o", "c", "tc")

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, implementation=2, **kwargs):
        super().__init__(units, activation, use_bias, kernel_initializer, recurrent_initializer,
                         bias_initializer, dropout, recurrent_dropout, seed,
                         recurrent_activation=recurrent_activation,
                         implementation=implementation, **kwargs)
        self.unit_forget_bias = unit_forget_bias
        self.state_size = [self.units, self.units]                 # h and c

    def build(self, input_shape):
        f, m = input_shape[-1], self.units
        self.kernel = self.add_weight("kernel", (f, 4 * m), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (m, 4 * m),
                                                self.recurrent_initializer)
        self.bias = None
        if self.use_bias:
            init = (_UnitForgetBias(self.bias_initializer, m) if self.unit_forget_bias
                    else self.bias_initializer)
            self.bias = self.add_weight("bias", (4 * m,), init)
        self.built = True

    def project_inputs(self, x, out=None):
        return project(self, x, None, out)                # (the bias is added in ``step``)

    def step(self, xp_t, states, rec_mask=None):
        h_prev, c_prev = states
        m = self.units
        h_in = apply_mask(h_prev, rec_mask)               # recurrent dropout, if any
        z = xp_t + gate_product(h_in, self.recurrent_kernel.value, is_per_gate(rec_mask))
        if self.use_bias:
            z = z + self.bias.value                       # z = x W + h U + b, Keras's order
        i = self.recurrent_activation(z[:, :m])
        f = self.recurrent_activation(z[:, m:2 * m])
        g = self.activation(z[:, 2 * m:3 * m])
        o = self.recurrent_activation(z[:, 3 * m:])
        c = f * c_prev + i * g
        tc = self.activation(c)
        h = o * tc
        return h, [h, c], (h_in, rec_mask, c_prev, z, i, f, g, o, c, tc)

    def step_backward(self, cache, dout, dstates):
        h_in, rec_mask, c_prev, z, i, f, g, o, c, tc = cache
        m, ract = self.units, self.recurrent_activation
        dh = dout + dstates[0]                          # h is both the output and a state
        do = dh * tc                                    # h = o*tc  =>  do = dh*tc
        dtc = dh * o                                    # h = o*tc  =>  dtc = dh*o
        dc = dstates[1] + self.activation.backward(c, tc, dtc)  # tc = act(c); c is a state too
        di = dc * g                                     # c = f*c_prev + i*g  =>  di = dc*g
        df = dc * c_prev                                # c = f*c_prev + i*g  =>  df = dc*c_prev
        dg = dc * i                                     # c = f*c_prev + i*g  =>  dg = dc*i
        dc_prev = dc * f                                # c = f*c_prev + i*g  =>  dc_prev = dc*f
        dz = np.concatenate([ract.backward(z[:, :m], i, di),          # i = ract(zi)
                             ract.backward(z[:, m:2 * m], f, df),     # f = ract(zf)
                             self.activation.backward(z[:, 2 * m:3 * m], g, dg),  # g = act(zc)
                             ract.backward(z[:, 3 * m:], o, do)], axis=1)         # o = ract(zo)
        # z = xp_t + h_in U + b  =>  dxp_t = dz, dh_in = dz U^T
        dh_in = gate_product_backward(dz, h_in, self.recurrent_kernel.value, is_per_gate(rec_mask))
        dh_prev = unmask(dh_in, rec_mask)               # h_in = h_prev * rec_mask
        return dz, [dh_prev, dc_prev]

    def weight_gradients(self, x, caches, dxp, stacked=None):
        per_gate = stacked["h_in"].ndim == 4 if stacked else is_per_gate(caches[0][1])
        h_ins = stacked["h_in"] if stacked else stack_steps([c[0] for c in caches], per_gate)
        grads = [gate_kernel_gradient(x, dxp, x.ndim == 4),       # dW_x = sum_t x_t^T dz_t
                 gate_kernel_gradient(h_ins, dxp, per_gate)]       # dW_h = sum_t h_in^T dz_t
        if self.use_bias:
            grads.append(dxp.sum(axis=(0, 1)))                     # db   = sum_t dz_t
        return grads


class LSTM(RNN):
    """The LSTM layer: ``LSTM(units)`` is ``RNN(LSTMCell(units))`` with Keras's arguments.

    Input ``(batch, timesteps, features)``; output ``(batch, units)`` or, with
    ``return_sequences``, ``(batch, timesteps, units)``; ``return_state`` adds ``h`` and ``c``.
    ``initial_state`` is ``[h0, c0]``. ``implementation`` and ``use_cudnn`` are accepted for
    compatibility: there is one NumPy code path.
    """

    cell_class = LSTMCell
    arguments = ("units", "activation", "recurrent_activation", "use_bias",
                 "kernel_initializer", "recurrent_initializer", "bias_initializer",
                 "unit_forget_bias", "kernel_regularizer", "recurrent_regularizer",
                 "bias_regularizer", "activity_regularizer", "kernel_constraint",
                 "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout",
                 "seed", "return_sequences", "return_state", "go_backwards", "stateful",
                 "unroll", "use_cudnn")
