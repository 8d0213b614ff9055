"""Optional compiled kernels (numba) for float32 elementwise math: the same equations, fused.

Why this exists. NumPy's float32 ``tanh`` costs ~3 ns per element on an AVX2 machine
(it has no SIMD kernel below AVX-512), and an LSTM step runs a dozen separate ufunc
passes over its gates. At (256, 100, 32, 256) that elementwise work cost more than the
recurrent matrix product. With numba installed (``pip install 'unrolled[fast]'``), float32
computations use:

* ``tanh``: a rational approximation that LLVM vectorizes (~0.45 ns per element)::

      x = clip(x, -7.905311, 7.905311)          # beyond this tanh(x) rounds to +-1
      tanh(x) = x * P(x^2) / Q(x^2)             # P of degree 6, Q of degree 3 in x^2

  The coefficients are the float32 minimax fit that Eigen, and so TensorFlow's CPU
  kernels, use; multiply-adds may fuse (FMA). Maximum absolute error 2.5e-7 (tested
  below 4e-7); TensorFlow's own float32 ``tanh`` is off by up to 3.3e-7, NumPy's by
  6e-8. NaN stays NaN, +-inf gives exactly +-1.
* ``sigmoid(x) = 0.5 * tanh(0.5 * x) + 0.5``, the formula ``activations.sigmoid`` uses.
* one fused loop per cell step, forward and backward, for SimpleRNN (tanh or relu), LSTM
  and GRU (``reset_after``) with their default activations. Each performs exactly the float
  operations of the NumPy lines in ``cells.py``/``lstm.py``/``gru.py``, in the same order
  (the biases included: a GRU's ``(x W + b) + h U``, SimpleRNN's and LSTM's
  ``(x W + h U) + b``, BLAS adding ``h U`` into ``x W`` in both paths, ``matmul_add``), so
  the fused and unfused paths agree bit for bit (``tests/test_kernels.py``). To keep less
  memory, the forward writes the gate activations over the projected inputs and the
  backward writes dxp over the gates; the pre-activations are never needed, since every
  derivative comes from an output.
  ``unfused()`` runs the NumPy lines instead (``explain`` does, to show every value).
* the fold (``folds``): SimpleRNN and LSTM compute ``z = [x_t | h] @ [kernel;
  recurrent_kernel]``, one product per step (``fold_product``), instead of ``x W`` for all
  steps (inner dimension F, where BLAS runs at half its rate) and ``h U`` per step. The
  whole-sequence loops, the training forward and the NumPy lines all fold, whether fused
  or not, so they agree bit for bit. The unmasked inference loops keep h in the product's
  operand rows, so each step copies in only x_t.
* whole-sequence loops (``*_sequence``, and ``*_sequence_masked`` with a mask, for
  inference; ``*_train_sequence`` and ``*_backward_steps``, masked or not, with recurrent
  dropout or without, for training; GRU with ``reset_after=False`` for inference only,
  ``gru_before_sequence``): the steps of a projected chunk in one call.
  A small layer otherwise spends a third of each step in Python. Their recurrent product
  calls NumPy's own BLAS (``_numpy_blas``) exactly as ``np.dot`` does, so they too match
  the step path bit for bit; where NumPy's BLAS is not the bundled OpenBLAS, inference
  runs step by step.

Without numba, or for float64 (used by the gradient checks), or after
``unrolled.kernels.set_enabled(False)`` (or ``UNROLLED_COMPILED=0`` in the environment),
everything is plain NumPy with ``np.tanh``. Both paths pass the same Keras parity tests.
The matrix products are always BLAS's: ``np.dot``, or the same BLAS function called from
the sequence loops.
"""
import os
from contextlib import contextmanager

import numpy as np

_enabled = os.environ.get("UNROLLED_COMPILED", "1") != "0"
_fuse = True                         # False inside ``unfused()``
_kernels = None                      # the compiled functions, built on first use; False: no numba


def set_enabled(flag):
    """Use the compiled float32 kernels when numba is importable (True, the default) or never."""
    global _enabled
    _enabled = bool(flag)


def enabled():
    """True when float32 math runs through the compiled kernels."""
    return _enabled and _load() is not False


_F32 = np.dtype(np.float32)


def active(dtype):
    """True when float32 ``tanh`` runs compiled for arrays of ``dtype``."""
    if not _enabled or dtype != _F32:            # (called every step: kept cheap)
        return False
    return (_kernels if _kernels is not None else _load()) is not False


def fused(dtype):
    """True when the cells' fused step kernels run for arrays of ``dtype``."""
    return _fuse and _enabled and dtype == _F32 and (
        _kernels if _kernels is not None else _load()) is not False


@contextmanager
def unfused():
    """Run the cells' NumPy step lines (still with the compiled ``tanh``): the same numbers
    bit for bit, but every intermediate (pre-activations too) is kept. ``explain`` uses it."""
    global _fuse
    before, _fuse = _fuse, False
    try:
        yield
    finally:
        _fuse = before


def _load():
    global _kernels
    if _kernels is None:
        try:
            import numba  # noqa: F401
        except ImportError:
            _kernels = False
        else:
            _kernels = _build()
    return _kernels


# The float32 rational approximation of tanh: x * P(x^2) / Q(x^2), Horner's rule.
_CLAMP = 7.90531110763549805
_P = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
      5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)
_Q = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)


def _build():
    from numba import njit

    f32 = np.float32
    hi = f32(_CLAMP)
    p0, p1, p2, p3, p4, p5, p6 = (f32(c) for c in _P)
    q0, q1, q2, q3 = (f32(c) for c in _Q)
    half, one, zero = f32(0.5), f32(1.0), f32(0.0)
    # error_model="numpy": no ZeroDivisionError check, so LLVM can vectorize the loops.
    # tanh may fuse its multiply-adds (FMA): 17% faster, and closer to tanh. It must not be
    # inlined by numba (inline="always"), which would drop that permission; LLVM inlines it.
    jit = njit(error_model="numpy", nogil=True)
    jit_fma = njit(error_model="numpy", nogil=True, fastmath={"contract"})
    # A batch row's step math, shared by the in-place and the folded loops, is inlined by
    # numba: called per row, it cost 16% of an LSTM step at (32, 64).
    jit_row = njit(error_model="numpy", nogil=True, inline="always")
    kernels = {}

    def loop(fn):
        kernels[fn.__name__] = njit(error_model="numpy", nogil=True)(fn)
        return fn

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

    @loop
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

    @loop
    def tanh_flat(x, out):
        for k in range(x.shape[0]):
            out[k] = tanh(x[k])

    @jit_row
    def lstm_row(zb, bias, cp, cb, hb):
        """One batch row: zb + bias -> [i | f | g | o] = [sigmoid | sigmoid | tanh | sigmoid],
        written over zb; cb = f*cp + i*g; hb = o*tanh(cb)."""
        m = cp.shape[0]
        bi, bf, bg, bo = bias[:m], bias[m:2 * m], bias[2 * m:3 * m], bias[3 * m:]
        zi, zf, zg, zo = zb[:m], zb[m:2 * m], zb[2 * m:3 * m], zb[3 * m:]
        for j in range(m):
            i = sigmoid(zi[j] + bi[j])
            f = sigmoid(zf[j] + bf[j])
            g = tanh(zg[j] + bg[j])
            o = sigmoid(zo[j] + bo[j])
            zi[j], zf[j], zg[j], zo[j] = i, f, g, o
            cc = f * cp[j] + i * g
            cb[j], hb[j] = cc, o * tanh(cc)

    @loop
    def lstm_forward(z, bias, c_prev, c, h):
        """z + bias -> [i | f | g | o] = [sigmoid | sigmoid | tanh | sigmoid], written over z
        (which holds x W + h U); c = f*c_prev + i*g; h = o*tanh(c)."""
        for b in range(z.shape[0]):
            lstm_row(z[b], bias, c_prev[b], c[b], h[b])

    @jit
    def lstm_forward_to(z, bias, c_prev, c, h, off):
        """lstm_forward with h written to h[:, off:] (a folded loop's operand)."""
        for b in range(z.shape[0]):
            lstm_row(z[b], bias, c_prev[b], c[b], h[b][off:])

    kernels.update(simple_forward_to=simple_forward_to, lstm_forward_to=lstm_forward_to)

    @loop
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

    @loop
    def gru_forward(xp, b_in, rec, b_rec, h_prev, rh, h):
        """GRU (reset_after) after the products, with xp + b_in and rec + b_rec: z, r and hh
        written over xz, xr and xh, rh apart."""
        m = h_prev.shape[1]
        bz, br, bh = b_in[:m], b_in[m:2 * m], b_in[2 * m:]
        cz, cr, ch = b_rec[:m], b_rec[m:2 * m], b_rec[2 * m:]
        for b in range(xp.shape[0]):
            xz, xr, xh = xp[b, :m], xp[b, m:2 * m], xp[b, 2 * m:]
            rz, rr, rhh = rec[b, :m], rec[b, m:2 * m], rec[b, 2 * m:]
            rhb, hp, hb = rh[b], h_prev[b], h[b]
            for j in range(m):
                z = sigmoid((xz[j] + bz[j]) + (rz[j] + cz[j]))
                r = sigmoid((xr[j] + br[j]) + (rr[j] + cr[j]))
                rhv = rhh[j] + ch[j]
                hv = tanh((xh[j] + bh[j]) + r * rhv)
                xz[j], xr[j], xh[j], rhb[j] = z, r, hv, rhv
                hb[j] = z * hp[j] + (one - z) * hv

    @loop
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

    @loop
    def gru_before_output(xp, hw, h_prev, h):
        """Second half: h = z * h_prev + (1 - z) * tanh(xh + hw), hw = rh @ W_h."""
        m = h_prev.shape[1]
        for b in range(xp.shape[0]):
            zb, xh, hwb, hp, hb = xp[b, :m], xp[b, 2 * m:], hw[b], h_prev[b], h[b]
            for j in range(m):
                z = zb[j]
                hb[j] = z * hp[j] + (one - z) * tanh(xh[j] + hwb[j])

    @loop
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

    from .sequence_kernels import build_sequences, numpy_blas
    blas = numpy_blas()
    if blas is not None:
        build_sequences(kernels, jit, blas)
    return kernels


def sequence(dtype, units):
    """True when the cells can run inference a chunk of steps per compiled call: the fused
    kernels are active for ``dtype`` and NumPy's BLAS was found. (One unit would make NumPy
    take another BLAS route for the recurrent product, so that runs step by step.)"""
    return fused(dtype) and units > 1 and "matmul" in _kernels


def adds_products(z, k):
    """True when BLAS adds a recurrent product ``(B, k) @ (k, N)`` into ``z`` in place
    (``matmul_add``): float32 with the kernels active, NumPy's BLAS found, z C-contiguous and
    k, N > 1 (the shapes ``matmul`` takes). Then the step path and the compiled loops make
    the same call."""
    return (active(z.dtype) and k > 1 and z.shape[-1] > 1 and z.flags.c_contiguous
            and "matmul_add" in _kernels)


def folds(dtype):
    """True when a SimpleRNN or LSTM step folds its input product into the recurrent one,
    ``z = [x_t | h] @ [kernel; recurrent_kernel]`` (``fold_product``): float32 with the
    kernels enabled and NumPy's BLAS found. It does not depend on ``unfused()``: explain's
    lines fold as the compiled loops do, so their numbers agree bit for bit."""
    return active(dtype) and "fold_product" in _kernels


# The sequence loops' (x, o, fk) arguments when they do not fold: an x without steps. Folded,
# x (steps, B, F), o (B, F+M) and fk (F+M, N) from ``gates.fold_operands``.
NO_FOLD = (np.zeros((0, 0, 0), np.float32), np.zeros((0, 0), np.float32),
           np.zeros((0, 0), np.float32))


def blas_operand(w):
    """``(w, fortran)`` for the ``matmul`` kernel, as np.dot takes ``w``: a C- or
    Fortran-ordered array as it is (the orthogonal initializer gives Fortran order), any
    other layout copied to C order."""
    if w.flags.c_contiguous:
        return w, False
    if w.flags.f_contiguous:
        return w, True
    return np.ascontiguousarray(w), False


def run_sequence(name, *args, mask=None):
    """Run a whole-sequence kernel: ``ys`` (B, T, M), or None when no sequence is returned.
    ``mask`` = (m, out, zero_output) runs its masked loop: m (T, B) C-contiguous bool, out
    (B, M) the last output (updated in place), zero_output Keras's zero_output_for_mask."""
    *head, ys = args
    keep = ys is not None
    if not keep:
        ys = _no_ys.get(head[0].dtype)
        if ys is None:
            ys = _no_ys[head[0].dtype] = np.empty((1, 1, 1), head[0].dtype)
    if mask is not None:
        return _kernels[name + "_masked"](*head, *mask, ys, keep)
    return _kernels[name](*head, ys, keep)


_no_ys = {}
_no_mask = {}


def dropout_arguments(operands, dtype):
    """The training kernels' recurrent-dropout arguments: ``operands`` = (rmask (G, B, M),
    fw, fw_f, bw) from ``gates.dropout_operands`` (see ``training_kernels``), or, for
    no recurrent dropout, an rmask without gates."""
    if operands is not None:
        return operands
    if dtype not in _no_dropout:
        empty = np.zeros((0, 0, 0), dtype)
        _no_dropout[dtype] = (empty, empty, False, empty)
    return _no_dropout[dtype]


_no_dropout = {}


def mask_arguments(mask, dtype):
    """The training kernels' last three arguments: ``mask`` = (m, out or dcarry, zero_output)
    as ``run_sequence`` takes it, or, for no mask, an m without rows."""
    if mask is not None:
        return mask
    if dtype not in _no_mask:
        _no_mask[dtype] = (np.zeros((0, 0), bool), np.zeros((0, 0), dtype), True)
    return _no_mask[dtype]


def tanh(x, out=None):
    """``np.tanh``; for float32 with the kernels enabled, the compiled approximation."""
    x = np.asarray(x)
    if not active(x.dtype):
        return np.tanh(x, out=out)
    src = np.ascontiguousarray(x)
    res = out if out is not None and out.flags.c_contiguous else np.empty_like(src)
    _kernels["tanh_flat"](src.reshape(-1), res.reshape(-1))
    if out is not None and res is not out:
        out[...] = res
        return out
    return res


def contiguous(x, dtype):
    """``x`` as a C-contiguous array of ``dtype``, the kernels' calling convention."""
    return np.ascontiguousarray(x, dtype)


_zeros = {}


def bias_or_zeros(bias, n, dtype):
    """The kernels' bias argument: the bias values, or n zeros for a layer without bias."""
    if bias is not None:
        return bias
    if n not in _zeros:
        _zeros[n] = np.zeros(n, dtype)
    return _zeros[n]


def call(name, *arrays):
    """Run fused kernel ``name`` on C-contiguous float32 arrays (outputs preallocated).

    Single-threaded on purpose: splitting the rows over numba's threads halved a kernel's
    time alone, but between two multi-threaded BLAS products the two thread pools made
    whole layers 3 to 25 times slower (measured; see benchmarks/README.md)."""
    return _kernels[name](*arrays)
