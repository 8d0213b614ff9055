"""Fused gate products, shared by every cell and the time loop.

A cell with G gates multiplies its input by one fused ``(F, G*N)`` kernel and its state
by one fused ``(M, G*N)`` recurrent kernel: one matrix product gives every gate, columns
gate-major (``[gate 0 | gate 1 | ...]``).

With Keras's per-gate dropout masks (``dropout.py``) each gate sees its own masked copy
of the operand: ``a`` has a leading gate axis ``(G, ..., K)`` and gate g's columns of the
kernel multiply ``a[g]``; ``per_gate`` says which form an operand has.
"""
import numpy as np


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
