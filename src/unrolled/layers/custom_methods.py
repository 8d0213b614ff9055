"""The methods ``custom.adapt`` gives a layer written the Keras way (``build`` + ``call``).

Each runs the author's code through the library's contract (``layers/custom.py`` has the
whole of it): ``call`` passes only the arguments the author's ``call`` declares and returns
NumPy arrays in the layer's dtype; ``forward`` keeps ``(inputs, outputs, mask, training,
options)`` as the cache; ``backward`` calls the author's ``backward`` and checks its
``(dinputs, dweights)`` (``weight_gradients``), or explains what is missing
(``missing_backward_message``); ``_eager_call`` converts eager inputs as Keras does and
carries masks on the outputs (``masked_output``); ``weights`` includes the held layers';
``supports_masking`` and ``compute_mask`` follow Keras 3's rules; and
``traced_output_shape`` finds an output shape by running ``call`` on zeros. ``METHODS``
lists what ``adapt`` sets on every such class.
"""
import inspect
import warnings

import numpy as np

from ..utils import to_list
from .masked_output import mask_of, plain, with_mask


def parameters(fn, skip):
    """``(names, takes_var_kwargs)`` of ``fn``'s parameters after the first ``skip``."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def _adapter(fn):
    fn._keras_adapter = True
    return fn


@_adapter
def call(self, inputs, training=False, mask=None, **options):
    """The author's ``call`` with the arguments it declares; outputs as NumPy arrays (a float
    output in the layer's dtype)."""
    kwargs = dict(options)
    declares = type(self)._call_declares
    if "training" in declares:
        kwargs["training"] = training
    if "mask" in declares:
        kwargs["mask"] = mask
        if mask is not None and not self._supports_masking_flag():
            warnings.warn(
                f"Layer '{self.name}' (of type {type(self).__name__}) was passed an input "
                "with a mask attached to it. However, this layer does not support masking "
                "and will therefore destroy the mask information. Downstream layers will "
                "not see the mask.", stacklevel=3)
    out = type(self)._keras_call(self, inputs, **kwargs)
    return _outputs(self, out)


def _outputs(layer, out):
    if isinstance(out, (list, tuple)):
        return [_outputs(layer, o) for o in out]
    out = plain(np.asarray(getattr(out, "value", out)))
    if out.dtype.kind == "f" and out.dtype != layer.dtype:
        out = out.astype(layer.dtype)
    return out


@_adapter
def forward(self, inputs, *, training=False, mask=None, **options):
    out = self.call(inputs, training=training, mask=mask, **options)
    return out, (inputs, out, mask, training, options)


@_adapter
def backward(self, cache, doutputs, input_gradient=True):
    """The author's ``backward(inputs, outputs, doutputs, ...)`` -> ``(dinputs, dweights)``,
    checked and put in the library's form (a list of input gradients; one gradient per
    weight, zeros for None)."""
    inputs, outputs, mask, training, options = cache
    user = type(self)._keras_backward
    if user is None:
        if not input_gradient and not self.trainable_weights:
            return [None] * len(to_list(inputs)), [np.zeros_like(w.value) for w in self.weights]
        raise NotImplementedError(missing_backward_message(self))
    names, _ = parameters(user, 4)                          # after self, inputs, outputs, d
    kwargs = {k: v for k, v in (("training", training), ("mask", mask)) if k in names}
    kwargs.update({k: v for k, v in options.items() if k in names})
    result = user(self, inputs, outputs, doutputs, **kwargs)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(f"Layer '{self.name}': backward must return (dinputs, dweights); "
                        f"received {type(result).__name__}.")
    dinputs, dweights = result
    dinputs = list(dinputs) if isinstance(inputs, (list, tuple)) else [dinputs]
    return dinputs, weight_gradients(self, dweights)


def weight_gradients(layer, dweights):
    """The author's weight gradients, one per ``layer.weights`` entry (None: zeros)."""
    weights = layer.weights
    dweights = [] if dweights is None else list(dweights)
    if len(dweights) != len(weights):
        raise ValueError(
            f"Layer '{layer.name}': backward returned {len(dweights)} weight gradient(s); the "
            f"layer has {len(weights)} weight(s) ({', '.join(w.name for w in weights)}), "
            "and needs one per weight, in `layer.weights` order (None for no gradient).")
    out = []
    for w, g in zip(weights, dweights):
        if g is None:
            out.append(np.zeros_like(w.value))
            continue
        g = np.asarray(g, dtype=w.dtype)
        if g.shape != w.shape:
            raise ValueError(f"Layer '{layer.name}': the gradient of weight '{w.name}' has "
                             f"shape {g.shape}; the weight's is {w.shape}.")
        out.append(g)
    return out


def missing_backward_message(layer):
    if getattr(layer, "state_size", None) is not None:          # a recurrent cell
        kind, form = "Cell", ("backward(self, inputs, states, output, new_states, doutput, "
                              "dstates)` returning (dinputs, dstates_prev, dweights)")
    else:
        kind, form = "Layer", "backward(self, inputs, outputs, doutputs)` returning " \
                              "(dinputs, dweights)"
    return (f"{kind} '{layer.name}' ({type(layer).__name__}) is written the Keras way (`call`) "
            "and has no `backward`, so unrolled cannot train through it: there is no "
            f"autodiff here. Define `{form} (docs/custom-layers.md); predict and evaluate "
            "run without it.")


@_adapter
def _eager_call(self, inputs, training=False, mask=None, initial_state=None, **options):
    if initial_state is not None:
        raise TypeError(f"Layer '{self.name}' ({type(self).__name__}) takes no initial_state.")
    self._check_call_options(options)
    if mask is not None and not self.supports_masking:      # given: Keras's call refuses it
        raise TypeError(f"Layer '{self.name}' ({type(self).__name__}): its call takes no "
                        "`mask` and the layer does not support masking, but mask= was passed.")
    if mask is None:
        mask = mask_of(inputs)
    inputs = self._prepare_eager(inputs)
    if mask is not None and not self.supports_masking:       # carried by the input
        warnings.warn(
            f"Layer '{self.name}' (of type {type(self).__name__}) was passed an input with a "
            "mask attached to it. However, this layer does not support masking and will "
            "therefore destroy the mask information. Downstream layers will not see the mask.",
            stacklevel=3)
        mask = None
    out = self.call(inputs, training=bool(training), mask=mask, **options)
    return with_mask(out, self.compute_mask(inputs, mask))


@_adapter
def _prepare_eager(self, inputs):
    """Inputs as Keras converts them: floats in the layer's dtype, integers and booleans
    as they are (token ids stay integers)."""
    def convert(x, i):
        x = plain(x)
        if not isinstance(x, np.ndarray):
            from .. import ops
            x = ops.convert_to_tensor(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"Input {i} of layer '{self.name}' must be numeric; received an "
                            f"array of dtype {x.dtype}.")
        return x.astype(self.dtype) if x.dtype.kind == "f" and x.dtype != self.dtype else x

    if isinstance(inputs, (list, tuple)):
        arrays = [convert(x, i) for i, x in enumerate(inputs)]
        self._maybe_build([a.shape for a in arrays])
        return arrays
    x = convert(inputs, 0)
    self._maybe_build(x.shape)
    return x


@_adapter
def __call__(self, inputs, *args, **kwargs):
    from .symbolic import KerasTensor
    flat = to_list(inputs)
    if any(isinstance(t, KerasTensor) for t in flat):      # for the traced output shape
        self._trace_dtypes = [getattr(t, "dtype", None) for t in flat]
    from .base import Layer
    return Layer.__call__(self, inputs, *args, **kwargs)


def _sublayers(self):
    """The layers held in attributes (or lists of them), in assignment order, as Keras
    tracks them."""
    from .base import Layer
    found = []
    for value in self.__dict__.values():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, Layer) and item is not self and item not in found:
                found.append(item)
    return found


def _weights(self):
    seen, out = set(), []
    for w in list(self._weights) + [w for sub in self._sublayers() for w in sub.weights]:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


@_adapter
def default_compute_mask(self, inputs, mask=None):
    """Keras's default: the mask passes through a layer that supports masking."""
    return mask if self._supports_masking_flag() else None


def _supports_masking_flag(self):
    return self.__dict__.get("_supports_masking", type(self)._default_masking)


def _get_supports_masking(self):
    """True when the layer takes a mask: its author's flag (Keras's ``supports_masking``),
    or a ``call`` that declares ``mask``, which receives it either way as in Keras."""
    return self._supports_masking_flag() or "mask" in type(self)._call_declares


def _set_supports_masking(self, value):
    self.__dict__["_supports_masking"] = bool(value)


SUPPORTS_MASKING = property(_get_supports_masking, _set_supports_masking)


def traced_output_shape(self, input_shape, **options):
    """The output shape(s) found by running ``call`` on zeros, twice: unknown dimensions
    (None) set to 2, then 3; an output dimension that changed between the two is None."""
    multi = isinstance(input_shape, list)
    shapes = input_shape if multi else [input_shape]
    dtypes = list(getattr(self, "_trace_dtypes", None) or []) + [None] * len(shapes)
    runs = []
    for fill in (2, 3):
        arrays = [np.zeros(tuple(fill if d is None else d for d in s), dt or self.dtype)
                  for s, dt in zip(shapes, dtypes)]
        with np.errstate(all="ignore"):
            out = self.call(arrays if multi else arrays[0], training=False, **options)
        runs.append([np.shape(o) for o in out] if isinstance(out, list) else np.shape(out))

    def merge(a, b):
        return tuple(x if x == y else None for x, y in zip(a, b))

    first, second = runs
    if isinstance(first, list):
        return [merge(a, b) for a, b in zip(first, second)]
    return merge(first, second)


METHODS = {"call": call, "forward": forward, "backward": backward, "_eager_call": _eager_call,
           "_prepare_eager": _prepare_eager, "__call__": __call__, "_sublayers": _sublayers,
           "weights": property(_weights), "_supports_masking_flag": _supports_masking_flag}
