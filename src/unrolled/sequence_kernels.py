"""Whole-sequence loops for ``unrolled.kernels``: a chunk of steps per compiled call.

A small layer spends about a third of each step in Python: calling np.dot, dispatching
the compiled step, allocating the step's outputs. The loops below run the steps of a
chunk in one compiled call: inference, the training forward, and BPTT. The recurrent product calls the very BLAS
function NumPy's ``np.dot`` calls (NumPy's own OpenBLAS, located in the process), with
the arguments NumPy passes, so each step gives the same numbers as the step path bit for
bit (tests/test_kernels.py). Without that library (another BLAS build), the step path runs.

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
    simple_forward, lstm_forward, gru_forward = (
        kernels[k] for k in ("simple_forward", "lstm_forward", "gru_forward"))

    @jit
    def matmul(a, b, b_fortran, out):
        """out = a @ b as np.dot computes it, for C-contiguous float32 a (R, K) and out, and
        b (K, N) C-contiguous, or Fortran-ordered when b_fortran; K, N > 1. The same BLAS
        call: gemm, or gemv for a single row, with NumPy's order and leading dimensions."""
        rows, k = a.shape
        n = b.shape[1]
        if rows == 1:
            order, ld = (_COL_MAJOR, k) if b_fortran else (_ROW_MAJOR, n)
            sgemv(order, _TRANS, k, n, one, b.ctypes.data, ld, a.ctypes.data, 1,
                  zero, out.ctypes.data, 1)
        else:
            trans, ld = (_TRANS, k) if b_fortran else (_NO_TRANS, n)
            sgemm(_ROW_MAJOR, _NO_TRANS, trans, rows, n, k, one, a.ctypes.data, k,
                  b.ctypes.data, ld, zero, out.ctypes.data, n)

    kernels["matmul"] = matmul

    @jit
    def simple_sequence(xp, bias, rk, rk_f, h, ys, keep):
        """SimpleRNN steps over xp (T, B, M): h_t = tanh((xp_t + b) + h_{t-1} rk), written
        over xp[t]. ys[:, t] = h_t when keep. Returns the last h."""
        hw = np.empty((h.shape[0], rk.shape[1]), np.float32)
        for t in range(xp.shape[0]):
            matmul(h, rk, rk_f, hw)
            h = xp[t]
            simple_forward(h, bias, hw)
            if keep:
                ys[:, t, :] = h
        return h.copy()

    @jit
    def lstm_sequence(xp, bias, rk, rk_f, h, c, ys, keep):
        """LSTM steps over xp (T, B, 4M) from states h, c. Returns the last h and c."""
        hw = np.empty((h.shape[0], rk.shape[1]), np.float32)
        h2, c2 = np.empty_like(h), np.empty_like(c)
        for t in range(xp.shape[0]):
            matmul(h, rk, rk_f, hw)
            lstm_forward(xp[t], bias, hw, c, c2, h2)
            h, h2, c, c2 = h2, h, c2, c
            if keep:
                ys[:, t, :] = h
        return h, c

    @jit
    def gru_sequence(xp, b_in, rk, rk_f, b_rec, h, ys, keep):
        """GRU (reset_after) steps over xp (T, B, 3M) from state h. Returns the last h."""
        rec = np.empty((h.shape[0], rk.shape[1]), np.float32)
        rh, h2 = np.empty_like(h), np.empty_like(h)
        for t in range(xp.shape[0]):
            matmul(h, rk, rk_f, rec)
            gru_forward(xp[t], b_in, rec, b_rec, h, rh, h2)
            h, h2 = h2, h
            if keep:
                ys[:, t, :] = h
        return h

    kernels.update(simple_sequence=simple_sequence, lstm_sequence=lstm_sequence,
                   gru_sequence=gru_sequence)

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
    def simple_sequence_masked(xp, bias, rk, rk_f, h, m, out, zero_out, ys, keep):
        """simple_sequence with the mask m (T, B): h_t over xp[t]. Returns the last h."""
        hw = np.empty((h.shape[0], rk.shape[1]), np.float32)
        for t in range(xp.shape[0]):
            matmul(h, rk, rk_f, hw)
            simple_forward(xp[t], bias, hw)
            mask_output(m[t], xp[t], out, zero_out)
            carry(m[t], xp[t], h)
            h = xp[t]
            if keep:
                ys[:, t, :] = out
        return h.copy()

    @jit
    def lstm_sequence_masked(xp, bias, rk, rk_f, h, c, m, out, zero_out, ys, keep):
        """lstm_sequence with the mask m (T, B). Returns the last h and c."""
        hw = np.empty((h.shape[0], rk.shape[1]), np.float32)
        h2, c2 = np.empty_like(h), np.empty_like(c)
        for t in range(xp.shape[0]):
            matmul(h, rk, rk_f, hw)
            lstm_forward(xp[t], bias, hw, c, c2, h2)
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
        rec = np.empty((h.shape[0], rk.shape[1]), np.float32)
        rh, h2 = np.empty_like(h), np.empty_like(h)
        for t in range(xp.shape[0]):
            matmul(h, rk, rk_f, rec)
            gru_forward(xp[t], b_in, rec, b_rec, h, rh, h2)
            mask_output(m[t], h2, out, zero_out)
            carry(m[t], h2, h)
            h, h2 = h2, h
            if keep:
                ys[:, t, :] = out
        return h

    kernels.update(simple_sequence_masked=simple_sequence_masked,
                   lstm_sequence_masked=lstm_sequence_masked,
                   gru_sequence_masked=gru_sequence_masked)

    # Training: the same steps, keeping what BPTT needs in whole-sequence buffers, and
    # BPTT itself a chunk of steps per call. H[t] is h_{t-1} (H[0] the initial state).
    lstm_backward, gru_backward = kernels["lstm_backward"], kernels["gru_backward"]

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
    def dropped_products(h, rmask, fw, fw_f, hin, part, out):
        """out[:, gate g] = (h * rmask[g]) @ block g for each gate, in gate_product's np.dot
        calls: fw[g] is block g in C order, or its transpose when fw_f (Fortran blocks)."""
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
                    ob[g * n + j] = pb[j]

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
    def recurrent_product(h, rk, rk_f, rmask, fw, fw_f, out):
        """out = h @ rk, or with recurrent dropout (rmask has gates) ``dropped_products``."""
        if rmask.shape[0] > 0:
            hin = np.empty_like(h)
            part = np.empty((h.shape[0], out.shape[1] // rmask.shape[0]), np.float32)
            dropped_products(h, rmask, fw, fw_f, hin, part, out)
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
    def lstm_train_sequence(xp, bias, rk, rk_f, H, C, m, out, zero_out, rmask, fw, fw_f,
                            ys, keep):
        """Forward: gates over xp[t], c_t in C[t+1], h_t in H[t+1]. With a mask (m has
        rows), masked rows carry their states and ``out`` is the last output, as in
        ``lstm_sequence_masked``. With recurrent dropout, ``dropped_products``."""
        hw = np.empty((H.shape[1], xp.shape[2]), np.float32)
        masked = m.shape[0] > 0
        for t in range(xp.shape[0]):
            recurrent_product(H[t], rk, rk_f, rmask, fw, fw_f, hw)
            lstm_forward(xp[t], bias, hw, C[t], C[t + 1], H[t + 1])
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
            recurrent_product(H[t], rk, rk_f, rmask, fw, fw_f, rec)
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
    def simple_train_sequence(xp, bias, rk, rk_f, h, m, out, zero_out, rmask, ys, keep):
        """The training forward of a tanh SimpleRNN: h_t over xp[t] (``H[1:]``; h is
        ``H[0]``), a mask as in ``lstm_train_sequence``, and with recurrent dropout (rmask
        has rows) the product reads h * rmask."""
        hw = np.empty((h.shape[0], rk.shape[1]), np.float32)
        hin = np.empty_like(h)
        masked, dropped = m.shape[0] > 0, rmask.shape[0] > 0
        for t in range(xp.shape[0]):
            if dropped:
                hin[:, :] = h
                scale(hin, rmask)
                matmul(hin, rk, rk_f, hw)
            else:
                matmul(h, rk, rk_f, hw)
            simple_forward(xp[t], bias, hw)
            if masked:
                mask_output(m[t], xp[t], out, zero_out)
                carry(m[t], xp[t], h)
            h = xp[t]
            if keep:
                ys[:, t, :] = out if masked else h

    @jit
    def simple_backward_steps(t0, t1, dy, first, xp, rk_t, rk_t_f, dh, dxp, m, dcarry,
                              zero_out, rmask):
        """BPTT over steps t1-1 ... t0 of a tanh SimpleRNN whose h_t is in xp[t] (the
        forward is ``simple_sequence``): da_t = (dout + dh) * (1 - h_t^2) in dxp[t - t0];
        dh and a mask as in lstm_backward_steps; recurrent dropout scales dh_prev by rmask."""
        dout, pass_h = np.empty_like(dh), np.empty_like(dh)
        masked, dropped = m.shape[0] > 0, rmask.shape[0] > 0
        for t in range(t1 - 1, t0 - 1, -1):
            fill_dout(dout, dy, first, t)
            if masked:
                hold_masked(m[t], dout, dcarry, zero_out, dh, pass_h)
            da, h = dxp[t - t0], xp[t]
            for b in range(dh.shape[0]):
                ab, hb, ob, db = da[b], h[b], dout[b], dh[b]
                for j in range(ab.shape[0]):
                    ab[j] = (ob[j] + db[j]) * (one - hb[j] * hb[j])
            matmul(da, rk_t, rk_t_f, dh)                   # dh_prev = da @ recurrent_kernel^T
            if dropped:
                scale(dh, rmask)
            if masked:
                release_state(m[t], dh, pass_h)

    kernels.update(simple_train_sequence=simple_train_sequence,
                   simple_backward_steps=simple_backward_steps,
                   lstm_train_sequence=lstm_train_sequence,
                   lstm_backward_steps=lstm_backward_steps,
                   gru_train_sequence=gru_train_sequence, gru_backward_steps=gru_backward_steps)
