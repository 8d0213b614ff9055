"""Recurrent cells: the math of one time step, forward and backward side by side, and
the SimpleRNN layer (LSTM and GRU live in lstm.py and gru.py, each with its cell).

A cell knows nothing about sequences, masks or directions — ``recurrent.RNN`` owns the
time loop. A cell provides:

``project_inputs(x, out=None)``
    the input part of every time step at once, ``x @ kernel (+ bias)``, one matrix product
    over ``(T, B, F)`` (written into ``out`` when given).
``step(xp_t, states, rec_mask, folded=False) -> (output, new_states, cache)``
    one step from the projected input ``xp_t`` and the previous states.
``folds(dtype, batch)`` (optional)
    True when the cell folds its input product into the recurrent one (SimpleRNN and
    LSTM, float32 with the compiled kernels, large enough): ``z = [x_t | h] @ [kernel;
    recurrent_kernel]``, one matrix product per step whose inner dimension F+M runs at
    BLAS's full rate, where a separate ``x @ kernel`` (F = 16 to 64) runs at half of it.
    ``RNN`` then projects nothing and calls ``step(x_t, states, rec_mask, True)``; the
    compiled loops take the inputs themselves. Not with recurrent dropout (it masks h
    alone) or per-gate input masks.
``step_backward(cache, doutput, dstates) -> (dxp_t, dstates_prev)``
    the same step backwards: dLoss/d(xp_t) and dLoss/d(previous states), given
    dLoss/d(output) and dLoss/d(new states). The compiled LSTM and GRU steps
    (``unrolled.kernels``) write dxp_t over the activations in their cache, so a step's
    cache serves one backward call (``RNN.backward`` then uses the xp buffer as dxp).
``sequence_ready(dtype)``, ``run_steps``, ``train_steps``, ``backward_steps`` (optional)
    inference, the training forward, and BPTT over a chunk of steps, each in one compiled
    call, with the same numbers as ``step``/``step_backward`` t by t (``unrolled.kernels``);
    ``RNN`` uses them, with or without a mask, and for training with recurrent dropout
    when the cell sets ``compiled_dropout`` (``train_steps(..., rec_mask)``).
    ``training_buffer`` (optional) says where the training forward writes the projected
    inputs.
``weight_gradients(x, caches, dxp, stacked=None)``
    dLoss/d(weights) summed over the steps given, each as a single matrix product.
    ``stacked`` (from ``backward_steps``) holds operands already stacked over those steps,
    slices of the training buffers, in place of stacking them from ``caches``.
    ``RNN.backward`` calls it on consecutive chunks of steps and adds the results, so
    its stacked operands stay a fraction of the sequence.

Naming: ``d<name>`` is dLoss/d<name>, as in min-char-rnn.
"""
import numpy as np

from .. import activations, initializers, kernels
from .base import Layer
from .gates import (StepCaches, add_gate_product, apply_mask, fold_chunks, folded_product,
                    gate_kernel_gradient, gate_product, stack_steps, transposed)
from .recurrent import RNN


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
    """A cell's ``project_inputs``: ``x @ kernel + bias`` for all steps, one product (into
    ``out`` when given). The compiled steps add the bias themselves, so it is left out then.
    (SimpleRNN and LSTM pass no bias: their steps add it after the recurrent product.)"""
    xp = gate_product(x, cell.kernel.value, per_gate=x.ndim == 4, out=out)
    if bias is not None and not cell._compiled(x.dtype):
        xp += bias
    return xp


class SimpleRNNCell(Layer):
    r"""The Elman cell of the seed notebook.

    .. math::  h_t = \mathrm{activation}(x_t W_x + h_{t-1} W_h + b)

    In code: ``a = xp_t + h_prev @ recurrent_kernel + bias`` with ``xp_t = x_t @ kernel``,
    and ``h = activation(a)``. The output is ``h``; the state is ``[h]``. (Keras adds the
    bias to ``x_t @ kernel`` first; adding it last lets BLAS add the recurrent product into
    ``xp_t`` itself, ``gates.add_gate_product``. The sums agree to float rounding.) When the
    cell ``folds`` (float32, compiled), ``a = [x_t | h_prev] @ [kernel; recurrent_kernel]
    + bias``, one product.

    Weights (Keras's layout): ``kernel (F, units)``, ``recurrent_kernel (units, units)``,
    ``bias (units,)``. Defaults: glorot_uniform, orthogonal, zeros.
    """

    # The names of the values ``step`` returns in its cache, in order (for explain.trace).
    cache_names = ("h_in", "a", "h", "rec_mask")
    # BPTT writes dxp to a new buffer (h lives in xp): RNN._backward_chunk sizes chunks by it.
    separate_dxp = True

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.state_size = [self.units]
        self.output_size = self.units

    def build(self, input_shape):
        f, m = input_shape[-1], self.units
        self.kernel = self.add_weight("kernel", (f, m), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (m, m), self.recurrent_initializer)
        self.bias = self.add_weight("bias", (m,), self.bias_initializer) if self.use_bias else None
        self.built = True

    def project_inputs(self, x, out=None):
        return project(self, x, None, out)               # (the bias is added in ``step``)

    def step(self, xp_t, states, rec_mask=None, folded=False):
        (h_prev,) = states
        h_in = apply_mask(h_prev, rec_mask)                  # recurrent dropout, if any
        if folded:                                           # xp_t is x_t: a = [x_t | h] [W_x; W_h]
            a = folded_product(self, xp_t, h_in)
        else:
            a = xp_t                                         # (the loop's buffer, reused in place)
            add_gate_product(h_in, self.recurrent_kernel.value, False, a)  # a += h_{t-1} W_h
        if self._compiled(a.dtype):                          # the lines below, compiled, the
            bias = self.bias.value if self.use_bias else None   # bias added there, h over a
            kernels.call("simple_forward", a, kernels.bias_or_zeros(bias, a.shape[-1], a.dtype),
                         self._relu)
            return a, [a], (h_in, None, a, rec_mask)
        if self.use_bias:
            a += self.bias.value                             # a = x W_x + h_{t-1} W_h + b
        h = self.activation(a)                               # h = activation(a)
        return h, [h], (h_in, a, h, rec_mask)

    def sequence_ready(self, dtype):
        """True when ``run_steps`` is compiled for ``dtype`` (``kernels.sequence``)."""
        return self._compiled(dtype) and kernels.sequence(dtype, self.units)

    def run_steps(self, xp, states, ys, mask=None, fold=None):
        """Inference over all the steps of ``xp`` in one compiled call: ``step`` for t = 0, 1,
        ..., bit for bit, with ``ys[:, t]`` the output of step t when ``ys`` is given. With
        ``mask`` = (m, out, zero_output), each step is masked as ``RNN``'s step path does
        (see ``kernels.run_sequence``), and the output returned is ``out``, the last masked
        one. Folded, ``fold`` = (x, o, fk) (``kernels.NO_FOLD`` says what) and ``xp`` is only
        where the steps write ``a``. Returns (output, [h])."""
        dt = xp.dtype
        bias = kernels.bias_or_zeros(self.bias.value if self.use_bias else None, self.units, dt)
        h0 = np.array(states[0], dt, order="C")
        if fold is not None and mask is None:
            h = kernels.run_sequence("simple_folded", *fold, xp[0], bias, self._relu, h0, ys)
        else:
            rk = kernels.blas_operand(self.recurrent_kernel.value)
            if mask is not None:                       # (the masked loop folds or not)
                rk += fold or kernels.NO_FOLD
            h = kernels.run_sequence("simple_sequence", xp, bias, *rk, self._relu, h0, ys,
                                     mask=mask)
        return (h if mask is None else mask[1]), [h]

    def training_buffer(self, xs):
        """Where the training forward projects the inputs: ``H[1:]`` of a ``(T+1, B, M)``
        buffer ``H``. ``train_steps`` writes h0 to ``H[0]`` and h_t over ``H[t+1]``, so the
        previous states h_{t-1} of any steps t0 .. t1-1 are one slice, ``H[t0:t1]``, which
        BPTT's weight gradient reads without a stacked copy."""
        T, B = xs.shape[-3], xs.shape[-2]
        return np.empty((T + 1, B, self.units), xs.dtype)[1:]

    compiled_dropout = True           # train_steps takes a recurrent dropout mask

    def train_steps(self, xp, states, ys, mask=None, rec_mask=None, fold=None):
        """The training forward of all steps in one compiled call: ``step`` for t = 0, 1, ...,
        bit for bit, with h_t written over xp[t] as the compiled step does (carried over
        masked steps; ``mask`` as in ``run_steps``; ``rec_mask`` (B, M) recurrent dropout).
        ``xp`` comes from ``training_buffer``. Folded, ``fold`` = (xs, chunk, o, fk): one
        call per chunk of the time-major inputs xs (``gates.fold_chunks``). Returns
        (output, [h], step caches viewing the buffer, buffers)."""
        H = xp.base
        if (H is None or H.shape != (len(xp) + 1,) + xp.shape[1:]
                or H[1:].ctypes.data != xp.ctypes.data):
            raise ValueError("SimpleRNNCell.train_steps needs xp = training_buffer(...), "
                             "the steps after h0 in one buffer.")
        H[0] = states[0]
        bias = kernels.bias_or_zeros(self.bias.value if self.use_bias else None, self.units,
                                     xp.dtype)
        rm = np.zeros((0, 0), xp.dtype) if rec_mask is None else np.ascontiguousarray(rec_mask)
        rk = kernels.blas_operand(self.recurrent_kernel.value)
        m, out, zero_out = kernels.mask_arguments(mask, xp.dtype)
        for t0, t1, f in fold_chunks(fold, len(xp)):
            kernels.run_sequence("simple_train_sequence", xp[t0:t1], bias, *rk,
                                 *(f or kernels.NO_FOLD), self._relu, H[t0],
                                 m[t0:t1], out, zero_out, rm, None if ys is None else ys[:, t0:t1])
        caches = StepCaches(lambda t: (apply_mask(H[t], rec_mask), None, H[t + 1], rec_mask),
                            0, len(xp))
        return H[-1] if mask is None else mask[1], [H[-1]], caches, (H, rm)

    def backward_steps(self, buffers, t0, t1, dy, first, dstates, mask=None):
        """``step_backward`` for t = t1-1 ... t0 in one compiled call. Returns the updated
        ``dstates``, dxp of those steps (a new array: h stays in the buffer) and the
        stacked operands of ``weight_gradients`` (the previous states, a slice). ``mask`` as
        in ``LSTMCell.backward_steps``."""
        H, rm = buffers
        dxp = np.empty((t1 - t0,) + H.shape[1:], H.dtype)
        kernels.call("simple_backward_steps", t0, t1, dy, first, H[1:],
                     *kernels.blas_operand(self.recurrent_kernel.value.T), self._relu,
                     dstates[0], dxp,
                     *kernels.mask_arguments(mask, H.dtype), rm)
        return dstates, dxp, {"h_in": H[t0:t1] if not rm.size else H[t0:t1] * rm}

    def _compiled(self, dtype):
        """True when ``kernels`` runs this step: float32, numba present, tanh or relu. It
        adds the bias as the lines do: ``(x W_x + h W_h) + b``."""
        return (self.activation is activations.tanh or self._relu) and kernels.fused(dtype)

    # The fold pays where the recurrent product is large: measured in one process, fold /
    # projection, predict_on_batch 0.92 at (1024,100,64,512), 0.96-1.00 at (256,100,32,256),
    # but 1.07-1.22 at (128,50,16,64) to (256,50,32,128): widening K from M to F+M costs
    # BLAS 15-25% at those sizes, more than the projection it saves.
    fold_min_macs = 2 ** 24       # B * M * M, the recurrent product's multiply-adds per step

    def folds(self, dtype, batch):
        """True when the steps fold the input product into the recurrent one (``RNN`` then
        passes ``step`` x_t with ``folded``): ``a = [x_t | h] @ [W_x; W_h]``, one product,
        then ``+ b``. Whenever this cell compiles and the product is large enough
        (``fold_min_macs``), in ``explain``'s lines too."""
        return (batch * self.units ** 2 >= self.fold_min_macs and self.units > 1
                and (self.activation is activations.tanh or self._relu) and kernels.folds(dtype))

    @property
    def _relu(self):
        return self.activation is activations.relu

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

    def get_config(self):
        """Keras's cell config: the base layer's (name, trainable, dtype), then the
        cell's options (``cell_config``)."""
        return {**super().get_config(), **self.cell_config()}

    def cell_config(self):
        return {"units": self.units, "activation": self.activation.name,
                "use_bias": self.use_bias, "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout}


class SimpleRNN(RNN):
    """Fully-connected RNN whose output is fed back as the next step's state.

    ``SimpleRNN(units)`` is ``RNN(SimpleRNNCell(units))`` with Keras's arguments::

        h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)
    """

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, seed=None, **kwargs):
        rnn_kwargs = {k: kwargs.pop(k) for k in ("zero_output_for_mask", "implementation")
                      if k in kwargs}
        cell = SimpleRNNCell(units, activation=activation, use_bias=use_bias,
                             kernel_initializer=kernel_initializer,
                             recurrent_initializer=recurrent_initializer,
                             bias_initializer=bias_initializer, dropout=dropout,
                             recurrent_dropout=recurrent_dropout, seed=seed,
                             dtype=kwargs.get("dtype"), name="simple_rnn_cell")
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         **rnn_kwargs, **kwargs)

    def get_config(self):
        return {**super().get_config(), **self.cell.cell_config()}
