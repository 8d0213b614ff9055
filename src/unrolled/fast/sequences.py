"""Whole-sequence inference loops of the fast path: a chunk of steps per compiled call.

A small layer spends about a third of each step in Python: calling np.dot, dispatching
the compiled step, allocating the step's outputs. The loops below run the steps of a
chunk in one compiled call for inference (``training`` has the training forward and
BPTT). The recurrent product is ``blas.matmul``: NumPy's own BLAS, called as ``np.dot``
calls it (the reference cells' ``np.dot``), with no copy of the operands per step.
"""
import numpy as np

from .blas import matmul, matmul_add, matmul_t
from .steps import (gru_before_gates, gru_before_output, gru_forward_h, jit, lstm_forward_h,
                    lstm_forward_t, lstm_forward_to, simple_forward, simple_forward_to, zero)



@jit
def put_rows(o, off, a):
    """o[:, off:off + K] = a (B, K), row by row."""
    for b in range(a.shape[0]):
        ob, ab = o[b][off:], a[b]
        for j in range(ab.shape[0]):
            ob[j] = ab[j]


@jit
def fold_product(x_t, h, o, fk, z):
    """z = [x_t | h] @ fk with fk = [kernel; recurrent_kernel] (F+M, N), C order: x_t and
    h copied side by side into the rows of o (B, F+M), then one product whose inner
    dimension F+M keeps BLAS at its full rate (a separate x W has inner dimension F,
    16 to 64 here, where BLAS runs at half that rate)."""
    put_rows(o, 0, x_t)
    put_rows(o, x_t.shape[1], h)
    matmul(o, fk, False, z)


@jit
def step_product(h, rk, rk_f, x, o, fk, t, z):
    """Step t's product into z: folded (x has steps) z = [x[t] | h] @ fk, else BLAS adds
    h @ rk into z, which holds x W."""
    if x.shape[0] > 0:
        fold_product(x[t], h, o, fk, z)
    else:
        matmul_add(h, rk, rk_f, z)


@jit
def steps(xp, x):
    """The steps of an inference loop: those of x when folded (xp then holds two steps'
    z, used in turn: z of step t is xp[t % 2], and a SimpleRNN's h_{t-1} stays in the
    other), else those of xp."""
    return x.shape[0] if x.shape[0] > 0 else xp.shape[0]



# Folded inference without a mask: h lives in the product's operand rows, o[:, F:],
# where the activations write it, so only x_t is copied in each step. (Kernels of their
# own: three more arguments cost the notebook's 10-step call a tenth of its time.)
@jit
def simple_folded(x, o, fk, z, bias, relu, h, ys, keep):
    """simple_sequence folded: z = [x[t] | h] @ fk into z (B, M), h = tanh(z + b) (or
    relu) written into o[:, F:]. Returns the last h."""
    d = x.shape[2]
    put_rows(o, d, h)
    for t in range(x.shape[0]):
        put_rows(o, 0, x[t])
        matmul(o, fk, False, z)
        simple_forward_to(z, bias, relu, o, d)
        if keep:
            ys[:, t, :] = o[:, d:]
    return o[:, d:].copy()


@jit
def lstm_folded(x, o, fk, z, bias, h, c, ys, keep):
    """lstm_sequence folded: z = [x[t] | h] @ fk into z (B, 4M), the gates over z, h into
    o[:, F:]. Returns the last h and c."""
    d = x.shape[2]
    put_rows(o, d, h)
    c2 = np.empty_like(c)
    for t in range(x.shape[0]):
        put_rows(o, 0, x[t])
        matmul(o, fk, False, z)
        lstm_forward_to(z, bias, c, c2, o, d)
        c, c2 = c2, c
        if keep:
            ys[:, t, :] = o[:, d:]
    return o[:, d:].copy(), c


@jit
def lstm_folded_t(x, o_t, fk, z_t, bias_t, c_t, ys, keep):
    """lstm_folded in the unit-major (transposed) layout: o_t ((F+M) * B,) holds [x[t] | h]
    column by column (o_t[k * B + b] = [x[t] | h][b, k]; h, the last M * B values, in
    place from the caller), z_t (4M * B,) takes (o @ fk)^T (``blas.matmul_t``), and the
    gates run as one flat loop (``steps.lstm_forward_t``, bias_t the bias in that layout)
    writing h into o_t and c into c_t (M * B,), in place. ys[:, t] = h when keep. Returns
    nothing: the last h and c are in o_t and c_t."""
    rows, d = x.shape[1], x.shape[2]
    units = c_t.shape[0] // rows
    h = o_t[d * rows:]
    for t in range(x.shape[0]):
        xt = x[t]
        for b in range(rows):
            xb = xt[b]
            for f in range(d):
                o_t[f * rows + b] = xb[f]
        matmul_t(o_t, rows, fk, z_t)
        lstm_forward_t(z_t, bias_t, c_t, h)
        if keep:
            for b in range(rows):
                yb = ys[b, t]
                for j in range(units):
                    yb[j] = h[j * rows + b]


@jit
def simple_sequence(xp, bias, rk, rk_f, relu, h, ys, keep):
    """SimpleRNN steps over xp (T, B, M) = x W: h_t = tanh((xp_t + h_{t-1} rk) + b) (relu
    instead when relu), BLAS adding the product into xp[t], h_t written there.
    ys[:, t] = h_t when keep. Returns the last h. (Folded: ``simple_folded``.)"""
    for t in range(xp.shape[0]):
        matmul_add(h, rk, rk_f, xp[t])
        h = xp[t]
        simple_forward(h, bias, relu)
        if keep:
            ys[:, t, :] = h
    return h.copy()


@jit
def lstm_sequence(xp, bias, rk, rk_f, h, c, ys, keep):
    """LSTM steps over xp (T, B, 4M) = x W from states h, c: BLAS adds h U into xp[t],
    then the gates. Returns the last h and c. (Folded: ``lstm_folded``.)"""
    h2, c2 = np.empty_like(h), np.empty_like(c)
    for t in range(xp.shape[0]):
        matmul_add(h, rk, rk_f, xp[t])
        lstm_forward_h(xp[t], bias, c, c2, h2)
        h, h2, c, c2 = h2, h, c2, c
        if keep:
            ys[:, t, :] = h
    return h, c


@jit
def gru_sequence(xp, b_in, rk, rk_f, b_rec, h, ys, keep):
    """GRU (reset_after) steps over xp (T, B, 3M) from state h. Returns the last h."""
    rec, h2 = np.empty((h.shape[0], rk.shape[1]), np.float32), np.empty_like(h)
    for t in range(xp.shape[0]):
        matmul(h, rk, rk_f, rec)
        gru_forward_h(xp[t], b_in, rec, b_rec, h, h2)
        h, h2 = h2, h
        if keep:
            ys[:, t, :] = h
    return h



# Masked inference: the same steps, then RNN's masking lines for each step t, row by
# row: output = where(keep, h, 0 or the last output); states = where(keep, new, old).
# ``out`` holds the last output (zeros before the first step) from chunk to chunk.
@jit
def mask_output(keep_t, h, out, zero_out):
    """out = where(keep_t, h, 0 if zero_out else out), row by row."""
    for b in range(h.shape[0]):
        hb, ob = h[b], out[b]
        if keep_t[b] or zero_out:
            for j in range(hb.shape[0]):
                ob[j] = hb[j] if keep_t[b] else zero


@jit
def carry(keep_t, new, old):
    """new = where(keep_t, new, old), row by row: a masked row keeps its states."""
    for b in range(new.shape[0]):
        if not keep_t[b]:
            nb, ob = new[b], old[b]
            for j in range(nb.shape[0]):
                nb[j] = ob[j]


@jit
def simple_sequence_masked(xp, bias, rk, rk_f, x, o, fk, relu, h, m, out, zero_out, ys,
                           keep):
    """simple_sequence with the mask m (T, B): h_t over xp[t] (folded, over xp[t % 2]:
    ``steps``). Returns the last h."""
    for t in range(steps(xp, x)):
        z = xp[t % xp.shape[0]]
        step_product(h, rk, rk_f, x, o, fk, t, z)
        simple_forward(z, bias, relu)
        mask_output(m[t], z, out, zero_out)
        carry(m[t], z, h)
        h = z
        if keep:
            ys[:, t, :] = out
    return h.copy()


@jit
def lstm_sequence_masked(xp, bias, rk, rk_f, x, o, fk, h, c, m, out, zero_out, ys, keep):
    """lstm_sequence with the mask m (T, B). Returns the last h and c."""
    h2, c2 = np.empty_like(h), np.empty_like(c)
    for t in range(steps(xp, x)):
        z = xp[t % xp.shape[0]]
        step_product(h, rk, rk_f, x, o, fk, t, z)
        lstm_forward_h(z, bias, c, c2, h2)
        mask_output(m[t], h2, out, zero_out)
        carry(m[t], h2, h)
        carry(m[t], c2, c)
        h, h2, c, c2 = h2, h, c2, c
        if keep:
            ys[:, t, :] = out
    return h, c


@jit
def gru_sequence_masked(xp, b_in, rk, rk_f, b_rec, h, m, out, zero_out, ys, keep):
    """gru_sequence with the mask m (T, B). Returns the last h."""
    rec, h2 = np.empty((h.shape[0], rk.shape[1]), np.float32), np.empty_like(h)
    for t in range(xp.shape[0]):
        matmul(h, rk, rk_f, rec)
        gru_forward_h(xp[t], b_in, rec, b_rec, h, h2)
        mask_output(m[t], h2, out, zero_out)
        carry(m[t], h2, h)
        h, h2 = h2, h
        if keep:
            ys[:, t, :] = out
    return h


@jit
def gru_before_sequence_masked(xp, rk_zr, rk_zr_f, rk_h, rk_h_f, h, m, out, zero_out, ys,
                               keep):
    """GRU with reset_after=False (Keras 2's default) over xp (T, B, 3M) = x W + b:
    [z | r] = sigmoid(x[zr] + h U[:, :2M]), h' = z h + (1 - z) tanh(xh + (r h) U[:, 2M:]),
    U's blocks as ``blas_operand`` gives them; the mask m (T, B) as in
    ``gru_sequence_masked`` (none when m has no rows). Returns the last h."""
    b, units = h.shape
    rec, rh = np.empty((b, 2 * units), np.float32), np.empty_like(h)
    hw, h2 = np.empty_like(h), np.empty_like(h)
    masked = m.shape[0] > 0
    for t in range(xp.shape[0]):
        matmul(h, rk_zr, rk_zr_f, rec)
        gru_before_gates(xp[t], rec, h, rh)
        matmul(rh, rk_h, rk_h_f, hw)
        gru_before_output(xp[t], hw, h, h2)
        if masked:
            mask_output(m[t], h2, out, zero_out)
            carry(m[t], h2, h)
        h, h2 = h2, h
        if keep:
            ys[:, t, :] = out if masked else h
    return h


@jit
def gru_before_sequence(xp, rk_zr, rk_zr_f, rk_h, rk_h_f, h, ys, keep):
    """gru_before_sequence_masked without a mask."""
    return gru_before_sequence_masked(xp, rk_zr, rk_zr_f, rk_h, rk_h_f, h,
                                      np.zeros((0, 0), np.bool_), h, True, ys, keep)
