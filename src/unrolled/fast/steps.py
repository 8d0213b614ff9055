"""The compiled step math of the fast path: one fused loop per cell step, forward and
backward, over the rows of a batch, and the vectorizable float32 ``tanh`` they share.

Each loop computes the equations of the reference cells (``layers/recurrent/cells.py``,
``lstm.py``, ``gru.py``) within float32 rounding (``tests/unit/test_fast.py``); ``sequences`` and
``training`` loop them over time. Every function is compiled on its
first call and cached on disk (``cache=True``): a machine compiles each once.
"""
import numpy as np
from numba import njit

# The float32 rational approximation of tanh: x * P(x^2) / Q(x^2), Horner's rule.
_CLAMP = 7.90531110763549805
_P = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
      5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)
_Q = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)


f32 = np.float32
hi = f32(_CLAMP)
p0, p1, p2, p3, p4, p5, p6 = (f32(c) for c in _P)
q0, q1, q2, q3 = (f32(c) for c in _Q)
half, one, zero = f32(0.5), f32(1.0), f32(0.0)
# error_model="numpy": no ZeroDivisionError check, so LLVM can vectorize the loops.
# tanh may fuse its multiply-adds (FMA): 17% faster, and closer to tanh. It must not be
# inlined by numba (inline="always"), which would drop that permission; LLVM inlines it.
# cache=True: compiled once per machine, then loaded from numba's cache (``unrolled.fast``).
jit = njit(error_model="numpy", nogil=True, cache=True)
jit_fma = njit(error_model="numpy", nogil=True, fastmath={"contract"}, cache=True)
# A batch row's step math, shared by the in-place and the folded loops, is inlined by
# numba: called per row, it cost 16% of an LSTM step at (32, 64).
jit_row = njit(error_model="numpy", nogil=True, inline="always", cache=True)


@jit_fma
def tanh(x):
    c = hi if x > hi else x                       # comparisons keep NaN as NaN
    c = -hi if c < -hi else c
    x2 = c * c
    p = ((((((p0 * x2 + p1) * x2 + p2) * x2 + p3) * x2 + p4) * x2 + p5) * x2 + p6) * c
    q = ((q0 * x2 + q1) * x2 + q2) * x2 + q3
    t = p / q
    t = one if x > hi else t                      # exactly +-1 out there, as tanh rounds
    return -one if x < -hi else t

@jit
def sigmoid(x):
    return tanh(x * half) * half + half

# The loops take one batch row at a time and slice it into 1-D gate blocks: indexing
# a 2-D array at ``m + j`` hides the unit stride from LLVM and blocks vectorization.
@jit_row
def simple_row(a, bias, relu, out):
    """out = tanh(a + bias), or max(a + bias, 0) when relu, for one batch row; out may be
    a itself. (NaN stays NaN, as np.maximum keeps it.) Inlined by numba, so that in
    place LLVM sees one array: compiled apart, a loop over two arrays it cannot prove
    apart ran scalar when they were the same (5x slower)."""
    if relu:
        for j in range(a.shape[0]):
            v = a[j] + bias[j]
            out[j] = zero if v < zero else v
    else:
        for j in range(a.shape[0]):
            out[j] = tanh(a[j] + bias[j])

@jit
def simple_forward(a, bias, relu):
    """h = tanh(a + bias), or max(a + bias, 0) when relu, written over a (which holds
    x W + h U)."""
    for b in range(a.shape[0]):
        ab = a[b]
        simple_row(ab, bias, relu, ab)

@jit
def simple_forward_to(a, bias, relu, out, off):
    """simple_forward with h written to out[:, off:] instead (a folded loop's operand)."""
    for b in range(a.shape[0]):
        simple_row(a[b], bias, relu, out[b][off:])

@jit
def tanh_flat(x, out):
    for k in range(x.shape[0]):
        out[k] = tanh(x[k])

@jit_row
def lstm_row(zb, bias, cp, cb, hb, gates):
    """One batch row: zb + bias -> [i | f | g | o] = [sigmoid | sigmoid | tanh | sigmoid],
    written over zb when ``gates`` (what BPTT reads; inference skips those stores);
    cb = f*cp + i*g; hb = o*tanh(cb)."""
    m = cp.shape[0]
    bi, bf, bg, bo = bias[:m], bias[m:2 * m], bias[2 * m:3 * m], bias[3 * m:]
    zi, zf, zg, zo = zb[:m], zb[m:2 * m], zb[2 * m:3 * m], zb[3 * m:]
    for j in range(m):
        i = sigmoid(zi[j] + bi[j])
        f = sigmoid(zf[j] + bf[j])
        g = tanh(zg[j] + bg[j])
        o = sigmoid(zo[j] + bo[j])
        if gates:
            zi[j], zf[j], zg[j], zo[j] = i, f, g, o
        cc = f * cp[j] + i * g
        cb[j], hb[j] = cc, o * tanh(cc)

@jit
def lstm_forward(z, bias, c_prev, c, h):
    """z + bias -> [i | f | g | o] = [sigmoid | sigmoid | tanh | sigmoid], written over z
    (which holds x W + h U); c = f*c_prev + i*g; h = o*tanh(c)."""
    for b in range(z.shape[0]):
        lstm_row(z[b], bias, c_prev[b], c[b], h[b], True)

@jit
def lstm_forward_h(z, bias, c_prev, c, h):
    """``lstm_forward`` for inference: the same c and h, bit for bit, and z left as it is
    (the gate stores were 8 of a step's ~24 MB of traffic at (1024, 512))."""
    for b in range(z.shape[0]):
        lstm_row(z[b], bias, c_prev[b], c[b], h[b], False)

@jit
def lstm_forward_to(z, bias, c_prev, c, h, off):
    """lstm_forward_h with h written to h[:, off:] (a folded inference loop's operand)."""
    for b in range(z.shape[0]):
        lstm_row(z[b], bias, c_prev[b], c[b], h[b][off:], False)

@jit
def lstm_forward_t(z, bias, c, h):
    """``lstm_forward_h`` in the unit-major layout of ``sequences.lstm_folded_t``: z (4n,)
    holds the blocks [i | f | g | o], each of n = M * B values ordered unit by unit (value
    j * B + b is unit j of row b), bias (4n,) the bias in that layout, c (n,) the cell
    state, updated in place, h (n,) written. One flat loop over the n values: no per-row
    slices, and unit stride everywhere, so LLVM vectorizes it whole."""
    n = c.shape[0]
    zi, zf, zg, zo = z[:n], z[n:2 * n], z[2 * n:3 * n], z[3 * n:]
    bi, bf, bg, bo = bias[:n], bias[n:2 * n], bias[2 * n:3 * n], bias[3 * n:]
    for k in range(n):
        i = sigmoid(zi[k] + bi[k])
        f = sigmoid(zf[k] + bf[k])
        g = tanh(zg[k] + bg[k])
        o = sigmoid(zo[k] + bo[k])
        cc = f * c[k] + i * g
        c[k] = cc
        h[k] = o * tanh(cc)

@jit
def lstm_backward(dout, dh_next, dc_next, a, c_prev, c, dc_prev):
    """d(loss)/d(z) of one step, written over a = [i | f | g | o], and dc_prev, as
    LSTMCell.step_backward computes them."""
    m = c_prev.shape[1]
    for b in range(a.shape[0]):
        ai, af, ag, ao = a[b, :m], a[b, m:2 * m], a[b, 2 * m:3 * m], a[b, 3 * m:]
        di, df, dg, do_ = ai, af, ag, ao
        dout_b, dhn, dcn, cp, cb, dcp = dout[b], dh_next[b], dc_next[b], c_prev[b], c[b], dc_prev[b]
        for j in range(m):
            i, f, g, o, t = ai[j], af[j], ag[j], ao[j], tanh(cb[j])   # tanh(c) again
            dh = dout_b[j] + dhn[j]
            dc = dcn[j] + dh * o * (one - t * t)
            di[j] = ((one - i) * i) * (dc * g)
            df[j] = ((one - f) * f) * (dc * cp[j])
            dg[j] = (one - g * g) * (dc * i)
            do_[j] = ((one - o) * o) * (dh * t)
            dcp[j] = dc * f

@jit_row
def gru_row(xb, b_in, recb, b_rec, hp, rhb, hb, gates):
    """One batch row of GRU (reset_after) after the products, with xb + b_in and recb +
    b_rec: hb = z*hp + (1-z)*hh; when ``gates``, z, r and hh written over xb's thirds
    and rh = recb_h + b_rec_h into rhb (what BPTT reads; inference skips the stores)."""
    m = hp.shape[0]
    bz, br, bh = b_in[:m], b_in[m:2 * m], b_in[2 * m:]
    cz, cr, ch = b_rec[:m], b_rec[m:2 * m], b_rec[2 * m:]
    xz, xr, xh = xb[:m], xb[m:2 * m], xb[2 * m:]
    rz, rr, rhh = recb[:m], recb[m:2 * m], recb[2 * m:]
    for j in range(m):
        z = sigmoid((xz[j] + bz[j]) + (rz[j] + cz[j]))
        r = sigmoid((xr[j] + br[j]) + (rr[j] + cr[j]))
        rhv = rhh[j] + ch[j]
        hv = tanh((xh[j] + bh[j]) + r * rhv)
        if gates:
            xz[j], xr[j], xh[j], rhb[j] = z, r, hv, rhv
        hb[j] = z * hp[j] + (one - z) * hv

@jit
def gru_forward(xp, b_in, rec, b_rec, h_prev, rh, h):
    """GRU (reset_after) after the products: z, r and hh written over xz, xr and xh, rh
    apart, and h."""
    for b in range(xp.shape[0]):
        gru_row(xp[b], b_in, rec[b], b_rec, h_prev[b], rh[b], h[b], True)

@jit
def gru_forward_h(xp, b_in, rec, b_rec, h_prev, h):
    """``gru_forward`` for inference: the same h, bit for bit, and nothing else written
    (at (1024, 512) the gate and rh stores were 8 of a step's ~24 MB of traffic)."""
    for b in range(xp.shape[0]):
        gru_row(xp[b], b_in, rec[b], b_rec, h_prev[b], h[b], h[b], False)  # no rh

@jit
def gru_before_gates(xp, rec, h_prev, rh):
    """GRU with reset_after=False, first half: [z | r] = sigmoid(xp[:, :2M] + rec)
    written over xp (which holds x W + b), rh = r * h_prev."""
    m = h_prev.shape[1]
    for b in range(xp.shape[0]):
        xz, xr, rz, rr = xp[b, :m], xp[b, m:2 * m], rec[b, :m], rec[b, m:]
        hp, rhb = h_prev[b], rh[b]
        for j in range(m):
            z = sigmoid(xz[j] + rz[j])
            r = sigmoid(xr[j] + rr[j])
            xz[j], xr[j], rhb[j] = z, r, r * hp[j]

@jit
def gru_before_output(xp, hw, h_prev, h):
    """Second half: h = z * h_prev + (1 - z) * tanh(xh + hw), hw = rh @ W_h."""
    m = h_prev.shape[1]
    for b in range(xp.shape[0]):
        zb, xh, hwb, hp, hb = xp[b, :m], xp[b, 2 * m:], hw[b], h_prev[b], h[b]
        for j in range(m):
            z = zb[j]
            hb[j] = z * hp[j] + (one - z) * tanh(xh[j] + hwb[j])

@jit
def gru_backward(dout, dh_next, h_prev, a, rh, drec, dh_prev):
    """From a = [z | r | hh] and rh: d(loss)/d[az|ar|ah], written over a, d(loss)/d(rec)
    (drec), its hh block drh = dah * r again over rh (the weight gradient's operand:
    rh is not needed after this step), and the direct part of dh_prev."""
    m = h_prev.shape[1]
    for b in range(a.shape[0]):
        zb, rb, hhb, rhb, hp = a[b, :m], a[b, m:2 * m], a[b, 2 * m:], rh[b], h_prev[b]
        drz, drr, drh = drec[b, :m], drec[b, m:2 * m], drec[b, 2 * m:]
        dout_b, dhn, dhp = dout[b], dh_next[b], dh_prev[b]
        for j in range(m):
            z, r, hv = zb[j], rb[j], hhb[j]
            dh = dout_b[j] + dhn[j]
            dz = dh * (hp[j] - hv)
            dah = dh * (one - z) * (one - hv * hv)
            daz = dz * z * (one - z)
            dar = dah * rhb[j] * r * (one - r)
            zb[j], rb[j], hhb[j] = daz, dar, dah
            drz[j], drr[j], drh[j] = daz, dar, dah * r
            rhb[j] = dah * r
            dhp[j] = dh * z
