"""Whole-sequence training loops of the fast path: the training forward and BPTT, a chunk
of steps per compiled call, with sequence masks and recurrent dropout.

The steps are the inference loops' (``sequences``), keeping what BPTT needs in
whole-sequence buffers; BPTT runs the steps backwards. Every product is ``blas.matmul``
(NumPy's own BLAS, called as ``np.dot`` calls it); the results equal the reference cells'
within float32 rounding (tests/unit/test_fast.py). H[t] is h_{t-1} (H[0] the initial state).
"""
import numpy as np

from .blas import matmul, matmul_add
from .sequences import carry, fold_product, mask_output, step_product
from .steps import (gru_backward, gru_forward, jit, lstm_backward, lstm_forward, one,
                    simple_forward, zero)



@jit
def fill_dout(dout, dy, first, t):
    """dLoss/d(output_t): dy[:, t - first] from step ``first`` on, else 0."""
    if t >= first:
        dout[:, :] = dy[:, t - first, :]
    else:
        dout[:, :] = zero


# Recurrent dropout (per-gate masks, as Keras draws them): gate g's block of the
# recurrent product uses h * rmask[g], one product per gate, as gates.gate_product does.
@jit
def dropped_products(h, rmask, fw, fw_f, hin, part, out, add):
    """out[:, gate g] = (h * rmask[g]) @ block g for each gate (added to out when add), in
    gate_product's np.dot calls: fw[g] is block g in C order, or its transpose when fw_f
    (Fortran blocks)."""
    n = part.shape[1]
    for g in range(rmask.shape[0]):
        for b in range(h.shape[0]):
            hb, mb, ib = h[b], rmask[g, b], hin[b]
            for j in range(hb.shape[0]):
                ib[j] = hb[j] * mb[j]
        if fw_f:
            matmul(hin, fw[g].T, True, part)
        else:
            matmul(hin, fw[g], False, part)
        for b in range(h.shape[0]):
            ob, pb = out[b], part[b]
            for j in range(n):
                ob[g * n + j] = ob[g * n + j] + pb[j] if add else pb[j]


@jit
def dropped_products_backward(dz, rmask, bw, dzg, part, dh):
    """dh = sum over gates g, in order, of (dz[:, gate g] @ block g^T) * rmask[g]: what
    gates.gate_product_backward and then gates.unmask compute."""
    n = bw.shape[1]
    for g in range(rmask.shape[0]):
        for b in range(dz.shape[0]):
            zb, gb = dz[b], dzg[b]
            for j in range(n):
                gb[j] = zb[g * n + j]
        matmul(dzg, bw[g], False, part)
        for b in range(dh.shape[0]):
            db, pb, mb = dh[b], part[b], rmask[g, b]
            for j in range(db.shape[0]):
                db[j] = pb[j] * mb[j] if g == 0 else db[j] + pb[j] * mb[j]


@jit
def recurrent_product(h, rk, rk_f, rmask, fw, fw_f, out, add):
    """out = h @ rk (out += h @ rk when add, BLAS adding it), or with recurrent dropout
    (rmask has gates) ``dropped_products``."""
    if rmask.shape[0] > 0:
        hin = np.empty_like(h)
        part = np.empty((h.shape[0], out.shape[1] // rmask.shape[0]), np.float32)
        dropped_products(h, rmask, fw, fw_f, hin, part, out, add)
    elif add:
        matmul_add(h, rk, rk_f, out)
    else:
        matmul(h, rk, rk_f, out)


@jit
def recurrent_product_backward(dz, rk_t, rk_t_f, rmask, bw, dh):
    """dh = dz @ rk^T, or with recurrent dropout ``dropped_products_backward``."""
    if rmask.shape[0] > 0:
        dzg = np.empty((dz.shape[0], bw.shape[1]), np.float32)
        part = np.empty_like(dh)
        dropped_products_backward(dz, rmask, bw, dzg, part, dh)
    else:
        matmul(dz, rk_t, rk_t_f, dh)


@jit
def lstm_train_sequence(xp, bias, rk, rk_f, x, o, fk, H, C, m, out, zero_out, rmask, fw,
                        fw_f, ys, keep):
    """Forward: gates over xp[t], c_t in C[t+1], h_t in H[t+1]. With a mask (m has
    rows), masked rows carry their states and ``out`` is the last output, as in
    ``lstm_sequence_masked``. With recurrent dropout, ``dropped_products``; folded (x
    has steps), ``step_product``."""
    masked = m.shape[0] > 0
    for t in range(xp.shape[0]):
        if x.shape[0] > 0:                                   # the fold: [x_t | h] @ fk
            fold_product(x[t], H[t], o, fk, xp[t])
        else:
            recurrent_product(H[t], rk, rk_f, rmask, fw, fw_f, xp[t], True)  # xp[t] += h U
        lstm_forward(xp[t], bias, C[t], C[t + 1], H[t + 1])
        if masked:
            mask_output(m[t], H[t + 1], out, zero_out)
            carry(m[t], H[t + 1], H[t])
            carry(m[t], C[t + 1], C[t])
        if keep:
            ys[:, t, :] = out if masked else H[t + 1]


# A masked step (RNN._backward_steps): its output was the last output, so dLoss/d(out)
# goes on to the step before (``dcarry``, unless zero_output_for_mask), and its states
# passed through, so their gradients skip the step; the step itself sees zeros.
@jit
def hold_masked(keep_t, dout, dcarry, zero_out, dh, pass_h):
    """Before a step's backward: dout += dcarry; then for masked rows dcarry = dout,
    pass_h = dh, and dout = dh = 0; for kept rows dcarry = 0."""
    for b in range(dout.shape[0]):
        ob, hb = dout[b], dh[b]
        if not zero_out:
            cb = dcarry[b]
            for j in range(ob.shape[0]):
                ob[j] = ob[j] + cb[j]
                cb[j] = zero if keep_t[b] else ob[j]
        if not keep_t[b]:
            pb = pass_h[b]
            for j in range(ob.shape[0]):
                ob[j] = zero
            for j in range(hb.shape[0]):
                pb[j], hb[j] = hb[j], zero


@jit
def hold_state(keep_t, d, passed):
    """passed = d, d = 0 on masked rows."""
    for b in range(d.shape[0]):
        if not keep_t[b]:
            db, pb = d[b], passed[b]
            for j in range(db.shape[0]):
                pb[j], db[j] = db[j], zero


@jit
def release_state(keep_t, d, passed):
    """After a step's backward: d += passed on masked rows."""
    for b in range(d.shape[0]):
        if not keep_t[b]:
            db, pb = d[b], passed[b]
            for j in range(db.shape[0]):
                db[j] = db[j] + pb[j]


@jit
def lstm_backward_steps(t0, t1, dy, first, xp, C, rk_t, rk_t_f, dh, dc, m, dcarry,
                        zero_out, rmask, bw):
    """BPTT over steps t1-1 ... t0: dz over the gates in xp[t]; dh, dc hold dLoss/dh_t,
    dLoss/dc_t of the step after and become those of step t0's inputs. With a mask (m
    has rows), masked steps as ``hold_masked`` says; dcarry lives across calls."""
    dout, dc_prev = np.empty_like(dh), np.empty_like(dc)
    pass_h, pass_c = np.empty_like(dh), np.empty_like(dc)
    masked = m.shape[0] > 0
    for t in range(t1 - 1, t0 - 1, -1):
        fill_dout(dout, dy, first, t)
        if masked:
            hold_masked(m[t], dout, dcarry, zero_out, dh, pass_h)
            hold_state(m[t], dc, pass_c)
        lstm_backward(dout, dh, dc, xp[t], C[t], C[t + 1], dc_prev)
        recurrent_product_backward(xp[t], rk_t, rk_t_f, rmask, bw, dh)   # dh_prev
        if masked:
            release_state(m[t], dh, pass_h)
            release_state(m[t], dc_prev, pass_c)
        dc, dc_prev = dc_prev, dc
    return dc


@jit
def gru_train_sequence(xp, b_in, rk, rk_f, b_rec, H, RH, m, out, zero_out, rmask, fw,
                       fw_f, ys, keep):
    """Forward: z, r and hh over xp[t], rh_t in RH[t], h_t in H[t+1]; a mask as in
    ``lstm_train_sequence``."""
    rec = np.empty((H.shape[1], xp.shape[2]), np.float32)
    masked = m.shape[0] > 0
    for t in range(xp.shape[0]):
        recurrent_product(H[t], rk, rk_f, rmask, fw, fw_f, rec, False)
        gru_forward(xp[t], b_in, rec, b_rec, H[t], RH[t], H[t + 1])
        if masked:
            mask_output(m[t], H[t + 1], out, zero_out)
            carry(m[t], H[t + 1], H[t])
        if keep:
            ys[:, t, :] = out if masked else H[t + 1]


@jit
def gru_backward_steps(t0, t1, dy, first, xp, H, RH, rk_t, rk_t_f, dh, m, dcarry,
                       zero_out, rmask, bw):
    """BPTT over steps t1-1 ... t0: d[az|ar|ah] over xp[t], drh over RH[t]; dh and a
    mask as in lstm_backward_steps."""
    drec = np.empty((dh.shape[0], xp.shape[2]), np.float32)
    dout, dh_prev, dh_in = np.empty_like(dh), np.empty_like(dh), np.empty_like(dh)
    pass_h = np.empty_like(dh)
    masked = m.shape[0] > 0
    for t in range(t1 - 1, t0 - 1, -1):
        fill_dout(dout, dy, first, t)
        if masked:
            hold_masked(m[t], dout, dcarry, zero_out, dh, pass_h)
        gru_backward(dout, dh, H[t], xp[t], RH[t], drec, dh_prev)
        recurrent_product_backward(drec, rk_t, rk_t_f, rmask, bw, dh_in)  # rec = h W_h + b
        for b in range(dh.shape[0]):
            db, dp, di = dh[b], dh_prev[b], dh_in[b]
            for j in range(db.shape[0]):
                db[j] = dp[j] + di[j]
        if masked:
            release_state(m[t], dh, pass_h)


@jit
def scale(a, s):
    """a *= s, row by row (a recurrent dropout mask)."""
    for b in range(a.shape[0]):
        ab, sb = a[b], s[b]
        for j in range(ab.shape[0]):
            ab[j] = ab[j] * sb[j]


@jit
def simple_train_sequence(xp, bias, rk, rk_f, x, o, fk, relu, h, m, out, zero_out, rmask,
                          ys, keep):
    """The training forward of a tanh (or relu) SimpleRNN: h_t over xp[t] (``H[1:]``; h is
    ``H[0]``), a mask as in ``lstm_train_sequence``, and with recurrent dropout (rmask
    has rows) the product reads h * rmask; folded (x has steps), ``step_product``."""
    hin = np.empty_like(h)
    masked, dropped = m.shape[0] > 0, rmask.shape[0] > 0
    for t in range(xp.shape[0]):
        if dropped:
            hin[:, :] = h
            scale(hin, rmask)
            matmul_add(hin, rk, rk_f, xp[t])
        else:
            step_product(h, rk, rk_f, x, o, fk, t, xp[t])
        simple_forward(xp[t], bias, relu)
        if masked:
            mask_output(m[t], xp[t], out, zero_out)
            carry(m[t], xp[t], h)
        h = xp[t]
        if keep:
            ys[:, t, :] = out if masked else h


@jit
def simple_backward_steps(t0, t1, dy, first, xp, rk_t, rk_t_f, relu, dh, dxp, m, dcarry,
                          zero_out, rmask):
    """BPTT over steps t1-1 ... t0 of a tanh SimpleRNN whose h_t is in xp[t] (the
    forward is ``simple_sequence``): da_t = (dout + dh) * (1 - h_t^2) in dxp[t - t0], or
    (dout + dh) * (h_t > 0) when relu; dh and a mask as in lstm_backward_steps; recurrent
    dropout scales dh_prev by rmask."""
    dout, pass_h = np.empty_like(dh), np.empty_like(dh)
    masked, dropped = m.shape[0] > 0, rmask.shape[0] > 0
    for t in range(t1 - 1, t0 - 1, -1):
        fill_dout(dout, dy, first, t)
        if masked:
            hold_masked(m[t], dout, dcarry, zero_out, dh, pass_h)
        da, h = dxp[t - t0], xp[t]
        for b in range(dh.shape[0]):
            ab, hb, ob, db = da[b], h[b], dout[b], dh[b]
            if relu:
                for j in range(ab.shape[0]):
                    ab[j] = (ob[j] + db[j]) * (one if hb[j] > zero else zero)
            else:
                for j in range(ab.shape[0]):
                    ab[j] = (ob[j] + db[j]) * (one - hb[j] * hb[j])
        matmul(da, rk_t, rk_t_f, dh)                   # dh_prev = da @ recurrent_kernel^T
        if dropped:
            scale(dh, rmask)
        if masked:
            release_state(m[t], dh, pass_h)
