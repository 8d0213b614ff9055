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

This module holds ``adapt``, Keras 3's automatic config (``_new``, ``_auto_get_config``) and
training's check (``refuse_missing_backward``); the methods ``adapt`` sets are in
``custom_methods``, the masked outputs in ``masked_output``.
"""
import inspect

from .custom_methods import (METHODS, SUPPORTS_MASKING, default_compute_mask,
                             missing_backward_message, parameters, traced_output_shape)
from .masked_output import MaskedOutput

# MaskedOutput: documented as unrolled.layers.custom.MaskedOutput (docs/custom-layers.md).
__all__ = ["MaskedOutput", "adapt", "refuse_missing_backward"]


# --- the class adapter ------------------------------------------------------------------------
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
    names, _ = parameters(user_call, 2)                      # after self and inputs
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
    for name, method in METHODS.items():
        setattr(cls, name, method)
    if cls.compute_output_shape is base.compute_output_shape:
        cls.compute_output_shape = traced_output_shape
    own = cls.__dict__.get("supports_masking")           # a class attribute of the author's
    if isinstance(own, bool):
        cls._default_masking = own
    elif not hasattr(cls, "_default_masking"):
        cls._default_masking = False
    if cls.compute_mask is base.compute_mask or getattr(cls.compute_mask, "_keras_adapter", 0):
        cls.compute_mask = default_compute_mask
    elif not isinstance(own, bool):
        cls._default_masking = True            # Keras: an own compute_mask supports masking
    cls.supports_masking = SUPPORTS_MASKING
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
