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
* the fused step math (``fast.steps``), forward and backward, for SimpleRNN (tanh or
  relu), LSTM and GRU with their default activations, called by the whole-sequence loops.
  To keep less memory, the training forward writes the gate activations over the projected
  inputs and BPTT writes dxp over the gates; the pre-activations are never needed, since
  every derivative comes from an output.
* the fold: large SimpleRNN and LSTM layers compute ``z = [x_t | h] @ [kernel;
  recurrent_kernel]``, one product per step (``fold_product``), instead of ``x W`` for all
  steps (inner dimension F, where BLAS runs at half its rate) and ``h U`` per step. The
  LSTM's folded inference runs unit-major where that was measured faster
  (``lstm_folded_t``, ``fast.cells.LSTMSequence.unit_major``): states and gates stored
  transposed, BLAS computing ``(o @ fk)^T``, the gates one flat loop.
* whole-sequence loops (``*_sequence``, and ``*_sequence_masked`` with a mask, for
  inference; ``*_train_sequence`` and ``*_backward_steps``, masked or not, with recurrent
  dropout or without, for training; GRU with ``reset_after=False`` for inference only,
  ``gru_before_sequence``): the steps of a chunk in one call, since a small layer otherwise
  spends a third of each step in Python. Their recurrent product calls NumPy's own BLAS
  (``fast.blas``); where NumPy's BLAS is not the bundled OpenBLAS, or for one unit, the
  cells' reference steps run.

``unrolled.fast.plan`` chooses these per call (``fast/cells.py`` says what each covers);
the cells themselves (``layers/recurrent/cells.py``, ``lstm.py``, ``gru.py``) are plain NumPy and
are the reference: the compiled loops equal them within float32 rounding, not bit for bit
(``tests/unit/test_fast.py`` states the bound). ``unfused()`` runs the reference steps with the
compiled ``tanh`` still on (``explain`` does, to show every value of every step).

Without numba, or for float64 (used by the gradient checks), or after
``unrolled.fast.kernels.set_enabled(False)`` (or ``UNROLLED_COMPILED=0`` in the environment),
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
    """True when the compiled sequence loops may run for arrays of ``dtype`` (not inside
    ``unfused()``)."""
    return _fuse and _enabled and dtype == _F32 and (
        _kernels if _kernels is not None else _load()) is not False


@contextmanager
def unfused():
    """Run the cells' reference steps (still with the compiled ``tanh``) instead of the
    whole-sequence loops: the same numbers within float32 rounding, and every intermediate
    (pre-activations too) is kept per step. ``explain`` uses it."""
    global _fuse
    before, _fuse = _fuse, False
    try:
        yield
    finally:
        _fuse = before


def _load():
    global _kernels
    if _kernels is None:
        from . import load
        _kernels = load()
    return _kernels


def sequence(dtype, units):
    """True when the cells can run inference a chunk of steps per compiled call: the fused
    kernels are active for ``dtype`` and NumPy's BLAS was found. (One unit would make NumPy
    take another BLAS route for the recurrent product, so that runs step by step.)"""
    return fused(dtype) and units > 1 and "matmul" in _kernels


def folds(dtype):
    """True when the compiled SimpleRNN and LSTM loops can fold their input product into the
    recurrent one, ``z = [x_t | h] @ [kernel; recurrent_kernel]`` (``fold_product``):
    float32 with the kernels enabled and NumPy's BLAS found (``fast.cells`` adds a size)."""
    return active(dtype) and "fold_product" in _kernels


# The sequence loops' (x, o, fk) arguments when they do not fold: an x without steps. Folded,
# x (steps, B, F), o (B, F+M) and fk (F+M, N) from ``fast.cells.fold_operands``.
NO_FOLD = (np.zeros((0, 0, 0), np.float32), np.zeros((0, 0), np.float32),
           np.zeros((0, 0), np.float32))


def blas_operand(w):
    """``(w, fortran)`` for the ``matmul`` kernel: ``w`` as it is when C-ordered, else a
    C-ordered copy, and ``fortran`` False. (The flag stays for callers that pass a
    Fortran-ordered block on purpose.) OpenBLAS multiplies by a Fortran-ordered matrix, a
    transposed weight in BPTT, up to twice as slowly at a recurrent step's sizes: (32, 256)
    @ (256, 64) took 18.7 us against 10.7 us in C order on a Zen 4, one thread; at (256,
    1024) @ (1024, 256), 5% more. The copy is made once per call of a whole-sequence
    kernel, not per step."""
    if w.flags.c_contiguous:
        return w, False
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
        return _run(_kernels[name + "_masked"], *head, *mask, ys, keep)
    return _run(_kernels[name], *head, ys, keep)


def _run(kernel, *args):
    """``kernel(*args)``, with Ctrl-C raised as ``KeyboardInterrupt``. A SIGINT that arrives
    while a compiled kernel runs is handled (Python's handler sets ``KeyboardInterrupt``)
    before numba's dispatcher returns the kernel's result, which Python then reports as a
    ``SystemError`` ("returned a result with an exception set") caused by the interrupt: 2
    of 20 Ctrl-C's during an LSTM's fit, measured. (No cost without an exception.)"""
    try:
        return kernel(*args)
    except SystemError as e:
        if isinstance(e.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise


_no_ys = {}
_no_mask = {}


def dropout_arguments(operands, dtype):
    """The training kernels' recurrent-dropout arguments: ``operands`` = (rmask (G, B, M),
    fw, fw_f, bw) from ``gates.dropout_operands`` (see ``fast.training``), or, for
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
    _run(_kernels["tanh_flat"], src.reshape(-1), res.reshape(-1))
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
    return _run(_kernels[name], *arrays)
