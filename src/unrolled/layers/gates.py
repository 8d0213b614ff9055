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

from .. import utils


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
    shape ``(G, B, K)``) is one ``np.dot`` per gate."""
    if not per_gate:
        return matmul_last(a, kernel, out)
    g = a.shape[0]
    if a.ndim == 3:
        n = kernel.shape[1] // g
        out = np.empty((a.shape[1], kernel.shape[1]), np.result_type(a, kernel))
        for i in range(g):
            out[:, i * n:(i + 1) * n] = np.dot(a[i], kernel[:, i * n:(i + 1) * n])
        return out
    kg = _kernel_per_gate(kernel, g)
    kg = kg.reshape((g,) + (1,) * (a.ndim - 3) + kg.shape[1:])   # broadcast over time
    out = np.matmul(a, kg)                                         # (G, ..., B, N)
    return np.moveaxis(out, 0, -2).reshape(a.shape[1:-1] + (kernel.shape[1],))


def gate_product_backward(dz, a, kernel, per_gate=False):
    """dLoss/da for ``z = gate_product(a, kernel)``, shaped like ``a``."""
    if not per_gate:                                               # z = a W  =>  da = dz W^T
        return matmul_last(dz, transposed(kernel))
    g = a.shape[0]
    if a.ndim == 3:                                                # one step, as gate_product
        n = kernel.shape[1] // g
        da = np.empty(a.shape, np.result_type(dz, kernel))
        for i in range(g):
            np.dot(dz[:, i * n:(i + 1) * n], transposed(kernel[:, i * n:(i + 1) * n]), out=da[i])
        return da
    dz_g = np.moveaxis(dz.reshape(dz.shape[:-1] + (g, dz.shape[-1] // g)), -2, 0)  # (G, ..., B, N)
    kg = _kernel_per_gate(kernel, g).transpose(0, 2, 1)
    kg = kg.reshape((g,) + (1,) * (a.ndim - 3) + kg.shape[1:])
    return np.matmul(dz_g, kg)


def transposed(kernel):
    """``kernel.T`` in C order, as BPTT multiplies by it: OpenBLAS takes a Fortran-ordered
    operand (a plain ``.T``) up to twice as slowly at a step's sizes."""
    return np.ascontiguousarray(kernel.T)


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


def project_in_chunks(project, xs, chunk, out=None):
    """Every step's input projection, ``project(xs[t0:t1], out=...)`` chunk by chunk, in
    one (T, B, G*M) buffer (``out`` when given), in the chunks inference uses, so that
    training's forward, ``explain``'s trace and ``predict`` make the same products.
    ``xs[t0:t1]`` are steps t0 .. t1-1 of the time-major inputs (``TimeMajorInputs``)."""
    T = xs.shape[0]
    xp = out
    for t0 in range(0, T, chunk):
        x_c = xs[t0:t0 + chunk]
        if xp is None:                                       # the first chunk sizes the buffer
            got = project(x_c)
            if chunk >= T:
                return got
            xp = np.empty((T,) + got.shape[1:], got.dtype)
            xp[:chunk] = got
        else:
            part = xp[t0:t0 + chunk]
            got = project(x_c, out=part)
            if got is not part:                              # (a cell without ``out``)
                part[...] = got
    return xp


def stack_steps(items, per_gate=False):
    """Per-step arrays stacked over time: ``(T, B, K)``, or ``(G, T, B, K)`` per gate. (The
    compiled training forward keeps its steps in whole-sequence buffers and hands BPTT
    slices of those instead: ``fast.cells``.)"""
    return np.stack(items, axis=1 if per_gate else 0)


def cell_input_gradient(cell, dxp, x):
    """dLoss/dx of a chunk of steps, from a cell's dLoss/d(xp): its ``input_gradient``, or,
    for a cell without one, the product with its kernel (``xp = x @ kernel + ...``)."""
    own = getattr(cell, "input_gradient", None)
    if own is not None:
        return own(dxp, x)
    return gate_product_backward(dxp, x, cell.kernel.value, x.ndim == 4)
