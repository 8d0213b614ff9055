"""The one hook between the time loop and the fast path: ``plan``.

``RNN`` (``layers/recurrent/loop.py``) asks ``plan(cell, ...)`` once per call. When a compiled
implementation covers the cell, its dtype and the call's options (``fast.cells``), the
answer runs the whole sequence: ``infer`` (in chunks of steps, folded or projected, in
row groups on the cores) or ``train`` and later ``Trained.backward`` (BPTT a chunk of
steps per call). Otherwise it is None and the loop runs the cell's reference steps.
"""
import numpy as np

from ..layers.recurrent.inputs import TimeMajorInputs, project_in_chunks, projection_chunk
from . import cells as fast_cells
from . import kernels
from .threads import run_parallel, split_rows


def plan(cell, dtype, batch, *, training, rec_mask, dp_mask):
    """A ``SequencePlan`` for this call, or None (the reference loop runs).

    ``training``: a training forward (its buffers are kept for ``backward``);
    ``rec_mask``/``dp_mask``: the call's recurrent and input dropout masks, or None."""
    if not kernels.fused(dtype):
        return None
    impl = fast_cells.of_cell(cell)
    if impl is None:
        return None
    if training:
        if not impl.trains(dtype, rec_mask):
            return None
    elif rec_mask is not None or not impl.infers(dtype):
        return None
    # The fold takes [x_t | h] @ [W; U]: not with recurrent dropout (it masks h alone) or
    # per-gate input masks.
    fold = (rec_mask is None and (dp_mask is None or dp_mask.ndim == 2)
            and impl.folds(dtype, batch))
    return SequencePlan(impl, fold, dp_mask is not None)


def _kernel_mask(m, buffer, zero_output):
    """The compiled loops' ``mask`` argument: (m as a C-contiguous (steps, B) array,
    buffer(), zero_output_for_mask), or None without a mask. The buffer is a (B, units)
    array: the last output (forward) or dLoss/d(output) carried back (BPTT)."""
    if m is None:
        return None
    return np.ascontiguousarray(m), buffer(), zero_output


class SequencePlan:
    """How one call runs compiled: ``impl`` (a ``fast.cells.CellSequence``), whether it
    folds, and whether the inputs carry a dropout mask (no row groups then: one mask)."""

    def __init__(self, impl, fold, input_dropout):
        self.impl, self.fold, self.input_dropout = impl, fold, input_dropout
        self.cell = impl.cell

    def chunk(self, xs):
        """Steps per projection (or, folded, per chunk of the inputs themselves)."""
        return projection_chunk(self.cell, xs, xs.shape[-1] if self.fold else None)

    # --- inference ------------------------------------------------------------------------
    def infer(self, x, xs, states, ys, m, go_backwards, zero_output):
        """Inference over the time-major inputs ``xs`` (of ``x``, batch-major); ``m`` (T, B)
        the mask in processing order. Returns (output, states). When the thread policy
        chose all cores for a step, the rows run in groups, one whole sequence per core
        (``fast.threads.split_rows``)."""
        cell, B = self.cell, xs.shape[1]
        dtype = xs.dtype
        operands = fast_cells.fold_operands(cell, B, dtype) if self.fold else None
        row_macs = cell.kernel.shape[-1] * (cell.kernel.shape[0] + cell.state_size[0])
        groups = [(0, B)] if self.input_dropout else split_rows(B, row_macs)
        if len(groups) == 1:
            return self._infer(xs, states, ys, m, operands, zero_output)

        def group(r0, r1):
            ops = operands and (np.empty((r1 - r0,) + operands[0].shape[1:], dtype),
                                operands[1])
            return self._infer(TimeMajorInputs(x[r0:r1], go_backwards, None),
                               [s[r0:r1] for s in states], None if ys is None else ys[r0:r1],
                               None if m is None else m[:, r0:r1], ops, zero_output)

        parts = run_parallel([lambda r=r: group(*r) for r in groups])
        return (np.concatenate([p[0] for p in parts]),
                [np.concatenate(s) for s in zip(*(p[1] for p in parts))])

    def _infer(self, xs, states, ys, m, operands, zero_output):
        """One call per chunk of steps, all chunks in one buffer (a fresh multi-megabyte
        buffer per chunk cost more in page faults than its product). A mask runs the
        masked loop, which keeps the last output in ``last``."""
        impl, cell = self.impl, self.cell
        T, B = xs.shape[0], xs.shape[1]
        chunk = self.chunk(xs)
        buf = None
        last = None if m is None else np.zeros((B, cell.output_size), xs.dtype)
        if operands:                                     # (two steps' a or z, in turn)
            buf = np.empty((min(2, T), B, cell.kernel.shape[-1]), xs.dtype)
        out = None
        for t0 in range(0, T, chunk):
            x_c = xs[t0:t0 + chunk]
            masked = _kernel_mask(None if m is None else m[t0:t0 + chunk], lambda: last,
                                  zero_output)
            ys_c = None if ys is None else ys[:, t0:t0 + chunk]
            if operands:
                out, states = impl.run_steps(buf, states, ys_c, masked, (x_c,) + operands)
                continue
            xp = impl.project(x_c, None if buf is None else buf[:min(chunk, T - t0)])
            buf = xp if buf is None else buf
            out, states = impl.run_steps(xp, states, ys_c, masked)
        return out, states

    # --- training ---------------------------------------------------------------------------
    def train(self, xs, states, ys, m, rec_mask, zero_output):
        """The training forward of every step. Returns (output, states, ``Trained``)."""
        impl, cell = self.impl, self.cell
        T, B = xs.shape[0], xs.shape[1]
        chunk = self.chunk(xs)
        buffer = impl.training_buffer(xs)
        fold = None
        if self.fold:                                    # the steps write a or z here
            xp = buffer if buffer is not None else np.empty((T, B, cell.kernel.shape[-1]),
                                                            xs.dtype)
            fold = (xs, chunk) + fast_cells.fold_operands(cell, B, xs.dtype)
        else:
            xp = project_in_chunks(impl.project, xs, chunk, buffer)
        kmask = _kernel_mask(m, lambda: np.zeros((B, cell.output_size), xs.dtype), zero_output)
        out, states, buffers = impl.train_steps(xp, states, ys, kmask, rec_mask, fold=fold)
        return out, states, Trained(impl, buffers, xp, T, m, zero_output)


class Trained:
    """A compiled training forward's buffers, for its one backward pass."""

    def __init__(self, impl, buffers, xp, steps, m, zero_output):
        self.impl, self.buffers, self.xp = impl, buffers, xp
        self.caches = fast_cells.StepCount(steps)
        self.m, self.zero_output = m, zero_output
        self.separate_dxp = impl.separate_dxp

    def backward(self, dy, dstates, chunks, flush, return_sequences):
        """BPTT a chunk of steps per compiled call, last chunk first; ``chunks`` the
        ``[(t0, t1), ...]`` of the loop's weight-gradient products, ``flush(t0, t1, dxp,
        stacked)`` what the loop does with a chunk's dxp. Returns dLoss/d(initial states).
        LSTM and GRU write dxp over the projected inputs, so the buffers serve once
        (``consumed``)."""
        T, dtype = len(self.caches), self.xp.dtype
        B, cell = self.xp.shape[1], self.impl.cell
        if dy is None:                                       # dLoss/d(output_t) = dy[:, t-first]
            dy, first = np.zeros((B, 0, cell.output_size), dtype), T
        elif return_sequences:
            dy, first = np.ascontiguousarray(dy, dtype), 0
        else:
            dy, first = np.ascontiguousarray(dy, dtype)[:, None], T - 1
        dstates = [np.array(d, dtype, order="C") for d in dstates]   # updated in place
        mask = _kernel_mask(self.m, lambda: np.zeros((B, cell.output_size), dtype),
                            self.zero_output)
        for t0, t1 in reversed(chunks):
            dxp = None                                       # (freed before the next chunk's)
            dstates, dxp, stacked = self.impl.backward_steps(self.buffers, t0, t1, dy, first,
                                                             dstates, mask)
            flush(t0, t1, dxp, stacked)
        return dstates

    @property
    def consumed_by_backward(self):
        """True when BPTT writes over the forward's activations (LSTM, GRU)."""
        return not self.separate_dxp
