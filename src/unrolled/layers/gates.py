"""Fused gate products and dropout masks, shared by every cell and the time loop.

A cell with G gates multiplies its input by one fused ``(F, G*N)`` kernel and its state
by one fused ``(M, G*N)`` recurrent kernel: one matrix product gives every gate, columns
gate-major (``[gate 0 | gate 1 | ...]``).

Keras's LSTM and GRU with ``recurrent_dropout > 0`` (its "implementation 1") draw an
independent dropout mask *per gate*, for the inputs and for the state. Then each gate
sees its own masked copy of the operand: ``a`` has a leading gate axis ``(G, ..., K)``
and gate g's columns of the kernel multiply ``a[g]``. ``per_gate`` says which form
an operand has; a single mask (``(B, K)``) is shared by all gates.
"""
import numpy as np

from .. import kernels, utils


def dropout_mask(shape, rate, dtype):
    """Keras's inverted dropout mask: 0 with probability ``rate``, else ``1/(1-rate)``."""
    keep = utils.rng().random(shape) >= rate
    return (keep / (1.0 - rate)).astype(dtype)


def draw_dropout_masks(cell, batch, features, dtype, training):
    """The input mask ``(B, F)`` and recurrent mask ``(B, M)`` of one call — or, for a cell
    with ``dropout_mask_count = G > 1``, ``(G, B, F)`` and ``(G, B, M)``. None where the rate
    is not in (0, 1) or outside training, as Keras applies dropout only for 0 < rate < 1."""
    count = getattr(cell, "dropout_mask_count", 1)

    def draw(rate, width):
        if not (training and 0 < rate < 1):
            return None
        return dropout_mask((batch, width) if count == 1 else (count, batch, width), rate, dtype)

    dp = draw(getattr(cell, "dropout", 0), features)
    rec_rate = getattr(cell, "recurrent_dropout", 0)
    return dp, (draw(rec_rate, cell.units) if rec_rate else None)


def is_per_gate(mask):
    return mask is not None and mask.ndim == 3


def apply_mask(a, mask, time_axis=False):
    """What the kernel sees: ``a``, ``a * mask``, or one masked copy per gate (gate axis first).

    With ``time_axis`` ``a`` is a whole sequence ``(T, B, K)`` and the mask, drawn per
    sequence, is the same at every step."""
    if mask is None:
        return a
    if mask.ndim == 2:
        return a * mask
    return a[None] * (mask[:, None] if time_axis else mask)


def unmask(da, mask):
    """dLoss/da from dLoss/d(apply_mask(a, mask)): per-gate copies add up."""
    if mask is None:
        return da
    if mask.ndim == 2:
        return da * mask
    shaped = mask[:, None] if da.ndim == 4 else mask
    return (da * shaped).sum(axis=0)


def matmul_last(a, b, out=None):
    """``a @ b`` over the last axis of ``a`` of any rank, as one 2-D BLAS product, written
    into ``out`` (C-contiguous, the result's shape) when given.

    NumPy runs ``(T, B, F) @ (F, N)`` as T separate small products, several times slower
    than the same work folded into one ``(T*B, F) @ (F, N)`` product."""
    if a.ndim == 2 and out is None:  # np.dot: the same BLAS call as @, with less overhead
        return np.dot(a, b)          # (a third of a 32x64 @ 64x256 product's time)
    n = b.shape[-1]
    if out is None:
        return np.dot(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + (n,))
    np.dot(a.reshape(-1, a.shape[-1]), b, out=out.reshape(-1, n))
    return out


def _kernel_per_gate(kernel, gates):
    k = kernel.shape[0]
    return kernel.reshape(k, gates, -1).transpose(1, 0, 2)        # (K, G*N) -> (G, K, N)


def gate_product(a, kernel, per_gate=False, out=None):
    """``a @ kernel``; with ``per_gate``, gate g's columns use ``a[g]``. Result ``(..., G*N)``,
    in ``out`` when given (without ``per_gate``). One step's per-gate product (``a`` of
    shape ``(G, B, K)``) is one ``np.dot`` per gate on ``gate_operands``'s blocks: the
    calls the compiled loops make (``unrolled.kernels``)."""
    if not per_gate:
        return matmul_last(a, kernel, out)
    g = a.shape[0]
    if a.ndim == 3:
        n = kernel.shape[1] // g
        out = np.empty((a.shape[1], kernel.shape[1]), np.result_type(a, kernel))
        for i, w in enumerate(gate_operands(kernel, g)):
            out[:, i * n:(i + 1) * n] = np.dot(a[i], w)
        return out
    kg = _kernel_per_gate(kernel, g)
    kg = kg.reshape((g,) + (1,) * (a.ndim - 3) + kg.shape[1:])   # broadcast over time
    out = np.matmul(a, kg)                                         # (G, ..., B, N)
    return np.moveaxis(out, 0, -2).reshape(a.shape[1:-1] + (kernel.shape[1],))


def add_gate_product(a, kernel, per_gate, z):
    """``z += gate_product(a, kernel, per_gate)``, in place; returns z. For float32 with the
    compiled kernels and NumPy's own BLAS (``kernels.adds_products``), BLAS adds a single
    product into z itself (gemm with beta = 1), as the compiled loops do, so the bits agree;
    no product array is written and read back. (BLAS's sums then differ in the last bits
    from ``z + np.dot(a, kernel)``, the route taken otherwise.)"""
    if not per_gate and kernels.adds_products(z, a.shape[-1]):
        kernels.call("matmul_add", kernels.contiguous(a, z.dtype), *kernels.blas_operand(kernel), z)
    else:
        z += gate_product(a, kernel, per_gate)
    return z


def fold_operands(cell, batch, dtype):
    """The folded product's operands (``kernels.fold_product``): ``o``, a ``(B, F+M)``
    buffer whose rows take ``[x_t | h]`` each step, and ``fk = [kernel; recurrent_kernel]``
    ``(F+M, G*M)``, in C order."""
    k, rk = cell.kernel.value, cell.recurrent_kernel.value
    return (np.empty((batch, k.shape[0] + rk.shape[0]), dtype),
            np.ascontiguousarray(np.concatenate([k, rk]), dtype))


def folded_product(cell, x_t, h_in):
    """One step's ``z = [x_t | h_in] @ [kernel; recurrent_kernel]``, the call the compiled
    loops make (a fresh z)."""
    o, fk = fold_operands(cell, x_t.shape[0], x_t.dtype)
    z = np.empty((x_t.shape[0], fk.shape[1]), x_t.dtype)
    kernels.call("fold_product", kernels.contiguous(x_t, z.dtype),
                 kernels.contiguous(h_in, z.dtype), o, fk, z)
    return z


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


def gate_product_backward(dz, a, kernel, per_gate=False):
    """dLoss/da for ``z = gate_product(a, kernel)``, shaped like ``a``."""
    if not per_gate:                                               # z = a W  =>  da = dz W^T
        return matmul_last(dz, transposed(kernel))
    g = a.shape[0]
    if a.ndim == 3:                                                # one step, as gate_product
        n = kernel.shape[1] // g
        da = np.empty(a.shape, np.result_type(dz, kernel))
        for i, w_t in enumerate(gate_operands(kernel, g, transposed=True)):
            np.dot(np.ascontiguousarray(dz[:, i * n:(i + 1) * n]), w_t, out=da[i])
        return da
    dz_g = np.moveaxis(dz.reshape(dz.shape[:-1] + (g, dz.shape[-1] // g)), -2, 0)  # (G, ..., B, N)
    kg = _kernel_per_gate(kernel, g).transpose(0, 2, 1)
    kg = kg.reshape((g,) + (1,) * (a.ndim - 3) + kg.shape[1:])
    return np.matmul(dz_g, kg)


def transposed(kernel):
    """``kernel.T`` in C order, as BPTT multiplies by it: OpenBLAS takes a Fortran-ordered
    operand (a plain ``.T``) up to twice as slowly at a step's sizes, and the compiled loops
    take the same C-ordered copy (``kernels.blas_operand``), so both paths sum alike."""
    return np.ascontiguousarray(kernel.T)


def dropout_operands(kernel, rec_mask):
    """The compiled training loops' recurrent-dropout arguments for per-gate masks
    ``rec_mask`` (G, B, M): (rmask, fw, fw_f, bw), ``gate_operands``'s blocks stacked, fw[g]
    block g in C order or its transpose when fw_f (Fortran-ordered blocks), bw[g] block g
    transposed, C order. ``fast.training.dropped_products`` says how they are used."""
    g = rec_mask.shape[0]
    fw, bw = gate_operands(kernel, g), gate_operands(kernel, g, transposed=True)
    fw_f = not fw[0].flags.c_contiguous
    return (np.ascontiguousarray(rec_mask), np.stack([w.T if fw_f else w for w in fw]), fw_f,
            np.stack(bw))


def gate_operands(kernel, gates, transposed=False):
    """The per-gate blocks of a fused ``(K, G*N)`` kernel (their transposes with
    ``transposed``, for the backward) as BLAS takes them (``kernels.blas_operand``): each C-
    or Fortran-contiguous, strided blocks copied to C order."""
    n = kernel.shape[1] // gates
    blocks = [kernel[:, i * n:(i + 1) * n] for i in range(gates)]
    return [kernels.blas_operand(b.T if transposed else b)[0] for b in blocks]


def gate_kernel_gradient(a, dz, per_gate=False):
    """dLoss/d(kernel) = sum over steps and batch of ``a^T dz`` — one product.

    ``a`` is ``(T, B, K)`` (or ``(G, T, B, K)`` per gate) and ``dz`` is ``(T, B, G*N)``."""
    if not per_gate:                # (K, T*B) @ (T*B, N); a strided dz (a column block of a
        a2 = a.reshape(-1, a.shape[-1])                     # contiguous array) is not copied
        dz2 = dz.reshape(-1, dz.shape[-1]) if dz.flags.c_contiguous else _rows(dz)
        return a2.T @ dz2           # (@, not np.dot: np.dot copies a strided dz2)
    # Per gate: gate g's columns are a[g]^T dz[..., g's columns], one BLAS product each.
    # (np.einsum over the gate axis ran its own loops, not BLAS: 86% of an LSTM training
    # step with recurrent dropout at (256, 100, 32, 256).)
    g, n = a.shape[0], dz.shape[-1] // a.shape[0]
    out = np.empty((a.shape[-1], dz.shape[-1]), np.result_type(a, dz))
    for i in range(g):
        out[:, i * n:(i + 1) * n] = gate_kernel_gradient(a[i], dz[..., i * n:(i + 1) * n])
    return out


def _rows(a):
    """A (T, B, N) view as (T*B, N) without copying when its rows are evenly spaced."""
    t, b, n = a.shape
    if a.strides[0] == b * a.strides[1] and a.strides[2] == a.itemsize:
        return np.lib.stride_tricks.as_strided(a, (t * b, n), a.strides[1:])
    return a.reshape(t * b, n)


class TimeMajorInputs:
    """A recurrent layer's inputs as its time loop reads them: time-major, in processing
    order (reversed for ``go_backwards``), with the input dropout mask applied.
    ``inputs[t0:t1]`` is a new contiguous ``(t1-t0, B, F)`` array (``(G, t1-t0, B, F)``
    for per-gate masks). Made a chunk of steps at a time, for the projection and again for
    BPTT's weight gradients, so no ``(T, B, F)`` copy of ``x`` is kept beside the
    activations during training: the same values, a chunk of memory instead of the
    sequence's."""

    def __init__(self, x, go_backwards, mask):
        self.steps = x.transpose(1, 0, 2)[::-1] if go_backwards else x.transpose(1, 0, 2)
        self.mask, self.shape, self.dtype = mask, self.steps.shape, x.dtype

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, steps):
        return apply_mask(np.ascontiguousarray(self.steps[steps]), self.mask, time_axis=True)


PROJECTION_CHUNK_BYTES = 4 * 2 ** 20


def projection_chunk(cell, xs, width=None):
    """Steps per input projection product: about PROJECTION_CHUNK_BYTES of output (of
    ``width`` values per row when given: the inputs themselves, for a folded cell)."""
    shape = getattr(getattr(cell, "kernel", None), "shape", None)
    width = width or (shape[-1] if shape else 4 * cell.output_size)
    T, B = xs.shape[-3], xs.shape[-2]
    return max(1, min(T, PROJECTION_CHUNK_BYTES // max(1, B * width * xs.dtype.itemsize)))


def project_in_chunks(cell, xs, chunk, out=None):
    """Every step's input projection in one (T, B, G*M) buffer (``out`` when given),
    computed in the chunks inference uses. BLAS's sums depend on a product's row count (a
    1024-row and a 2048-row product differ in the last bits), so the same chunks make
    training's forward, ``explain``'s trace and ``predict`` agree bit for bit at every size.
    ``xs[t0:t1]`` are steps t0 .. t1-1 of the time-major inputs (``TimeMajorInputs``)."""
    T = xs.shape[0]
    xp = out
    for t0 in range(0, T, chunk):
        x_c = xs[t0:t0 + chunk]
        if xp is None:                                       # the first chunk sizes the buffer
            got = cell.project_inputs(x_c)
            if chunk >= T:
                return got
            xp = np.empty((T,) + got.shape[1:], got.dtype)
            xp[:chunk] = got
        else:
            part = xp[t0:t0 + chunk]
            got = cell.project_inputs(x_c, out=part)
            if got is not part:                              # (a cell without ``out``)
                part[...] = got
    return xp


def stack_steps(items, per_gate=False):
    """Per-step arrays stacked over time: ``(T, B, K)``, or ``(G, T, B, K)`` per gate. (The
    compiled training forward keeps its steps in whole-sequence buffers and hands BPTT
    slices of those instead: ``backward_steps``.)"""
    return np.stack(items, axis=1 if per_gate else 0)


class StepCaches:
    """The step caches of a compiled training forward, made on demand: ``caches[t]`` is
    ``make(t)``, the tuple ``step`` would have cached (views of the training buffers), and
    ``caches[t0:t1]`` is the same for those steps. Compiled BPTT reads the buffers
    themselves, so T tuples of views built on every call were Python work for nothing."""

    def __init__(self, make, start, stop):
        self.make, self.start, self.stop = make, start, stop

    def __len__(self):
        return self.stop - self.start

    def __getitem__(self, index):
        if isinstance(index, slice):
            first, last, step = index.indices(len(self))
            if step != 1:
                return [self[t] for t in range(first, last, step)]
            return StepCaches(self.make, self.start + first, self.start + max(first, last))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("step cache index out of range")
        return self.make(self.start + index)


class GateActivations:
    """The activations of a fused gate vector, block by block: ``[act_0 | act_1 | ...]``.

    LSTM's ``z = [zi | zf | zc | zo]`` goes through ``[sigmoid | sigmoid | tanh | sigmoid]``.
    When every block is sigmoid or tanh (Keras's defaults) the whole vector takes four
    NumPy passes, whatever the number of gates, because

        sigmoid(z) = 0.5 * tanh(0.5 * z) + 0.5    and    tanh(z) = 1 * tanh(1 * z) + 0,

    so ``a = tanh(z * s_in) * s_out + shift`` with per-column constants — the same
    arithmetic as ``activations.sigmoid`` and ``np.tanh``, so results are unchanged. (An
    ``exp``-based form measured only 10% faster and lost precision near 0: not taken.)

    The derivative is ``sigmoid' = a (1 - a)`` and ``tanh' = 1 - a^2``, i.e. ``p + a (q - a)``
    with ``(p, q) = (0, 1)`` for sigmoid columns and ``(1, 0)`` for tanh columns. Other
    activations run block by block.
    """

    def __init__(self, activations, units):
        from .. import activations as acts
        self.blocks = list(activations)
        self.units = units
        self.fused = all(a is acts.sigmoid or a is acts.tanh for a in self.blocks)
        self.default_lstm = self.blocks == [acts.sigmoid, acts.sigmoid, acts.tanh, acts.sigmoid]
        self._constants = {}

    def _consts(self, dtype):
        if dtype not in self._constants:
            from .. import activations as acts
            sig = [a is acts.sigmoid for a in self.blocks]
            col = lambda on, off: np.repeat([on if s else off for s in sig], self.units).astype(dtype)  # noqa: E731
            self._constants[dtype] = (col(0.5, 1.0), col(0.5, 1.0), col(0.5, 0.0),   # s_in, s_out, shift
                                      col(0.0, 1.0), col(1.0, 0.0))                  # p, q
        return self._constants[dtype]

    def __call__(self, z):
        if not self.fused:
            n = self.units
            return np.concatenate([act(z[:, k * n:(k + 1) * n]) for k, act in enumerate(self.blocks)], axis=1)
        s_in, s_out, shift, _, _ = self._consts(z.dtype)
        a = z * s_in
        kernels.tanh(a, out=a)
        a *= s_out
        a += shift                                     # a = tanh(z * s_in) * s_out + shift
        return a

    def backward(self, z, a, da):
        """dLoss/dz from dLoss/da, with ``a = self(z)``."""
        if not self.fused:
            n = self.units
            return np.concatenate([act.backward(z[:, k * n:(k + 1) * n], a[:, k * n:(k + 1) * n],
                                                da[:, k * n:(k + 1) * n])
                                   for k, act in enumerate(self.blocks)], axis=1)
        _, _, _, p, q = self._consts(z.dtype)
        dz = q - a                                     # a' = p + a (q - a)
        dz *= a
        dz += p
        dz *= da
        return dz
