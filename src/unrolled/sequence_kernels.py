"""Whole-sequence loops for ``unrolled.kernels``: a chunk of steps per compiled call.

A small layer spends about a third of each step in Python: calling np.dot, dispatching
the compiled step, allocating the step's outputs. The loops below run the steps of a
chunk in one compiled call for inference (``training_kernels`` has the training forward
and BPTT). The recurrent product calls the very BLAS function NumPy's ``np.dot`` calls
(NumPy's own OpenBLAS, located in the process), with the arguments NumPy passes, so each
step gives the same numbers as the step path bit for bit (tests/test_kernels.py).
Without that library (another BLAS build), the step path runs.

``numpy_blas`` finds NumPy's own ``cblas_sgemm``/``cblas_sgemv``; ``build_sequences`` adds
the loops to the kernel table that ``kernels._build`` fills (numba is imported there).
"""
import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _COL_MAJOR, _NO_TRANS, _TRANS = 101, 102, 111, 112


def numpy_blas():
    """NumPy's own ``cblas_sgemm``/``cblas_sgemv`` (64-bit integer OpenBLAS) as ctypes
    functions, or None when NumPy's BLAS is not one this module knows how to call."""
    root = os.path.dirname(os.path.dirname(np.__file__))
    libs = (glob.glob(os.path.join(root, "numpy.libs", "*openblas64*"))        # Linux wheels
            + glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs", "*openblas64*")))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_", "64_"), ("", "64_")):
            gemm = getattr(lib, f"{prefix}cblas_sgemm{suffix}", None)
            gemv = getattr(lib, f"{prefix}cblas_sgemv{suffix}", None)
            if gemm is None or gemv is None:
                continue
            i32, i64, f32, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
            gemm.argtypes = [i32, i32, i32, i64, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64]
            gemv.argtypes = [i32, i32, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64]
            gemm.restype = gemv.restype = None
            return gemm, gemv
    return None


def build_sequences(kernels, jit, blas):
    sgemm, sgemv = blas
    one, zero = np.float32(1.0), np.float32(0.0)
    simple_forward, lstm_forward_h, gru_forward_h, simple_forward_to, lstm_forward_to = (
        kernels[k] for k in ("simple_forward", "lstm_forward_h", "gru_forward_h",
                             "simple_forward_to", "lstm_forward_to"))

    @jit
    def gemm(a, b, b_fortran, beta, out):
        """out = a @ b + beta * out as np.dot computes a @ b, for C-contiguous float32 a (R, K)
        and out, and b (K, N) C-contiguous, or Fortran-ordered when b_fortran; K, N > 1. The
        same BLAS call: gemm, or gemv for a single row, with NumPy's order and leading
        dimensions."""
        rows, k = a.shape
        n = b.shape[1]
        if rows == 1:
            order, ld = (_COL_MAJOR, k) if b_fortran else (_ROW_MAJOR, n)
            sgemv(order, _TRANS, k, n, one, b.ctypes.data, ld, a.ctypes.data, 1,
                  beta, out.ctypes.data, 1)
        else:
            trans, ld = (_TRANS, k) if b_fortran else (_NO_TRANS, n)
            sgemm(_ROW_MAJOR, _NO_TRANS, trans, rows, n, k, one, a.ctypes.data, k,
                  b.ctypes.data, ld, beta, out.ctypes.data, n)

    @jit
    def matmul(a, b, b_fortran, out):
        """out = a @ b, bit for bit as np.dot (see ``gemm``)."""
        gemm(a, b, b_fortran, zero, out)

    @jit
    def matmul_add(a, b, b_fortran, out):
        """out += a @ b, BLAS adding the product into out itself (beta = 1): no product
        array is written and read back. Its sums are BLAS's own, not ``out + np.dot(a, b)``."""
        gemm(a, b, b_fortran, one, out)

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

    kernels.update(matmul=matmul, matmul_add=matmul_add, fold_product=fold_product,
                   step_product=step_product)

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

    kernels.update(simple_sequence=simple_sequence, lstm_sequence=lstm_sequence,
                   gru_sequence=gru_sequence, simple_folded=simple_folded,
                   lstm_folded=lstm_folded)

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

    gru_before_gates, gru_before_output = kernels["gru_before_gates"], kernels["gru_before_output"]

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

    kernels.update(gru_before_sequence=gru_before_sequence,
                   gru_before_sequence_masked=gru_before_sequence_masked)
    kernels.update(simple_sequence_masked=simple_sequence_masked,
                   lstm_sequence_masked=lstm_sequence_masked,
                   gru_sequence_masked=gru_sequence_masked)
    kernels.update(mask_output=mask_output, carry=carry)

    from .training_kernels import build_training
    build_training(kernels, jit)
