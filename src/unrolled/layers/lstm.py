"""LSTM: the cell's step math, forward and backward beside it, and the ``LSTM`` layer."""
import numpy as np

from .. import activations, initializers, kernels
from .base import Layer
from .cells import _check_rate, _check_units, project
from .gates import (add_gate_product, apply_mask, fold_chunks, folded_product,
                    gate_kernel_gradient, gate_product_backward, GateActivations, StepCaches,
                    dropout_operands, is_per_gate, stack_steps, unmask)
from .recurrent import RNN

_c = kernels.contiguous




class _UnitForgetBias(initializers.Initializer):
    """Keras's LSTM bias with ``unit_forget_bias``: ``[init(M), ones(M), init(2M)]``."""

    def __init__(self, base, units):
        self.base, self.units = initializers.get(base), units

    def __call__(self, shape, dtype=None):
        m = self.units
        return np.concatenate([self.base((m,), dtype), np.ones((m,), dtype),
                               self.base((2 * m,), dtype)])


class LSTMCell(Layer):
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

    When the cell ``folds`` (float32 with the compiled kernels), the first line is one
    product, ``z = [x_t | h_prev] @ [kernel; recurrent_kernel] + bias``.

    The output is ``h``; the states are ``[h, c]``. Weights: ``kernel (F, 4M)``,
    ``recurrent_kernel (M, 4M)``, ``bias (4M,)``, columns split ``[i | f | c | o]``.
    With ``unit_forget_bias`` (the default) the bias starts as ``[init(M), ones(M), init(2M)]``.

    Recurrent dropout: Keras multiplies ``h_prev`` by an independent mask for each gate
    (``rec_mask`` of shape ``(4, B, M)``, see ``gates.py``).
    """

    gates = 4
    # The names of the values ``step`` returns in its cache, in order (for explain.trace).
    cache_names = ("h_in", "rec_mask", "c_prev", "z", "i", "f", "g", "o", "c", "tc", "a")

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, implementation=2, **kwargs):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        # Keras draws one dropout mask per gate (inputs and state) in its "implementation 1",
        # which recurrent_dropout > 0 forces; otherwise one input mask shared by all gates.
        per_gate = implementation == 1 or self.recurrent_dropout > 0
        self.dropout_mask_count = self.gates if per_gate else 1
        self.state_size = [self.units, self.units]
        ract = self.recurrent_activation
        self._gates = GateActivations([ract, ract, self.activation, ract], self.units)
        self.output_size = self.units

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
        # The bias comes after the recurrent product, z = (x W + h U) + b: BLAS can add h U
        # into the projected inputs (gates.add_gate_product), which saves a pass per step.
        return project(self, x, None, out)

    def step(self, xp_t, states, rec_mask=None, folded=False):
        h_prev, c_prev = states
        m = self.units
        h_in = apply_mask(h_prev, rec_mask)               # recurrent dropout, if any
        if folded:                                        # xp_t is x_t: z = [x_t | h] [W_x; W_h]
            z = folded_product(self, xp_t, h_in)
        else:
            z = xp_t                                      # (the loop's buffer, reused in place)
            add_gate_product(h_in, self.recurrent_kernel.value, is_per_gate(rec_mask), z)
        if self._compiled(z.dtype):                       # the lines below, one compiled loop
            c, h = np.empty_like(c_prev), np.empty_like(c_prev)   # (bias added there), a
            bias = kernels.bias_or_zeros(self.bias.value if self.use_bias else None,
                                         z.shape[-1], z.dtype)    # written over z; the
            kernels.call("lstm_forward", z, bias, _c(c_prev, z.dtype), c, h)      # backward
            a = z                                                 # recomputes tanh(c)
            return h, [h, c], (h_in, rec_mask, c_prev, None, None, None, None, None, c, None, a)
        if self.use_bias:                                 # z = xp_t + h_in W_h (added above)
            z += self.bias.value                          #     + b
        a = self._gates(z)                                # [i | f | g | o], all gates at once
        i, f, g, o = a[:, :m], a[:, m:2 * m], a[:, 2 * m:3 * m], a[:, 3 * m:]
        c = f * c_prev
        c += i * g                                        # c = f*c_prev + i*g
        tc = self.activation(c)
        h = o * tc                                        # h = o*tanh(c)
        return h, [h, c], (h_in, rec_mask, c_prev, z, i, f, g, o, c, tc, a)

    def step_backward(self, cache, dout, dstates):
        h_in, rec_mask, c_prev, z, i, f, g, o, c, tc, a = cache
        rk = self.recurrent_kernel.value
        if z is None:                                   # the compiled step ran: the lines
            dz, dc_prev = a, np.empty_like(c_prev)      # below, compiled, dz written over a
            kernels.call("lstm_backward", _c(dout, a.dtype), _c(dstates[0], a.dtype),
                         _c(dstates[1], a.dtype), a, c_prev, c, dc_prev)
        else:
            dz, dc_prev = self._step_backward_numpy(cache, dout, dstates)
        dh_in = gate_product_backward(dz, h_in, rk, is_per_gate(rec_mask))  # z = xp_t + h_in W_h
        dh_prev = unmask(dh_in, rec_mask)               # h_in = h_prev * rec_mask
        return dz, [dh_prev, dc_prev]                   # z = xp_t + ...  =>  dxp_t = dz

    def _step_backward_numpy(self, cache, dout, dstates):
        h_in, rec_mask, c_prev, z, i, f, g, o, c, tc, a = cache
        dh = dout + dstates[0]                          # h is both the output and a state
        do = dh * tc                                    # h = o*tc  =>  do = dh*tc
        dtc = dh * o                                    # h = o*tc  =>  dtc = dh*o
        dc = dstates[1] + self.activation.backward(c, tc, dtc)  # tc = act(c); c is a state too
        di = dc * g                                     # c = f*c_prev + i*g  =>  di = dc*g
        df = dc * c_prev                                # c = f*c_prev + i*g  =>  df = dc*c_prev
        dg = dc * i                                     # c = f*c_prev + i*g  =>  dg = dc*i
        dc_prev = dc * f                                # c = f*c_prev + i*g  =>  dc_prev = dc*f
        da = np.concatenate([di, df, dg, do], axis=1)
        dz = self._gates.backward(z, a, da)             # [i|f|g|o] = [ract|ract|act|ract](z)
        return dz, dc_prev

    def sequence_ready(self, dtype):
        """True when ``run_steps`` is compiled for ``dtype`` (``kernels.sequence``)."""
        return self._compiled(dtype) and kernels.sequence(dtype, self.units)

    def run_steps(self, xp, states, ys, mask=None, fold=None):
        """Inference over all the steps of ``xp`` in one compiled call: ``step`` for t = 0, 1,
        ..., bit for bit, with ``ys[:, t]`` the output of step t when ``ys`` is given. With
        ``mask`` = (m, out, zero_output), each step is masked as ``RNN``'s step path does
        (see ``kernels.run_sequence``), and the output returned is ``out``, the last masked
        one. Folded, ``fold`` = (x, o, fk) as in ``SimpleRNNCell.run_steps``. Returns
        (output, [h, c])."""
        dt = xp.dtype
        bias = kernels.bias_or_zeros(self.bias.value if self.use_bias else None, xp.shape[-1], dt)
        h0, c0 = (np.array(s, dt, order="C") for s in states)
        if fold is not None and mask is None:
            h, c = kernels.run_sequence("lstm_folded", *fold, xp[0], bias, h0, c0, ys)
        else:
            rk = kernels.blas_operand(self.recurrent_kernel.value)
            if mask is not None:                       # (the masked loop folds or not)
                rk += fold or kernels.NO_FOLD
            h, c = kernels.run_sequence("lstm_sequence", xp, bias, *rk, h0, c0, ys, mask=mask)
        return (h if mask is None else mask[1]), [h, c]

    compiled_dropout = True           # train_steps takes recurrent dropout masks

    def train_steps(self, xp, states, ys, mask=None, rec_mask=None, fold=None):
        """The training forward of all steps in one compiled call: ``step`` for t = 0, 1, ...,
        bit for bit, keeping h and c in ``(T+1, B, M)`` buffers (``H[t+1] = h_t``, carried
        over masked steps) and the gates over ``xp``; ``mask`` as in ``run_steps``, and
        ``rec_mask`` per-gate recurrent dropout masks (G, B, M). Folded, ``fold`` as in
        ``SimpleRNNCell.train_steps``. Returns (output, [h, c], step caches viewing the
        buffers, buffers)."""
        T, B, _ = xp.shape
        H = np.empty((T + 1, B, self.units), xp.dtype)
        C = np.empty_like(H)
        H[0], C[0] = states
        bias = kernels.bias_or_zeros(self.bias.value if self.use_bias else None, xp.shape[-1],
                                     xp.dtype)
        rk = self.recurrent_kernel.value
        drop = None if rec_mask is None else dropout_operands(rk, rec_mask)
        rm, fw, fw_f, _ = kernels.dropout_arguments(drop, xp.dtype)
        m, out, zero_out = kernels.mask_arguments(mask, xp.dtype)
        for t0, t1, f in fold_chunks(fold, T):
            kernels.run_sequence("lstm_train_sequence", xp[t0:t1], bias, *kernels.blas_operand(rk),
                                 *(f or kernels.NO_FOLD), H[t0:t1 + 1],
                                 C[t0:t1 + 1], m[t0:t1], out, zero_out, rm, fw, fw_f,
                                 None if ys is None else ys[:, t0:t1])
        caches = StepCaches(lambda t: (apply_mask(H[t], rec_mask), rec_mask, C[t], None, None,
                                       None, None, None, C[t + 1], None, xp[t]), 0, T)
        return H[T] if mask is None else mask[1], [H[T], C[T]], caches, (xp, H, C, drop)

    def backward_steps(self, buffers, t0, t1, dy, first, dstates, mask=None):
        """``step_backward`` for t = t1-1 ... t0 in one compiled call, on ``train_steps``'s
        buffers. ``dstates`` (C-contiguous, float32) are updated in place; returns them,
        dxp of those steps, written over the gates in xp, and the stacked operands of
        ``weight_gradients`` (the previous states, a slice of H). ``mask`` = (m, dcarry,
        zero_output): dcarry (B, M) holds dLoss/d(output) passed back over masked steps, from
        call to call."""
        xp, H, C, drop = buffers
        dh, dc = dstates
        rm, _, _, bw = kernels.dropout_arguments(drop, xp.dtype)
        dc = kernels.call("lstm_backward_steps", t0, t1, dy, first, xp, C,
                          *kernels.blas_operand(self.recurrent_kernel.value.T), dh, dc,
                          *kernels.mask_arguments(mask, xp.dtype), rm, bw)
        h_in = H[t0:t1] if drop is None else apply_mask(H[t0:t1], drop[0], time_axis=True)
        return [dh, dc], xp[t0:t1], {"h_in": h_in}

    def _compiled(self, dtype):
        """True when ``kernels`` runs this step: float32, numba present, default activations.
        The compiled step adds the bias as the lines do: ``(x W_x + h W_h) + b``."""
        return self._gates.default_lstm and kernels.fused(dtype)

    # Measured in one process, fold / projection, predict_on_batch: 0.86-0.93 from
    # (64,50,16,64) to (256,100,32,256), 0.95 at (1024,100,64,512); 0.97 at (32,50,16,64)
    # and 1.06 at the notebook's size (1,10,3,5), where it is all overhead.
    fold_min_macs = 2 ** 20       # B * M * 4M, the recurrent product's multiply-adds per step

    def folds(self, dtype, batch):
        """True when the steps fold the input product into the recurrent one, ``z = [x_t |
        h] @ [W_x; W_h]`` then ``+ b`` (see ``SimpleRNNCell.folds``)."""
        return (batch * 4 * self.units ** 2 >= self.fold_min_macs and self._gates.default_lstm
                and kernels.folds(dtype))

    def weight_gradients(self, x, caches, dxp, stacked=None):
        per_gate = stacked["h_in"].ndim == 4 if stacked else is_per_gate(caches[0][1])
        h_ins = stacked["h_in"] if stacked else stack_steps([c[0] for c in caches], per_gate)
        grads = [gate_kernel_gradient(x, dxp, x.ndim == 4),       # dW_x = sum_t x_t^T dz_t
                 gate_kernel_gradient(h_ins, dxp, per_gate)]       # dW_h = sum_t h_in^T dz_t
        if self.use_bias:
            grads.append(dxp.sum(axis=(0, 1)))                     # db   = sum_t dz_t
        return grads

    def get_config(self):
        """Keras's cell config: the base layer's (name, trainable, dtype), then the
        cell's options (``cell_config``)."""
        return {**super().get_config(), **self.cell_config()}

    def cell_config(self):
        return {"units": self.units, "activation": self.activation.name,
                "recurrent_activation": self.recurrent_activation.name,
                "use_bias": self.use_bias, "unit_forget_bias": self.unit_forget_bias,
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed}


class LSTM(RNN):
    """The LSTM layer: ``LSTM(units)`` is ``RNN(LSTMCell(units))`` with Keras's arguments.

    Input ``(batch, timesteps, features)``; output ``(batch, units)`` or, with
    ``return_sequences``, ``(batch, timesteps, units)``; ``return_state`` adds ``h`` and ``c``.
    ``initial_state`` is ``[h0, c0]``. ``implementation`` and ``use_cudnn`` are accepted for
    compatibility: there is one NumPy code path.
    """

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, use_cudnn="auto", **kwargs):
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"Invalid value for argument `use_cudnn`: expected one of "
                             f"'auto', True, False; received {use_cudnn!r}.")
        self.use_cudnn = use_cudnn
        implementation = kwargs.pop("implementation", 2)
        rnn_kwargs = {k: kwargs.pop(k) for k in ("zero_output_for_mask",) if k in kwargs}
        cell = LSTMCell(units, activation=activation, recurrent_activation=recurrent_activation,
                        use_bias=use_bias, kernel_initializer=kernel_initializer,
                        recurrent_initializer=recurrent_initializer,
                        bias_initializer=bias_initializer, unit_forget_bias=unit_forget_bias,
                        dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
                        implementation=implementation, dtype=kwargs.get("dtype"),
                        name="lstm_cell")
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         **rnn_kwargs, **kwargs)

    def get_config(self):
        return {**super().get_config(), **self.cell.cell_config()}
