"""Backpropagation through time: the forward loop of ``loop.RNN`` run from the last step to
the first, the weight gradients summed one chunk of steps at a time.

``RNN`` takes these methods from ``BackpropThroughTime``; they read the forward cache
(``loop._Cache``) and the layer's options (``return_sequences``, ``return_state``,
``go_backwards``, ``zero_output_for_mask``), and call the cell's ``step_backward`` and
``weight_gradients``, or, for a compiled forward, its plan's ``backward``.
"""
import numpy as np

from .dropout import unmask
from .gates import cell_input_gradient


BACKWARD_CHUNK_ROWS = 2048      # rows (steps x batch) per weight-gradient product, at least
SEPARATE_DXP_CHUNK_ROWS = 256   # the same for a cell whose BPTT keeps dxp apart (SimpleRNN)


def _chunk_start(t, chunk):
    """The first step of step t's weight-gradient chunk (see ``RNN._backward_chunk``)."""
    return t - t % chunk


def _chunk_end(t0, T, chunk):
    """One past the last step of the weight-gradient chunk that starts at step t0."""
    return min(t0 + chunk, T)


def _chunks(T, chunk):
    """The weight-gradient chunks ``[(t0, t1), ...]`` in time order."""
    return [(t0, _chunk_end(t0, T, chunk)) for t0 in range(0, T, chunk)]


class BackpropThroughTime:
    """The backward half of ``RNN`` (a mixin: ``RNN`` is the only class that uses it)."""

    optional_input_gradient = True

    def backward(self, cache, doutputs, input_gradient=True):
        """Backpropagation through time: the forward loop run from the last step to the first.
        Without ``input_gradient`` dLoss/dx is not computed (None): training's first layer.
        A forward cache serves one backward pass (the compiled path writes gradients over
        the activations it holds; the reference path refuses a second pass the same way)."""
        cell = self.cell
        xs, m, dp_mask, caches, n_states, x_shape = cache
        if cache.consumed:
            raise RuntimeError(
                f"Layer '{self.name}': this forward cache was already used by a backward pass. "
                "Run forward() again.")
        cache.consumed = True
        if self.return_state:
            dy, *dfinal = doutputs
        else:
            dy, dfinal = doutputs, [None] * len(cell.state_size)
        T, B = len(caches), x_shape[0]
        dtype = xs.dtype
        dstates = [np.zeros((B, s), dtype) if d is None else d
                   for d, s in zip(dfinal, cell.state_size)]
        dx = np.empty(x_shape, dtype) if input_gradient else None   # batch-major, by chunks
        dxs = None if dx is None else dx.transpose(1, 0, 2)[::-1 if self.go_backwards else 1]
        dweights = []

        def flush(t0, t1, dxp_c, stacked=None):
            """Steps t0 .. t1-1 are done: add their weight gradients, write their dx."""
            xs_c = xs[t0:t1]
            grads = (cell.weight_gradients(xs_c, caches[t0:t1], dxp_c) if stacked is None else
                     cell.weight_gradients(xs_c, None, dxp_c, stacked))
            if not dweights:
                dweights.extend(grads)
            else:
                for total, g in zip(dweights, grads):
                    total += g
            # xp = project(apply_mask(x, dp_mask))  =>  dx = unmask(the cell's input gradient)
            if dxs is not None:                              # (in processing order)
                dxs[t0:t1] = unmask(cell_input_gradient(cell, dxp_c, xs_c), dp_mask)

        trained = cache.sequence
        if trained is not None:                              # compiled forward: compiled BPTT
            chunk = self._backward_chunk(T, B, trained.separate_dxp)
            dstates = trained.backward(dy, dstates, _chunks(T, chunk), flush,
                                       self.return_sequences)
        else:
            dstates = self._backward_steps(cache, dy, dstates, flush)
        dinit = dstates if n_states else []
        return [dx] + list(dinit), dweights

    def _backward_steps(self, cache, dy, dstates, flush):
        cell = self.cell
        xs, m, dp_mask, caches, n_states, x_shape = cache
        T, B, dtype = len(caches), x_shape[0], xs.dtype
        chunk = self._backward_chunk(T, B)                   # steps per weight-gradient product
        dxp = None                                           # dxp of the current chunk's steps
        dcarry = None                                        # dLoss/d(previous output), masks only
        for t in range(T - 1, -1, -1):
            if dy is None:
                dout = np.zeros((B, cell.output_size), dtype)
            elif self.return_sequences:
                dout = dy[:, t]
            elif t == T - 1:
                dout = dy
            else:
                dout = np.zeros_like(dy)
            if dcarry is not None:
                dout = dout + dcarry
            if m is not None:                                # a masked step passed states through
                keep = m[t][:, None]
                dcarry = None if self.zero_output_for_mask else np.where(keep, 0, dout)
                dout = np.where(keep, dout, 0)
                dpass = [np.where(keep, 0, d) for d in dstates]
                dstates = [np.where(keep, d, 0) for d in dstates]
            dxp_t, dstates = cell.step_backward(caches[t], dout, dstates)
            if m is not None:
                dstates = [a + b for a, b in zip(dstates, dpass)]
            if dxp is None:
                dxp = np.empty((chunk,) + dxp_t.shape, dtype)
            t0 = _chunk_start(t, chunk)                      # this chunk: steps t0 .. t1-1
            dxp[t - t0] = dxp_t
            if t == t0:                                      # the chunk is complete
                t1 = _chunk_end(t0, T, chunk)
                flush(t0, t1, dxp[:t1 - t0])
        return dstates

    def _backward_chunk(self, T, batch, separate_dxp=False):
        """Steps per weight-gradient product in BPTT.

        The weight gradients are sums over time (``dW_h = sum_t h_{t-1}^T dz_t``). Summing
        them one chunk of steps at a time keeps their stacked operands (previous states,
        and dxp) at an eighth of the sequence instead of whole-sequence copies next to the
        activations. A chunk has at least BACKWARD_CHUNK_ROWS rows (steps x batch): each
        product stays large enough for BLAS speed, and small models, whose time goes to
        per-call overhead, keep one chunk. The compiled LSTM and GRU write dxp over their
        activations and keep h_{-1} .. h_{T-1} in one buffer, so their operands are slices
        whatever the chunks. The compiled SimpleRNN, whose h lives where they write dxp,
        needs a new dxp buffer per chunk, as large as its h for those steps: its chunks
        need only SEPARATE_DXP_CHUNK_ROWS rows, so that buffer stays near an eighth of h.
        """
        rows = SEPARATE_DXP_CHUNK_ROWS if separate_dxp else BACKWARD_CHUNK_ROWS
        return min(T, max(-(-T // 8), -(-rows // max(1, batch))))
