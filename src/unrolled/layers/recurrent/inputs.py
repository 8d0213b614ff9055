"""A recurrent layer's inputs as its time loop reads them, and their input projection made
a chunk of steps at a time (the reference loop, ``explain`` and the fast path share it)."""
import numpy as np

from .dropout import apply_mask


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
