"""Layers written the Keras way: ``build`` + ``call``, run through the library's contract.

A subclass of ``unrolled.layers.Layer`` that defines ``call`` and not ``forward`` is a
Keras-way layer. When the class is created (``Layer.__init_subclass__``), ``adapt`` gives
it the library's methods, built from the author's:

``call(inputs, training=False, mask=None, **options)``
    runs the author's ``call`` with only the arguments it declares (``training``, ``mask``,
    others by name), as Keras inspects the signature;
``forward`` -> ``(outputs, cache)``
    the cache is ``(inputs, outputs, mask, training, options)``;
``backward(cache, doutputs)``
    the author's ``backward(inputs, outputs, doutputs[, training][, mask])``, which
    returns ``(dinputs, dweights)`` (docs/custom-layers.md). Without one, training refuses
    the model before its first step (``refuse_missing_backward``);
``compute_output_shape``
    the author's, else traced: ``call`` runs on zeros with every unknown dimension 2, then
    3, and the output dimensions that changed are unknown (``None``);
``compute_mask``, ``supports_masking``
    Keras 3's rules: a layer supports masking when its author says so or overrides
    ``compute_mask``; the default passes the mask through. A ``call`` that declares
    ``mask`` receives it even otherwise (and the output mask is then dropped, with Keras's
    warning).

Eager calls return a ``MaskedOutput`` (an ndarray subclass carrying ``_keras_mask``) when
the output has a mask; a layer called on such an array receives its mask. Held layers
(``self.dense = Dense(...)``) are tracked as Keras tracks them: their weights follow the
layer's own in ``weights``, and ``trainable`` reaches them.
"""
import inspect
import warnings

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


def _plain(x):
    return x.view(np.ndarray) if isinstance(x, MaskedOutput) else x


# --- the class adapter ------------------------------------------------------------------------
def _parameters(fn, skip):
    """``(names, takes_var_kwargs)`` of ``fn``'s parameters after the first ``skip``."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def adapt(cls, base):
    """Give ``cls`` (a Keras-way subclass of ``base``, unrolled's ``Layer``) the library's
    contract. Called for each such class and again for each of its subclasses (which may
    redefine ``call``, ``backward``, ``compute_mask``, ...)."""
    user_call = cls.__dict__.get("call") or cls._keras_call
    inherited = cls.forward
    if not getattr(inherited, "_keras_adapter", False) and inherited is not base.forward:
        owner = next(c for c in cls.__mro__ if "forward" in c.__dict__)
        raise TypeError(
            f"{cls.__name__} overrides `call` of {owner.__name__}, whose computation is its "
            "`forward` and `backward`: unrolled cannot run that `call`. Subclass "
            f"unrolled.layers.Layer and hold a {owner.__name__} inside it (self.inner = "
            f"{owner.__name__}(...) in __init__, self.inner(x) in call), or override "
            "`forward` and `backward` (docs/custom-layers.md).")
    names, _ = _parameters(user_call, 2)                      # after self and inputs
    cls._keras_way = True
    cls._keras_call = user_call
    cls._call_declares = frozenset(n for n in ("training", "mask") if n in names)
    cls.call_options = tuple(n for n in names if n not in ("training", "mask"))
    cls.optional_input_gradient = True
    if "backward" in cls.__dict__ and not getattr(cls.__dict__["backward"], "_keras_adapter",
                                                  False):
        cls._keras_backward = cls.__dict__["backward"]
    elif not hasattr(cls, "_keras_backward"):
        cls._keras_backward = None
    for name, method in _METHODS.items():
        setattr(cls, name, method)
    if cls.compute_output_shape is base.compute_output_shape:
        cls.compute_output_shape = _traced_output_shape
    own = cls.__dict__.get("supports_masking")           # a class attribute of the author's
    if isinstance(own, bool):
        cls._default_masking = own
    elif not hasattr(cls, "_default_masking"):
        cls._default_masking = False
    if cls.compute_mask is base.compute_mask or getattr(cls.compute_mask, "_keras_adapter", 0):
        cls.compute_mask = _default_compute_mask
    elif not isinstance(own, bool):
        cls._default_masking = True            # Keras: an own compute_mask supports masking
    cls.supports_masking = _SUPPORTS_MASKING
    if "__new__" not in cls.__dict__:
        cls.__new__ = _new
    if cls.get_config is base.get_config:
        cls.get_config = _auto_get_config


_SIMPLE = (str, int, float, bool, type(None))


def _simple(value):
    if isinstance(value, (list, tuple)):
        return all(_simple(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _simple(v) for k, v in value.items())
    return isinstance(value, _SIMPLE)


def _new(cls, *args, **kwargs):
    """Keras 3's automatic config: the constructor's arguments (positional ones by name),
    kept when all are plain values (str, int, float, bool, None and lists of them)."""
    instance = object.__new__(cls)
    names = [p.name for p in inspect.signature(cls.__init__).parameters.values()][1:]
    given = dict(kwargs)
    given.update(zip(names, args))
    instance._auto_config = given if _simple(given) else None
    return instance


def _auto_get_config(self):
    """Keras 3's config of a layer whose class writes no ``get_config``: the base config
    with the constructor's arguments (``_new``)."""
    from .base import Layer
    base = Layer.get_config(self)
    auto = self.__dict__.get("_auto_config")
    if auto is None:
        return base
    return {"name": base["name"], **auto, **{k: v for k, v in base.items() if k != "name"}}


_auto_get_config._keras_adapter = True


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
    out = _plain(np.asarray(getattr(out, "value", out)))
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
    names, _ = _parameters(user, 4)                          # after self, inputs, outputs, d
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
        x = _plain(x)
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
def _default_compute_mask(self, inputs, mask=None):
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


_SUPPORTS_MASKING = property(_get_supports_masking, _set_supports_masking)


def _traced_output_shape(self, input_shape, **options):
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


_METHODS = {"call": call, "forward": forward, "backward": backward, "_eager_call": _eager_call,
            "_prepare_eager": _prepare_eager, "__call__": __call__, "_sublayers": _sublayers,
            "weights": property(_weights), "_supports_masking_flag": _supports_masking_flag}


# --- training's check -------------------------------------------------------------------------
def _needs(layer):
    """Whether ``layer`` or a layer or cell it holds is Keras-way without a backward."""
    if getattr(type(layer), "_keras_way", False) and type(layer)._keras_backward is None:
        return layer
    for sub in layer._sublayers():
        found = _needs(sub)
        if found is not None:
            return found
    return None


def refuse_missing_backward(model, what):
    """Raise before ``what`` (fit, train_on_batch) trains a model through a Keras-way layer
    or cell that has no ``backward``. A layer with no trainable weights whose inputs are
    all the model's inputs needs none (nothing flows back through it)."""
    data = {id(t) for t in getattr(model, "inputs", None) or []}
    for node in getattr(model, "_nodes", None) or []:
        layer = node.layer
        found = _needs(layer)
        if found is None:
            continue
        if (found is layer and not layer.trainable_weights
                and all(id(t) in data for t in node.flat_inputs)):
            continue
        raise NotImplementedError(f"{what}: {missing_backward_message(found)}")
