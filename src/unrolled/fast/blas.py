"""NumPy's own BLAS, called from compiled loops exactly as ``np.dot`` calls it.

The sequence loops' recurrent product calls the very ``cblas_sgemm``/``cblas_sgemv`` that
NumPy's ``np.dot`` calls (NumPy's bundled 64-bit-integer OpenBLAS, located in the process),
with the arguments NumPy passes, so a product equals ``np.dot``'s on the same operands.
Without that library (another BLAS build), the reference cells run.

The compiled code names the two functions by symbol (``SGEMM``, ``SGEMV``), and
``register`` binds those symbols to this process's addresses before any loop runs. Nothing
compiled holds an address, so numba can cache the loops on disk (a ctypes function
pointer would be baked in as a constant, and numba refuses to cache that).
"""
import ctypes
import glob
import os

import numpy as np
from numba import types

from .steps import jit, one, zero

_ROW_MAJOR, _COL_MAJOR, _NO_TRANS, _TRANS = 101, 102, 111, 112
_i32, _i64, _f32, _ptr = types.int32, types.int64, types.float32, types.voidptr
SGEMM, SGEMV = "unrolled_cblas_sgemm64", "unrolled_cblas_sgemv64"
sgemm = types.ExternalFunction(SGEMM, types.void(
    _i32, _i32, _i32, _i64, _i64, _i64, _f32, _ptr, _i64, _ptr, _i64, _f32, _ptr, _i64))
sgemv = types.ExternalFunction(SGEMV, types.void(
    _i32, _i32, _i64, _i64, _f32, _ptr, _i64, _ptr, _i64, _f32, _ptr, _i64))


def _numpy_openblas():
    """(library, prefix, suffix) of NumPy's own 64-bit-integer OpenBLAS, whose symbols are
    ``{prefix}cblas_sgemm{suffix}`` etc., or None when it is not one this module knows."""
    root = os.path.dirname(os.path.dirname(np.__file__))
    libs = (glob.glob(os.path.join(root, "numpy.libs", "*openblas64*"))        # Linux wheels
            + glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs", "*openblas64*")))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_", "64_"), ("", "64_")):
            if (getattr(lib, f"{prefix}cblas_sgemm{suffix}", None) is not None
                    and getattr(lib, f"{prefix}cblas_sgemv{suffix}", None) is not None):
                return lib, prefix, suffix
    return None


def numpy_blas():
    """The addresses of NumPy's own ``cblas_sgemm``/``cblas_sgemv`` (64-bit integer
    OpenBLAS), or None when NumPy's BLAS is not one this module knows how to call."""
    found = _numpy_openblas()
    if found is None:
        return None
    lib, prefix, suffix = found
    return tuple(ctypes.cast(getattr(lib, f"{prefix}cblas_{f}{suffix}"), ctypes.c_void_p).value
                 for f in ("sgemm", "sgemv"))


_core = None
AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids")


def core():
    """The kernel family NumPy's OpenBLAS runs in this process, lower case (``skylakex``,
    ``haswell``, ``zen``...: ``openblas_get_corename``, which ``OPENBLAS_CORETYPE`` can
    change), or '' when unknown. Layout choices that depend on the CPU read it."""
    global _core
    if _core is None:
        _core = ""
        found = _numpy_openblas()
        if found is not None:
            lib, prefix, suffix = found
            name = getattr(lib, f"{prefix}openblas_get_corename{suffix}", None)
            if name is not None:
                name.restype = ctypes.c_char_p
                _core = (name() or b"").decode("ascii", "replace").strip().lower()
    return _core


def register():
    """Bind ``SGEMM``/``SGEMV`` to NumPy's BLAS in this process; False when it is not found
    (then no loop that calls BLAS may run)."""
    addresses = numpy_blas()
    if addresses is None:
        return False
    import llvmlite.binding as llvm
    llvm.add_symbol(SGEMM, addresses[0])
    llvm.add_symbol(SGEMV, addresses[1])
    return True



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
def matmul_t(a_t, rows, b, out_t):
    """out_t = (a @ b)^T, unit-major, for a given as its transpose: a_t the (K * rows,)
    values of a (rows, K) stored column by column (a_t[k * rows + r] = a[r, k]), b (K, N)
    C-contiguous, out_t (N * rows,) with out_t[n * rows + r] = (a @ b)[r, n]. One sgemm,
    column-major: out_t read as the (rows x N) product, a_t as a (rows x K) matrix, b as
    the transpose of the (N x K) matrix its C order stores. At a recurrent step's sizes
    OpenBLAS's SkylakeX kernels take this layout as fast as, or faster than, np.dot's
    (see ``fast.cells.LSTMSequence``)."""
    k, n = b.shape
    sgemm(_COL_MAJOR, _NO_TRANS, _TRANS, rows, n, k, one, a_t.ctypes.data, rows,
          b.ctypes.data, n, zero, out_t.ctypes.data, rows)
