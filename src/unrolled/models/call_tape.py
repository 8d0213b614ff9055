"""The tape of a subclassed model's ``call``: every layer call, in order, with its cache.

A subclassed model (``models/subclassed.py``) computes by running its author's ``call``,
plain Python that calls layers. While it runs, ``Layer.__call__`` hands each eager layer
call to ``CallTape.record`` (the hook ``layers.base._call_hook``), which

- resolves ``training`` as Keras does (the argument given, else the model's),
- passes masks between the calls as Keras 3 does: an output whose layer computes a mask
  carries it (``MaskedOutput._keras_mask``), and the next layer called on it receives it
  (dropped, with Keras's warning, by a layer that does not support masking),
- runs the layer's ``forward`` (training: keeping its cache) or ``call`` (inference),
- remembers which objects the call read and returned, by identity.

``backward`` walks the entries in reverse: each layer's ``backward`` gets dLoss/d(its
outputs) and its dLoss/d(inputs) are summed into the objects it read (a tensor used twice
sums two gradients; a layer called twice sums its weight gradients). That is exact only
if every tensor between the model's inputs and outputs came from a recorded layer call:
arithmetic in ``call`` (``x * 2``, ``ops.concatenate``) makes arrays the tape never saw,
and in-place changes would alter what a cache holds. ``check_trainable`` finds both (the
outputs handed to ``call`` while training are read-only views) and refuses before any
gradient is used.
"""
import warnings

import numpy as np

from ..layers import base
from ..layers.custom import missing_backward_message, _needs
from ..layers.masked_output import MaskedOutput, mask_of
from ..utils import to_list


def _plain(x):
    return x.view(np.ndarray) if isinstance(x, MaskedOutput) else x


class _Entry:
    __slots__ = ("layer", "in_ids", "outs", "masks", "views", "cache", "multi", "data_first")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


class CallTape:
    """One pass of a subclassed model's ``call`` (see the module docstring). ``inputs`` are
    the flat arrays ``call`` receives; ``keep`` keeps caches (training, gradients)."""

    def __init__(self, model, inputs, training, keep):
        self.model, self.training, self.keep = model, training, keep
        self.data = [id(a) for a in inputs]
        self.entries, self.producer, self.unknown = [], {}, []
        self.alive = list(inputs)                   # ids stay valid while the tape lives
        self.outputs = None

    # --- forward -------------------------------------------------------------------------
    def value_of(self, obj):
        """The array a layer computes with: the original output behind a view we returned."""
        found = self.producer.get(id(obj))
        if found is not None:
            entry, pos = found
            return entry.outs[pos]
        return _plain(obj)

    def _source(self, obj, layer, index):
        key = id(obj)
        if key not in self.producer and key not in self.data:
            self.unknown.append((layer.name, index, type(obj).__name__))
        return key

    def record(self, layer, inputs, kwargs):
        """``layer(inputs, **kwargs)`` inside ``call``: run, record, and return the outputs
        (views carrying their masks)."""
        kwargs = dict(kwargs)
        training = kwargs.pop("training", None)
        training = self.training if training is None else bool(training)
        mask = kwargs.pop("mask", None)
        states = kwargs.pop("initial_state", None)
        layer._check_call_options(kwargs)
        if mask is not None and not layer.supports_masking:
            raise TypeError(f"Layer '{layer.name}' ({type(layer).__name__}) does not use a "
                            "mask, but mask= was passed.")
        if mask is None:
            mask = mask_of(inputs)
            if mask is not None and not layer.supports_masking:
                warnings.warn(
                    f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input "
                    "with a mask attached to it. However, this layer does not support masking "
                    "and will therefore destroy the mask information. Downstream layers will "
                    "not see the mask.", stacklevel=4)
                mask = None
        listed = isinstance(inputs, (list, tuple))
        flat_objs = to_list(inputs)
        state_objs = to_list(states)
        self.alive += flat_objs + state_objs
        in_ids = [self._source(o, layer, i) for i, o in enumerate(flat_objs + state_objs)]
        values = [self.value_of(o) for o in flat_objs]
        saved, base._call_hook = base._call_hook, None     # calls inside the layer: its own
        try:
            prepared = layer._prepare_eager(values if listed else values[0])
            if states is not None:
                kwargs["initial_state"] = [self.value_of(s) for s in state_objs]
            if self.keep:
                out, cache = layer.forward(prepared, training=training, mask=mask, **kwargs)
            else:
                out, cache = layer.call(prepared, training=training, mask=mask, **kwargs), None
            out_mask = layer.compute_mask(prepared, mask)
        finally:
            base._call_hook = saved
        multi = isinstance(out, (list, tuple))
        outs = list(out) if multi else [out]
        masks = to_list(out_mask) if multi else [out_mask]
        masks = (masks + [None] * len(outs))[:len(outs)]
        views = [self._view(o, m) for o, m in zip(outs, masks)]
        entry = _Entry(layer=layer, in_ids=in_ids, outs=outs, masks=masks, views=views,
                       cache=cache, multi=multi, data_first=bool(in_ids) and
                       in_ids[0] in self.data)
        for pos, v in enumerate(views):
            self.producer[id(v)] = (entry, pos)
        self.alive += views
        self.entries.append(entry)
        self.model._call_shapes.setdefault(
            id(layer), [tuple(np.shape(o)) for o in outs] if multi else tuple(np.shape(out)))
        return list(views) if multi else views[0]

    def _view(self, out, mask):
        if not isinstance(out, np.ndarray):
            return out
        if mask is None and not self.keep:
            return out
        view = out.view(MaskedOutput if mask is not None else np.ndarray)
        if mask is not None:
            view._keras_mask = np.asarray(mask)
        if self.keep:
            view.flags.writeable = False       # an in-place change would go unseen
        return view

    def finish(self, out):
        """The outputs of ``call`` as arrays (the originals behind our views), their masks,
        and whether ``call`` returned a list."""
        multi = isinstance(out, (list, tuple))
        objs = list(out) if multi else [out]
        self.outputs, self.multi = objs, multi
        self.alive += objs
        arrays, masks = [], []
        for o in objs:
            found = self.producer.get(id(o))
            if found is not None:
                entry, pos = found
                arrays.append(entry.outs[pos])
                masks.append(entry.masks[pos])
            else:
                arrays.append(np.asarray(_plain(getattr(o, "value", o))))
                masks.append(getattr(o, "_keras_mask", None))
        return arrays, masks, multi

    # --- backward ------------------------------------------------------------------------
    def check_trainable(self):
        """Raise (before any gradient is used) when this pass cannot be differentiated from
        its layer calls alone."""
        name = self.model.name
        advice = ("unrolled has no autodiff: a subclassed model trains through the backward "
                  "of the layers its `call` calls, so every tensor between the inputs and the "
                  "outputs must come from a layer call. Do the arithmetic in a layer (a "
                  "built-in one such as Concatenate/Add/Multiply, or a custom layer with a "
                  "`backward`, docs/custom-layers.md), or write the model as a functional "
                  "model; predict and evaluate run as they are.")
        for i, o in enumerate(self.outputs):
            if id(o) not in self.producer:
                raise NotImplementedError(
                    f"Model '{name}': output {i} of its `call` was computed outside layer "
                    f"calls (it is not the output of a layer), so it cannot be trained. "
                    f"{advice}")
        if self.unknown:
            layer, index, kind = self.unknown[0]
            raise NotImplementedError(
                f"Model '{name}': its `call` computes outside layers: input {index} of layer "
                f"'{layer}' is an array ({kind}) made by code in `call`, not the model's input "
                f"or a layer's output, so the gradient through it is unknown. {advice}")
        own = {id(w) for w in self.model.weights}
        for entry in self.entries:
            layer = entry.layer
            stray = [w.name for w in layer.weights if id(w) not in own]
            if stray:
                raise NotImplementedError(
                    f"Model '{name}': layer '{layer.name}' called in `call` is not tracked by "
                    f"the model (weights {stray} are not in model.weights): create layers in "
                    "__init__ as attributes (self.dense = Dense(...)), as Keras requires.")
            found = _needs(layer)
            if found is None:
                continue
            if (found is layer and not layer.trainable_weights
                    and all(i in self.data for i in entry.in_ids)):
                continue
            raise NotImplementedError(missing_backward_message(found))

    def backward(self, doutputs, sparse=False):
        """``(dinputs, dweights)``: dLoss/d(the flat inputs of ``call``) and a dict
        id(weight) -> dLoss/d(weight), from dLoss/d(outputs) (a list, one per output)."""
        grads = {}

        def add(key, g):
            if g is not None:
                grads[key] = g if key not in grads else grads[key] + g

        for o, g in zip(self.outputs, doutputs):
            add(id(o), g)
        wgrads = {}
        for entry in reversed(self.entries):
            douts = [grads.get(id(v)) for v in entry.views]
            if all(g is None for g in douts):
                continue
            dy = douts if entry.multi else douts[0]
            layer = entry.layer
            if entry.data_first and layer.optional_input_gradient:
                dinputs, dweights = layer.backward(entry.cache, dy, input_gradient=False)
            elif sparse and getattr(layer, "sparse_gradients", False):
                dinputs, dweights = layer.backward(entry.cache, dy, sparse=True)
            else:
                dinputs, dweights = layer.backward(entry.cache, dy)
            for key, g in zip(entry.in_ids, dinputs):
                add(key, g)
            for w, g in zip(layer.weights, dweights):
                wgrads[id(w)] = g if id(w) not in wgrads else wgrads[id(w)] + g
        return [grads.get(key) for key in self.data], wgrads
