"""Dropout masks of a recurrent layer: drawn once per call, the same at every step, as
Keras draws them.

Keras's LSTM and GRU with ``recurrent_dropout > 0`` (its "implementation 1") draw an
independent dropout mask *per gate*, for the inputs and for the state. Then each gate
sees its own masked copy of the operand: ``a`` has a leading gate axis ``(G, ..., K)``
and gate g's columns of the kernel multiply ``a[g]`` (``gates.gate_product`` with
``per_gate``). A single mask (``(B, K)``) is shared by all gates.
"""
import numpy as np

from ... import utils


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
