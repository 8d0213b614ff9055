"""Eager outputs that carry a mask, as Keras's tensors carry ``_keras_mask``.

A layer called on arrays (not on ``Input`` tensors) returns a ``MaskedOutput`` when its
output has a mask (``with_mask``), and a layer called on such an array receives that mask
(``mask_of``). ``plain`` gives back the bare ``ndarray``.
"""
import numpy as np

from ..utils import to_list


class MaskedOutput(np.ndarray):
    """An eager output with Keras's ``_keras_mask`` (a boolean array, ``(batch, steps)``).
    Arrays computed from it carry no mask (``_keras_mask`` is None), as tensors computed
    from a masked one in Keras."""

    _keras_mask = None


def with_mask(out, mask):
    """``out`` carrying ``mask`` (``MaskedOutput``), or ``out`` unchanged without one; for
    several outputs, each with its mask."""
    if mask is None:
        return out
    if isinstance(out, (list, tuple)):
        masks = to_list(mask) + [None] * len(out)
        return type(out)(with_mask(o, m) for o, m in zip(out, masks))
    if not isinstance(out, np.ndarray):
        return out
    view = out.view(MaskedOutput)
    view._keras_mask = np.asarray(mask)
    return view


def mask_of(inputs):
    """The ``_keras_mask`` of an eager input (a list of them for a list), or None."""
    if isinstance(inputs, (list, tuple)):
        masks = [getattr(x, "_keras_mask", None) for x in inputs]
        return None if all(m is None for m in masks) else masks
    return getattr(inputs, "_keras_mask", None)


def plain(x):
    return x.view(np.ndarray) if isinstance(x, MaskedOutput) else x
