"""The compiled whole-sequence implementations of the built-in cells, apart from the cells.

A cell (``layers/recurrent/cells.py``, ``lstm.py``, ``gru.py``) is the reference: plain NumPy, one
step forward and one step back. Each class here runs the same equations over a chunk of
steps per compiled call (``fast.sequences``, ``fast.training``), for the cases it declares
in ``infers``/``trains``; ``fast.plan`` chooses one and the time loop hands it the
sequence. The numbers equal the reference cell's within float32 rounding (the kernels'
``tanh`` and BLAS's summation order differ from NumPy's), which ``tests/unit/test_fast.py``
checks at a stated bound.

The compiled kernels add every bias themselves, so the input projection here is ``x W``
alone (a GRU with ``reset_after=False`` excepted: its kernel reads ``x W + b``).

Names: ``xp`` the projected inputs (T, B, G*M); ``H`` a (T+1, B, M) buffer with ``H[0]``
the initial state and ``H[t+1]`` the state after step t, so the previous states of steps
t0 .. t1-1 are one slice ``H[t0:t1]``.
"""
import numpy as np

from .. import activations
from ..layers.recurrent.dropout import apply_mask
from ..layers.recurrent.gates import gate_product
from . import kernels


def gate_operands(kernel, gates, transposed=False):
    """The per-gate blocks of a fused ``(K, G*N)`` kernel (their transposes with
    ``transposed``) as BLAS takes them (``kernels.blas_operand``): C order."""
    n = kernel.shape[1] // gates
    blocks = [kernel[:, i * n:(i + 1) * n] for i in range(gates)]
    return [kernels.blas_operand(b.T if transposed else b)[0] for b in blocks]


def dropout_operands(kernel, rec_mask):
    """The training loops' recurrent-dropout arguments for per-gate masks ``rec_mask``
    (G, B, M): (rmask, fw, fw_f, bw), ``gate_operands``'s blocks stacked, fw[g] block g in C
    order (its transpose when fw_f), bw[g] block g transposed, C order.
    ``fast.training.dropped_products`` says how they are used."""
    g = rec_mask.shape[0]
    fw, bw = gate_operands(kernel, g), gate_operands(kernel, g, transposed=True)
    fw_f = not fw[0].flags.c_contiguous
    return (np.ascontiguousarray(rec_mask), np.stack([w.T if fw_f else w for w in fw]), fw_f,
            np.stack(bw))


def fold_operands(cell, batch, dtype):
    """The folded product's operands (``kernels.fold_product``): ``o``, a ``(B, F+M)``
    buffer whose rows take ``[x_t | h]`` each step, and ``fk = [kernel; recurrent_kernel]``
    ``(F+M, G*M)``, in C order."""
    k, rk = cell.kernel.value, cell.recurrent_kernel.value
    return (np.empty((batch, k.shape[0] + rk.shape[0]), dtype),
            np.ascontiguousarray(np.concatenate([k, rk]), dtype))


def fold_chunks(fold, steps):
    """The folded training forward's calls: ``(t0, t1, (x, o, fk))`` per chunk of steps,
    ``fold`` = (xs, chunk, o, fk), so that no ``(T, B, F)`` copy of the inputs is kept; or,
    unfolded (``fold`` None), one call ``(0, steps, None)``."""
    if fold is None:
        yield 0, steps, None
        return
    xs, chunk, o, fk = fold
    for t0 in range(0, steps, chunk):
        t1 = min(steps, t0 + chunk)
        yield t0, t1, (xs[t0:t1], o, fk)


def _bias(cell, n, dtype):
    return kernels.bias_or_zeros(cell.bias.value if cell.use_bias else None, n, dtype)


class StepCount:
    """What a compiled training forward keeps in place of per-step caches: only their
    number (the loop's BPTT counts steps by it; the compiled BPTT reads the buffers)."""

    def __init__(self, steps):
        self.steps = steps

    def __len__(self):
        return self.steps


class CellSequence:
    """The compiled runs of one cell. ``infers(dtype)`` and ``trains(dtype, rec_mask)`` say
    what is covered; ``folds(dtype, batch)`` whether the steps take ``[x_t | h] @ [W; U]``
    as one product (then no projection is made, and ``run_steps``/``train_steps`` get the
    inputs themselves in ``fold``)."""

    separate_dxp = False           # BPTT writes dxp over the gates in xp (LSTM, GRU)
    fold_min_macs = None           # no fold

    def __init__(self, cell):
        self.cell = cell

    def project(self, x, out=None):
        """``x @ kernel`` for every step at once, one product (into ``out`` when given)."""
        return gate_product(x, self.cell.kernel.value, per_gate=x.ndim == 4, out=out)

    def trains(self, dtype, rec_mask):
        return self.infers(dtype)

    def folds(self, dtype, batch):
        return False

    def training_buffer(self, xs):
        return None


class SimpleRNNSequence(CellSequence):
    """SimpleRNN (tanh or relu): ``h = act((x W + h U) + b)``."""

    # BPTT writes dxp to a new buffer (h lives in xp): the loop sizes its chunks by that.
    separate_dxp = True
    # The fold pays where the recurrent product is large: measured in one process, fold /
    # projection, predict_on_batch 0.92 at (1024,100,64,512), 0.96-1.00 at (256,100,32,256),
    # but 1.07-1.22 at (128,50,16,64) to (256,50,32,128): widening K from M to F+M costs
    # BLAS 15-25% at those sizes, more than the projection it saves.
    fold_min_macs = 2 ** 24       # B * M * M, the recurrent product's multiply-adds per step

    @property
    def _relu(self):
        return self.cell.activation is activations.relu

    def infers(self, dtype):
        return ((self.cell.activation is activations.tanh or self._relu)
                and kernels.sequence(dtype, self.cell.units))

    def folds(self, dtype, batch):
        m = self.cell.units
        return batch * m * m >= self.fold_min_macs and kernels.folds(dtype)

    def run_steps(self, xp, states, ys, mask=None, fold=None):
        """Inference over the steps of ``xp``: ``ys[:, t]`` the output of step t when ``ys``
        is given. ``mask`` = (m, out, zero_output) runs the masked loop (see
        ``kernels.run_sequence``); the output returned is then ``out``, the last masked one.
        Folded, ``fold`` = (x, o, fk) (``kernels.NO_FOLD`` says what) and ``xp`` is only
        where the steps write ``a``. Returns (output, [h])."""
        cell, dt = self.cell, xp.dtype
        bias = _bias(cell, cell.units, dt)
        h0 = np.array(states[0], dt, order="C")
        if fold is not None and mask is None:
            h = kernels.run_sequence("simple_folded", *fold, xp[0], bias, self._relu, h0, ys)
        else:
            rk = kernels.blas_operand(cell.recurrent_kernel.value)
            if mask is not None:                       # (the masked loop folds or not)
                rk += fold or kernels.NO_FOLD
            h = kernels.run_sequence("simple_sequence", xp, bias, *rk, self._relu, h0, ys,
                                     mask=mask)
        return (h if mask is None else mask[1]), [h]

    def training_buffer(self, xs):
        """Where the training forward projects the inputs: ``H[1:]`` of a ``(T+1, B, M)``
        buffer ``H``; ``train_steps`` writes h_t over ``H[t+1]``."""
        T, B = xs.shape[-3], xs.shape[-2]
        return np.empty((T + 1, B, self.cell.units), xs.dtype)[1:]

    def train_steps(self, xp, states, ys, mask=None, rec_mask=None, fold=None):
        """The training forward: h_t written over xp[t] (carried over masked steps; ``mask``
        as in ``run_steps``; ``rec_mask`` (B, M) recurrent dropout). ``xp`` comes from
        ``training_buffer``. Folded, ``fold`` = (xs, chunk, o, fk): one call per chunk of the
        time-major inputs (``fold_chunks``). Returns (output, [h], buffers)."""
        cell, H = self.cell, xp.base
        H[0] = states[0]
        bias = _bias(cell, cell.units, xp.dtype)
        rm = np.zeros((0, 0), xp.dtype) if rec_mask is None else np.ascontiguousarray(rec_mask)
        rk = kernels.blas_operand(cell.recurrent_kernel.value)
        m, out, zero_out = kernels.mask_arguments(mask, xp.dtype)
        for t0, t1, f in fold_chunks(fold, len(xp)):
            kernels.run_sequence("simple_train_sequence", xp[t0:t1], bias, *rk,
                                 *(f or kernels.NO_FOLD), self._relu, H[t0],
                                 m[t0:t1], out, zero_out, rm, None if ys is None else ys[:, t0:t1])
        return H[-1] if mask is None else mask[1], [H[-1]], (H, rm)

    def backward_steps(self, buffers, t0, t1, dy, first, dstates, mask=None):
        """BPTT of steps t1-1 ... t0. Returns the updated ``dstates``, dxp of those steps
        (a new array: h stays in the buffer) and the stacked operands of the cell's
        ``weight_gradients`` (the previous states, a slice). ``mask`` = (m, dcarry,
        zero_output): dcarry (B, M) holds dLoss/d(output) passed back over masked steps."""
        H, rm = buffers
        dxp = np.empty((t1 - t0,) + H.shape[1:], H.dtype)
        kernels.call("simple_backward_steps", t0, t1, dy, first, H[1:],
                     *kernels.blas_operand(self.cell.recurrent_kernel.value.T), self._relu,
                     dstates[0], dxp, *kernels.mask_arguments(mask, H.dtype), rm)
        return dstates, dxp, {"h_in": H[t0:t1] if not rm.size else H[t0:t1] * rm}


def _default_gates(cell):
    return (cell.activation is activations.tanh
            and cell.recurrent_activation is activations.sigmoid)


class LSTMSequence(CellSequence):
    """LSTM with tanh and sigmoid: ``z = (x W + h U) + b``, gates i, f, c, o."""

    # Measured in one process, fold / projection, predict_on_batch. AMD EPYC (AVX-512, no
    # AMX): 0.86-0.93 from (64,50,16,64) to (256,100,32,256), 0.95 at (1024,100,64,512),
    # 0.97 at (32,50,16,64), 1.06 at the notebook's size (1,10,3,5), where it is all
    # overhead. Intel Xeon (AVX-512, AMX): 0.80 at (32,50,16,64) (train_on_batch 0.91),
    # 0.86 at (16,50,16,64), 0.90 at (8,50,16,64), 1.00 at (1,10,3,5) and at F = M = 64.
    # From (32,50,16,64) on, it gains on both.
    fold_min_macs = 2 ** 19       # B * M * 4M, the recurrent product's multiply-adds per step
    # Folded inference without a mask runs unit-major (``_run_unit_major``) where that was
    # measured faster: in-process A/B, predict_on_batch, one BLAS thread, unit-major /
    # row-major. OpenBLAS's AVX-512 kernels (Intel Xeon, AVX-512 + AMX): 0.83-0.95 at
    # (32,50,16,64), 0.81-0.94 at (16,50,16,128), 0.86-0.89 at 40 and 48 rows, 0.94-0.95 at
    # (128,50,32,256), but 1.04-1.06 at (8,50,16,128) and 0.99-1.06 at 4 rows. Its Haswell
    # kernels (AVX2, ``OPENBLAS_CORETYPE=Haswell``, numba compiling for haswell, same
    # machine): 0.89-0.91 at (8,50,16,128), 0.94-0.99 at 16 to 64 rows of 64 to 128
    # units, but 1.01-1.05 from (64,50,32,256) up, where the product is large.
    unit_major_rows = None        # tests: unit-major from this many rows, at every size

    def unit_major(self, rows, width):
        """True when folded inference of ``rows`` rows of ``width`` inputs runs unit-major."""
        if self.unit_major_rows is not None:
            return rows >= self.unit_major_rows
        from .blas import AVX512_CORES, core
        if core() in AVX512_CORES:
            return rows >= 16
        return rows >= 8 and rows * (width + self.cell.units) * 4 * self.cell.units <= 2 ** 22

    def infers(self, dtype):
        return _default_gates(self.cell) and kernels.sequence(dtype, self.cell.units)

    def folds(self, dtype, batch):
        return batch * 4 * self.cell.units ** 2 >= self.fold_min_macs and kernels.folds(dtype)

    def run_steps(self, xp, states, ys, mask=None, fold=None):
        """As ``SimpleRNNSequence.run_steps``. Returns (output, [h, c])."""
        cell, dt = self.cell, xp.dtype
        bias = _bias(cell, xp.shape[-1], dt)
        if fold is not None and mask is None and self.unit_major(*fold[0].shape[1:]):
            return self._run_unit_major(fold[0], fold[2], bias, states, ys)
        h0, c0 = (np.array(s, dt, order="C") for s in states)
        if fold is not None and mask is None:
            h, c = kernels.run_sequence("lstm_folded", *fold, xp[0], bias, h0, c0, ys)
        else:
            rk = kernels.blas_operand(cell.recurrent_kernel.value)
            if mask is not None:                       # (the masked loop folds or not)
                rk += fold or kernels.NO_FOLD
            h, c = kernels.run_sequence("lstm_sequence", xp, bias, *rk, h0, c0, ys, mask=mask)
        return (h if mask is None else mask[1]), [h, c]

    def _run_unit_major(self, x, fk, bias, states, ys):
        """Folded inference without a mask in the unit-major layout (``lstm_folded_t``):
        states, gates and the product's operand transposed, so that BLAS takes
        ``(o @ fk)^T`` and the gates run as one flat loop. Returns (h, [h, c])."""
        steps, rows, d = x.shape
        dt = x.dtype
        units = self.cell.units
        o_t = np.empty((d + units) * rows, dt)
        o_t[d * rows:] = np.asarray(states[0], dt).T.reshape(-1)
        c_t = np.array(np.asarray(states[1]).T, dt, order="C").reshape(-1)   # (a copy)
        z_t = np.empty(4 * units * rows, dt)
        kernels.run_sequence("lstm_folded_t", x, o_t, fk, z_t, np.repeat(bias, rows), c_t, ys)
        h = np.ascontiguousarray(o_t[d * rows:].reshape(units, rows).T)
        return h, [h, np.ascontiguousarray(c_t.reshape(units, rows).T)]

    def train_steps(self, xp, states, ys, mask=None, rec_mask=None, fold=None):
        """The training forward, keeping h and c in ``(T+1, B, M)`` buffers and the gates
        over ``xp``; ``rec_mask`` per-gate recurrent dropout masks (G, B, M); ``mask`` and
        ``fold`` as in ``SimpleRNNSequence.train_steps``. Returns (output, [h, c], buffers)."""
        T, B, _ = xp.shape
        H = np.empty((T + 1, B, self.cell.units), xp.dtype)
        C = np.empty_like(H)
        H[0], C[0] = states
        bias = _bias(self.cell, xp.shape[-1], xp.dtype)
        rk = self.cell.recurrent_kernel.value
        drop = None if rec_mask is None else dropout_operands(rk, rec_mask)
        rm, fw, fw_f, _ = kernels.dropout_arguments(drop, xp.dtype)
        m, out, zero_out = kernels.mask_arguments(mask, xp.dtype)
        for t0, t1, f in fold_chunks(fold, T):
            kernels.run_sequence("lstm_train_sequence", xp[t0:t1], bias, *kernels.blas_operand(rk),
                                 *(f or kernels.NO_FOLD), H[t0:t1 + 1],
                                 C[t0:t1 + 1], m[t0:t1], out, zero_out, rm, fw, fw_f,
                                 None if ys is None else ys[:, t0:t1])
        return H[T] if mask is None else mask[1], [H[T], C[T]], (xp, H, C, drop)

    def backward_steps(self, buffers, t0, t1, dy, first, dstates, mask=None):
        """As ``SimpleRNNSequence.backward_steps``; dstates (C-contiguous) are updated in
        place and dxp is written over the gates in xp."""
        xp, H, C, drop = buffers
        dh, dc = dstates
        rm, _, _, bw = kernels.dropout_arguments(drop, xp.dtype)
        dc = kernels.call("lstm_backward_steps", t0, t1, dy, first, xp, C,   # (dc: its own
                          *kernels.blas_operand(self.cell.recurrent_kernel.value.T), dh, dc,
                          *kernels.mask_arguments(mask, xp.dtype), rm, bw)   # buffer back)
        h_in = H[t0:t1] if drop is None else apply_mask(H[t0:t1], drop[0], time_axis=True)
        return [dh, dc], xp[t0:t1], {"h_in": h_in}


class GRUSequence(CellSequence):
    """GRU with tanh and sigmoid. ``reset_after`` (``xp = x W`` and both biases added by
    the kernel) infers and trains; ``reset_after=False`` (``xp = x W + b``) infers."""

    def project(self, x, out=None):
        xp = super().project(x, out)
        if not self.cell.reset_after and self.cell.use_bias:
            xp += self.cell.bias.value
        return xp

    def infers(self, dtype):
        return _default_gates(self.cell) and kernels.sequence(dtype, self.cell.units)

    def trains(self, dtype, rec_mask):
        return self.cell.reset_after and self.infers(dtype)

    def run_steps(self, xp, states, ys, mask=None, fold=None):
        """As ``SimpleRNNSequence.run_steps`` (a GRU does not fold). Returns (output, [h])."""
        cell, dt, m = self.cell, xp.dtype, self.cell.units
        rk = cell.recurrent_kernel.value
        h0 = np.array(states[0], dt, order="C")
        if not cell.reset_after:
            h = kernels.run_sequence("gru_before_sequence", xp,
                                     *kernels.blas_operand(rk[:, :2 * m]),
                                     *kernels.blas_operand(rk[:, 2 * m:]), h0, ys, mask=mask)
        else:
            b_in, b_rec = cell.bias.value if cell.use_bias else (None, None)
            h = kernels.run_sequence("gru_sequence", xp, kernels.bias_or_zeros(b_in, 3 * m, dt),
                                     *kernels.blas_operand(rk),
                                     kernels.bias_or_zeros(b_rec, 3 * m, dt), h0, ys, mask=mask)
        return (h if mask is None else mask[1]), [h]

    def train_steps(self, xp, states, ys, mask=None, rec_mask=None, fold=None):
        """The training forward, keeping h in a ``(T+1, B, M)`` buffer, rh in a (T, B, M)
        one, z, r and hh over ``xp``: the arrays BPTT needs, no more. Returns (output, [h],
        buffers)."""
        T, B, _ = xp.shape
        cell, m, dt = self.cell, self.cell.units, xp.dtype
        H, RH = np.empty((T + 1, B, m), dt), np.empty((T, B, m), dt)
        H[0] = states[0]
        b_in, b_rec = cell.bias.value if cell.use_bias else (None, None)
        rk = cell.recurrent_kernel.value
        drop = None if rec_mask is None else dropout_operands(rk, rec_mask)
        rm, fw, fw_f, _ = kernels.dropout_arguments(drop, dt)
        kernels.run_sequence("gru_train_sequence", xp, kernels.bias_or_zeros(b_in, 3 * m, dt),
                             *kernels.blas_operand(rk), kernels.bias_or_zeros(b_rec, 3 * m, dt),
                             H, RH, *kernels.mask_arguments(mask, dt), rm, fw, fw_f, ys)
        return H[T] if mask is None else mask[1], [H[T]], (xp, H, RH, drop)

    def backward_steps(self, buffers, t0, t1, dy, first, dstates, mask=None):
        """As ``LSTMSequence.backward_steps``, drh written over RH; the stacked operands
        are the previous states and drh, slices of H and RH."""
        xp, H, RH, drop = buffers
        rm, _, _, bw = kernels.dropout_arguments(drop, xp.dtype)
        kernels.call("gru_backward_steps", t0, t1, dy, first, xp, H, RH,
                     *kernels.blas_operand(self.cell.recurrent_kernel.value.T), dstates[0],
                     *kernels.mask_arguments(mask, xp.dtype), rm, bw)
        h_in = H[t0:t1] if drop is None else apply_mask(H[t0:t1], drop[0], time_axis=True)
        return dstates, xp[t0:t1], {"h_in": h_in, "drh": RH[t0:t1]}


# The built-in cells, by class: a subclass (which may change the math) runs the reference.
SEQUENCES = {("unrolled.layers.recurrent.cells", "SimpleRNNCell"): SimpleRNNSequence,
             ("unrolled.layers.recurrent.lstm", "LSTMCell"): LSTMSequence,
             ("unrolled.layers.recurrent.gru", "GRUCell"): GRUSequence}


def of_cell(cell):
    """The compiled implementation of ``cell``'s own class, or None."""
    kind = SEQUENCES.get((type(cell).__module__, type(cell).__qualname__))
    return None if kind is None else kind(cell)
