"""GRU: the cell's step math, forward and backward beside it, and the ``GRU`` layer."""
import numpy as np

from .cells import Cell, project
from .dropout import apply_mask, is_per_gate, unmask
from .gates import (gate_kernel_gradient, gate_product, gate_product_backward, matmul_last,
                    stack_steps)
from .loop import RNN



def _split_gate_inputs(h_in):
    """The recurrent inputs of (z, r) and of the candidate: one per gate with per-gate masks."""
    return (h_in[:2], h_in[2]) if h_in.ndim == 3 else (h_in, h_in)


class GRUCell(Cell):
    r"""Gated recurrent unit (Cho et al., 2014), Keras's gate order z (update), r (reset), h.

    ``reset_after=True`` (the default, cuDNN's and PyTorch's form; ``bias (2, 3M)``)::

        xp_t = x_t @ kernel + bias[0]                 # project_inputs, every step at once
        rec = h_prev @ recurrent_kernel + bias[1]     # one product for all three gates
        xz, xr, xh = split(xp_t, 3);  rz, rr, rh = split(rec, 3)
        az = xz + rz;  z = recurrent_activation(az)
        ar = xr + rr;  r = recurrent_activation(ar)
        ah = xh + r * rh                              # reset applied after the product

    ``reset_after=False`` (``bias (3M,)``)::

        xp_t = x_t @ kernel + bias
        rec = h_prev @ recurrent_kernel[:, :2M];  rz, rr = split(rec, 2)
        az, z, ar, r as above
        rh_in = r * h_prev
        ah = xh + rh_in @ recurrent_kernel[:, 2M:]    # reset applied before the product

    then, in both::

        hh = activation(ah)
        h = z * h_prev + (1 - z) * hh                 # z weights the OLD state

    The output is ``h``; the state is ``[h]``. Weights: ``kernel (F, 3M)``,
    ``recurrent_kernel (M, 3M)``, columns split ``[z | r | h]``.

    Recurrent dropout: Keras multiplies ``h_prev`` by an independent mask for each gate
    (``rec_mask`` of shape ``(3, B, M)``, see ``gates.py``).
    """

    gates = 3
    config_options = ("units", "activation", "recurrent_activation", "use_bias", "dropout",
                      "recurrent_dropout", "reset_after", "seed")
    # The names of the values ``step`` returns in its cache, in order (for explain.trace).
    cache_names = ("h_prev", "h_in", "rec_mask", "az", "ar", "z", "r", "rh", "ah", "hh")

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, reset_after=True,
                 seed=None, implementation=2, **kwargs):
        super().__init__(units, activation, use_bias, kernel_initializer, recurrent_initializer,
                         bias_initializer, dropout, recurrent_dropout, seed,
                         recurrent_activation=recurrent_activation,
                         implementation=implementation, **kwargs)
        self.reset_after = reset_after

    def build(self, input_shape):
        f, m = input_shape[-1], self.units
        self.kernel = self.add_weight("kernel", (f, 3 * m), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (m, 3 * m),
                                                self.recurrent_initializer)
        self.bias = None
        if self.use_bias:
            shape = (2, 3 * m) if self.reset_after else (3 * m,)
            self.bias = self.add_weight("bias", shape, self.bias_initializer)
        self.built = True

    def project_inputs(self, x, out=None):
        bias = None if not self.use_bias else self.bias.value[0] if self.reset_after else self.bias.value
        return project(self, x, bias, out)

    def step(self, xp_t, states, rec_mask=None):
        (h_prev,) = states
        m = self.units
        rk = self.recurrent_kernel.value
        pg = is_per_gate(rec_mask)
        h_in = apply_mask(h_prev, rec_mask)                  # recurrent dropout, if any
        xz, xr, xh = xp_t[:, :m], xp_t[:, m:2 * m], xp_t[:, 2 * m:]
        if self.reset_after:
            rec = gate_product(h_in, rk, pg)                 # [rz | rr | rh] = h_in U (+ b1)
            if self.use_bias:
                rec = rec + self.bias.value[1]
            rz, rr, rh = rec[:, :m], rec[:, m:2 * m], rec[:, 2 * m:]
        else:
            h_zr, h_h = _split_gate_inputs(h_in)
            rec = gate_product(h_zr, rk[:, :2 * m], pg)      # [rz | rr] = h_in U[:, :2M]
            rz, rr = rec[:, :m], rec[:, m:]
        az = xz + rz
        z = self.recurrent_activation(az)                    # update gate
        ar = xr + rr
        r = self.recurrent_activation(ar)                    # reset gate
        if self.reset_after:
            ah = xh + r * rh                                 # reset applied after the product
        else:
            rh = None                                        # (no recurrent rh here)
            ah = xh + matmul_last(r * h_h, rk[:, 2 * m:])    # ... or before it
        hh = self.activation(ah)                             # candidate
        h = z * h_prev + (1 - z) * hh                        # z weights the OLD state
        return h, [h], (h_prev, h_in, rec_mask, az, ar, z, r, rh, ah, hh)

    def step_backward(self, cache, dout, dstates):
        h_prev, h_in, rec_mask, az, ar, z, r, rh, ah, hh = cache
        m = self.units
        rk = self.recurrent_kernel.value
        ract = self.recurrent_activation
        dh = dout + dstates[0]                          # h is both the output and the state
        # h = z*h_prev + (1-z)*hh:
        dz = dh * (h_prev - hh)                         #  =>  dz = dh*(h_prev - hh)
        dhh = dh * (1 - z)                              #  =>  dhh = dh*(1 - z)
        dh_prev = dh * z                                #  =>  dh_prev = dh*z (the direct path)
        dah = self.activation.backward(ah, hh, dhh)     # hh = act(ah)
        daz = ract.backward(az, z, dz)                  # z = ract(az), az = xz + rz
        if self.reset_after:
            dr = dah * rh                               # ah = xh + r*rh  =>  dr = dah*rh
            drh = dah * r                               # ah = xh + r*rh  =>  drh = dah*r
            dar = ract.backward(ar, r, dr)              # r = ract(ar), ar = xr + rr
            drec = np.concatenate([daz, dar, drh], axis=1)
            dh_in = gate_product_backward(drec, h_in, rk, is_per_gate(rec_mask))  # rec = h_in W_h + b1
        else:
            h_zr, h_h = _split_gate_inputs(h_in)
            drh_in = dah @ rk[:, 2 * m:].T              # ah = xh + rh_in W_hh  =>  drh_in = dah W_hh^T
            dr = drh_in * h_h                           # rh_in = r * h_h  =>  dr = drh_in*h_h
            dh_h = drh_in * r                           # rh_in = r * h_h  =>  dh_h = drh_in*r
            dar = ract.backward(ar, r, dr)              # r = ract(ar), ar = xr + rr
            dh_zr = gate_product_backward(              # [rz, rr] = h_zr @ W_h[:, :2M]
                np.concatenate([daz, dar], axis=1), h_zr, rk[:, :2 * m], is_per_gate(rec_mask))
            if h_in.ndim == 3:
                dh_in = np.concatenate([dh_zr, dh_h[None]])  # one h_in per gate: stack them
            else:
                dh_in = dh_zr + dh_h                    # one h_in feeds both products: add
        dh_prev = dh_prev + unmask(dh_in, rec_mask)     # h_in = h_prev * rec_mask
        dxp = np.concatenate([daz, dar, dah], axis=1)   # xp_t = [xz | xr | xh] enters az, ar, ah
        return dxp, [dh_prev]

    def weight_gradients(self, x, caches, dxp, stacked=None):
        m = self.units
        per_gate = stacked["h_in"].ndim == 4 if stacked else is_per_gate(caches[0][2])
        h_ins = stacked["h_in"] if stacked else stack_steps([c[1] for c in caches], per_gate)
        dkernel = gate_kernel_gradient(x, dxp, x.ndim == 4)            # sum_t x_t^T dxp_t
        h_zr, h_h = (h_ins[:2], h_ins[2]) if per_gate else (h_ins, h_ins)
        if self.reset_after:
            # d(rec) = dxp in the z and r blocks; in the h block ah = xh + r*rh => drh = dah*r
            if stacked:                          # the compiled path kept drh (r it did not)
                drh = stacked["drh"]
            else:
                drh = np.empty(dxp.shape[:-1] + (m,), dxp.dtype)
                for t, c in enumerate(caches):                      # (no stacked copy of r)
                    np.multiply(dxp[t, :, 2 * m:], c[6], out=drh[t])
            grads = [dkernel, np.concatenate([                          # sum_t h_in^T drec_t
                gate_kernel_gradient(h_zr, dxp[..., :2 * m], per_gate),
                gate_kernel_gradient(h_h, drh)], axis=1)]
            if self.use_bias:
                dxp_sum = dxp.sum(axis=(0, 1))
                grads.append(np.stack([dxp_sum,                          # db[0] = sum_t dxp_t
                                       np.concatenate([dxp_sum[:2 * m],  # db[1] = sum_t drec_t
                                                       drh.sum(axis=(0, 1))])]))
        else:
            rh_in = np.stack([c[6] for c in caches]) * h_h  # (T, B, M): rh_in = r * h_h
            drk = np.concatenate([
                gate_kernel_gradient(h_zr, dxp[..., :2 * m], per_gate),  # sum_t h_zr^T [daz|dar]
                np.tensordot(rh_in, dxp[..., 2 * m:], axes=([0, 1], [0, 1])),  # sum_t rh_in^T dah
            ], axis=1)
            grads = [dkernel, drk]
            if self.use_bias:
                grads.append(dxp.sum(axis=(0, 1)))                      # db = sum_t dxp_t
        return grads


class GRU(RNN):
    """The GRU layer: ``GRU(units)`` is ``RNN(GRUCell(units))`` with Keras's arguments.

    Input ``(batch, timesteps, features)``; output ``(batch, units)`` or, with
    ``return_sequences``, ``(batch, timesteps, units)``; ``return_state`` adds ``h``.
    ``reset_after=True`` (the default) matches cuDNN and ``torch.nn.GRU``.
    ``implementation`` and ``use_cudnn`` are accepted for compatibility: there is one NumPy
    code path.
    """

    cell_class = GRUCell
    arguments = ("units", "activation", "recurrent_activation", "use_bias",
                 "kernel_initializer", "recurrent_initializer", "bias_initializer",
                 "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                 "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                 "bias_constraint", "dropout", "recurrent_dropout", "seed", "return_sequences",
                 "return_state", "go_backwards", "stateful", "unroll", "reset_after",
                 "use_cudnn")
