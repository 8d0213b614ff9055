"""Subclassed models: ``class Net(unrolled.Model)`` with layers in ``__init__`` and ``call``.

Keras's other way to write a model::

    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.emb = keras.layers.Embedding(100, 8, mask_zero=True)
            self.lstm = keras.layers.LSTM(16)
            self.out = keras.layers.Dense(1)

        def call(self, inputs, training=False):
            return self.out(self.lstm(self.emb(inputs)))

When such a class is created (``Model.__init_subclass__``), ``adapt`` gives it the methods
below in place of the functional model's. The model then

- tracks its layers as Keras 3 does: the attributes holding layers (or lists, tuples and
  dicts of them), in assignment order, are ``layers``; ``weights`` are the model's own
  (``add_weight``) then each layer's, in that order; ``trainable`` reaches them;
- runs ``call`` as plain Python, each layer call recorded on a ``CallTape``
  (``models/call_tape.py``), which also passes the masks between layer calls as Keras's
  ``Layer.__call__`` does and gives ``training`` to the layers called without it;
- trains by walking that tape backward: the backward of a pass is the backward of the
  layer calls it made. A ``call`` that computes outside layers is refused for training
  before any weight changes (``CallTape.check_trainable``); predict and evaluate run it.
- builds on its first call (``fit``, ``evaluate`` and ``predict`` run ``call`` once on the
  first sample in inference to build it and learn its output's shape, as Keras builds a
  subclassed model on its first batch: layers are built in the order ``call`` meets them).
  ``model.build(shape)`` does what Keras 3's does for such a model: it marks the model
  built and warns, and the layers wait for data.

Files: ``save_weights``/``load_weights`` with ``.weights.npz`` (unrolled's layout, weights
in ``model.weights`` order). A whole-model file (``.keras``, ``.h5``) and ``.weights.h5``
(Keras 3 lays a subclassed model out by attribute names) are refused with that reason.
"""
import inspect

import numpy as np

from ..layers import base
from ..layers.base import Layer, _snake_case, unique_name
from ..layers.masked_output import with_mask
from ..layers.symbolic import KerasTensor
from ..utils import to_list
from . import summary as summary_mod
from .call_tape import CallTape
from .training import Trainer

_CUSTOM_STEPS = ("train_step", "test_step", "predict_step", "compute_loss", "compute_metrics")


class _OutputSpec:
    """What ``fit``'s checks read of a model output (``shape`` with batch None, ``dtype``)."""

    def __init__(self, array):
        self.shape = (None,) + tuple(np.shape(array)[1:])
        self.dtype = np.asarray(array).dtype.name


def adapt(cls):
    """Make ``cls`` (a subclass of ``unrolled.Model`` defining ``call``) a subclassed
    model. Methods the class itself defines (``build``, ``get_config``...) stay its own."""
    user_call = cls.__dict__["call"]
    params = list(inspect.signature(user_call).parameters.values())[2:]
    names = {p.name: p for p in params}
    cls._user_call = user_call
    cls._call_declares = frozenset(n for n in ("training", "mask") if n in names)
    default = names["training"].default if "training" in names else None
    cls._training_default = bool(default) if default is not inspect.Parameter.empty else False
    cls._custom_steps = tuple(n for n in _CUSTOM_STEPS
                              if any(n in c.__dict__ for c in cls.__mro__
                                     if getattr(c, "_user_call", None) is not None))
    if "build" in cls.__dict__ and cls.__dict__["build"] is not build:
        cls._user_build = cls.__dict__["build"]
    elif not hasattr(cls, "_user_build"):
        cls._user_build = None
    for name, value in _METHODS.items():
        if name == "call" or name not in cls.__dict__:
            setattr(cls, name, value)


def init(model, inputs, outputs, name, kwargs):
    """``Model.__init__`` of a subclassed model (``super().__init__(**kwargs)``)."""
    if inputs is not None or outputs is not None:
        raise NotImplementedError(
            f"{type(model).__name__} defines `call` and passes inputs/outputs to "
            "Model.__init__: unrolled builds a model either from a graph (no `call`) or from "
            "`call` (no inputs/outputs), not both.")
    Layer.__init__(model, name=name or unique_name(_snake_case(type(model).__name__)),
                   **kwargs)
    Trainer.__init__(model)
    model._nodes, model.inputs, model.outputs = [], [], None
    model._multi_output, model._input_list, model._call_shapes = False, False, {}


# --- the methods a subclassed model gets --------------------------------------------------
def _run(self, inputs, training, keep):
    """Run the author's ``call`` on ``inputs`` (as ``_pack`` gives them) on a new tape;
    returns ``(outputs, tape, output masks)`` (one output and its mask when ``call``
    returns one)."""
    flat = to_list(inputs) if self._input_list else [inputs]
    tape = CallTape(self, flat, bool(training), keep)
    kwargs = {}
    if "training" in self._call_declares:
        kwargs["training"] = bool(training)
    if "mask" in self._call_declares:
        kwargs["mask"] = None
    if not self.built and type(self)._user_build is not None:
        self._user_build(_shapes(flat, self._input_list))
    saved, base._call_hook = base._call_hook, tape.record
    try:
        out = type(self)._user_call(self, inputs, **kwargs)
    finally:
        base._call_hook = saved
    arrays, masks, multi = tape.finish(out)
    if self.outputs is None:
        self.outputs = [_OutputSpec(a) for a in arrays]
        self._multi_output = multi and len(arrays) > 1
    self.built = True
    if multi:
        return arrays, tape, masks
    return arrays[0], tape, masks[0]


def _shapes(flat, listed):
    shapes = [tuple(np.shape(a)) for a in flat]
    return shapes if listed else shapes[0]


def _run_graph(self, inputs, training, keep_tape):
    return self._run(inputs, training, keep_tape)


def forward(self, inputs, *, training=False, mask=None):
    out, tape, _ = self._run(inputs, training, True)
    return out, tape


def call(self, inputs, training=False, mask=None):
    return self._run(inputs, training, False)[0]


call._subclassed_adapter = True


def backward(self, tape, doutputs, input_gradients=True, sparse=False):
    """dLoss/d(inputs) and dLoss/d(weights) (in ``self.weights`` order) from the tape of a
    training pass; refuses a pass that computed outside layers (``check_trainable``)."""
    tape.check_trainable()
    douts = list(doutputs) if tape.multi else [doutputs]
    dinputs, wgrads = tape.backward(douts, sparse=sparse)
    return dinputs, [wgrads.get(id(w), np.zeros_like(w.value)) for w in self.weights]


def _convert(self, a, i):
    a = np.asarray(getattr(a, "value", a))
    if a.dtype.kind == "f":
        return a if a.dtype == self.dtype else a.astype(self.dtype)
    if a.dtype.kind not in "biu":
        raise TypeError(f"Input {i} of model '{self.name}' must be numeric; received an array "
                        f"of dtype {a.dtype}.")
    return a


def _standardize_inputs(self, x):
    """The inputs as a flat list of arrays (floats in the model's dtype, integers as they
    are), their structure kept for ``_pack``; the model is built on the first sample if
    ``call`` never ran."""
    _refuse_custom_steps(self)
    if isinstance(x, dict):
        raise NotImplementedError(f"Model '{self.name}': dict inputs to a subclassed model are "
                                  "not implemented in unrolled; pass a list of arrays.")
    listed = isinstance(x, (list, tuple)) and bool(x) and all(
        isinstance(a, np.ndarray) for a in x)
    arrays = [_convert(self, a, i) for i, a in enumerate(x if listed else [x])]
    if any(a.ndim == 0 for a in arrays):
        raise ValueError(f"Model '{self.name}' expects inputs with a batch dimension.")
    if len({a.shape[0] for a in arrays}) > 1:
        raise ValueError("All inputs must have the same number of samples; received "
                         f"{[a.shape[0] for a in arrays]}.")
    self._input_list = listed
    if self.outputs is None:
        self._run(self._pack([a[:1] for a in arrays]), False, False)
    return arrays


def _pack(self, arrays):
    return list(arrays) if self._input_list else arrays[0]


def _eager_call(self, inputs, training=None, mask=None, initial_state=None, **options):
    if initial_state is not None or options or mask is not None:
        given = sorted(options) + (["initial_state"] if initial_state is not None else []) \
            + (["mask"] if mask is not None else [])
        raise TypeError(f"Model '{self.name}': its call takes inputs and training; received "
                        f"{given}.")
    training = type(self)._training_default if training is None else training
    out, _, masks = self._run(self._prepare_eager(inputs), training, False)
    return with_mask(out, masks)


def _prepare_eager(self, inputs):
    """Inputs of a direct call, or of a call inside another model's ``call``: a list of
    arrays is one per input."""
    if isinstance(inputs, (list, tuple)) and all(isinstance(a, np.ndarray) for a in inputs):
        self._input_list = True
        return [_convert(self, a, i) for i, a in enumerate(inputs)]
    self._input_list = False
    return _convert(self, inputs, 0)


def __call__(self, inputs, *args, **kwargs):
    if any(isinstance(t, KerasTensor) for t in to_list(inputs)):
        raise NotImplementedError(
            f"Model '{self.name}' is a subclassed model (it defines `call`): calling it on "
            "symbolic Input tensors (inside a functional model) is not implemented in "
            "unrolled; call it on arrays, or write the outer model as a subclassed one.")
    return Layer.__call__(self, inputs, *args, **kwargs)


def build(self, input_shape):
    """Keras 3's ``build`` of a subclassed model without its own: it builds nothing (the
    layers are built by the first call on data), marks the model built, and warns."""
    if any(not layer.built for layer in self.layers):
        import warnings
        warnings.warn(
            f"`build()` was called on layer '{self.name}', however the layer does not have a "
            "`build()` method implemented and it looks like it has unbuilt state. This will "
            "cause the layer to be marked as built, despite not being actually built, which "
            "may cause failures down the line. Make sure to implement a proper `build()` "
            "method.", stacklevel=2)
    self.built = True


def _layers_in(value):
    if isinstance(value, Layer):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in _layers_in(v)]
    return []


def __setattr__(self, name, value):
    """Keras 3's tracking: a layer assigned to an attribute (or in a list, tuple or dict
    assigned to one) joins the model's layers, in order, once; reassigning the attribute
    does not remove the earlier layer (Keras's tracker keeps it), deleting it does."""
    tracked = self.__dict__.get("_tracked_layers")
    if tracked is None:
        tracked = []
        object.__setattr__(self, "_tracked_layers", tracked)
    for layer in _layers_in(value):
        if layer is not self and all(layer is not t for t in tracked):
            tracked.append(layer)
    object.__setattr__(self, name, value)


def __delattr__(self, name):
    value = self.__dict__.get(name)
    object.__delattr__(self, name)
    gone = {id(layer) for layer in _layers_in(value)}
    self._tracked_layers[:] = [t for t in self._tracked_layers if id(t) not in gone]


def _sublayers(self):
    """The tracked layers (``__setattr__``), then layers added since to lists or dicts
    held in attributes (Keras's tracked containers), in order."""
    found = list(self.__dict__.get("_tracked_layers", ()))
    seen = {id(layer) for layer in found} | {id(self)}
    for value in self.__dict__.values():
        if isinstance(value, (list, tuple, dict)) and value is not found:
            for layer in _layers_in(value):
                if id(layer) not in seen:
                    seen.add(id(layer))
                    found.append(layer)
    return found


def _layers(self):
    return self._sublayers()


def _weights(self):
    seen, out = set(), []
    own = [w for w in self._weights if w.trainable] + [w for w in self._weights
                                                       if not w.trainable]
    for w in own + [w for layer in self._sublayers() for w in layer.weights]:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


def summary(self, print_fn=None):
    """Keras's table for a subclassed model: its layers in tracking order, each with the
    output shape of its first call (``?`` and ``0 (unbuilt)`` before the model is built)."""
    emit = print_fn or print
    if not self.built:
        for line in summary_mod.unbuilt_lines(self, self.layers):
            emit(line)
        return
    rows = []
    for layer in self.layers:
        shape = self._call_shapes.get(id(layer))
        if shape is None:
            text = "?"
        elif isinstance(shape, list):
            text = "[" + ", ".join(summary_mod._format_shape(s) for s in shape) + "]"
        else:
            text = summary_mod._format_shape(shape)
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        rows.append([f"{layer.name} ({type(layer).__name__})", text, params])
    lines = [f'Model: "{summary_mod.shown(self.name)}"'] + summary_mod._table(
        ["Layer (type)", "Output Shape", "Param #"], rows, [33, 24, 15],
        ["left", "left", "right"])
    for line in lines + summary_mod.totals_lines(self):
        emit(line)


def _refuse_custom_steps(self):
    if self._custom_steps:
        raise NotImplementedError(
            f"{type(self).__name__} overrides {', '.join(self._custom_steps)}: unrolled's fit, "
            "evaluate and predict run their own step (no autodiff, no GradientTape), so it "
            "would be ignored. Remove the override to use unrolled's step.")


def compile(self, *args, **kwargs):
    _refuse_custom_steps(self)
    return Trainer.compile(self, *args, **kwargs)


def get_config(self):
    return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}


def _refuse_file(what, advice):
    def method(self, filepath, *args, **kwargs):
        raise NotImplementedError(
            f"{what}({filepath!r}): model '{self.name}' is a subclassed model "
            f"({type(self).__name__} defines `call`); unrolled does not write or read it in "
            f"that format. {advice}")
    return method


_NPZ = "Use save_weights/load_weights with a '.weights.npz' file (weights in model.weights " \
       "order), and rebuild the model from its class in code."


def save_weights(self, filepath):
    from ..saving.model_files import _suffix
    if _suffix(filepath) not in (".weights.npz", ".npz"):
        _refuse_file("save_weights", "Keras 3 lays a subclassed model's .weights.h5 out by "
                     "its attribute names, which unrolled does not write. " + _NPZ)(self,
                                                                                   filepath)
    from ..io import native
    native.save_weights(self, filepath)


def load_weights(self, filepath, skip_mismatch=False, **kwargs):
    from ..saving.model_files import _suffix
    given = sorted(kwargs) + (["skip_mismatch"] if skip_mismatch else [])
    if given:
        raise NotImplementedError(f"load_weights of a subclassed model takes the file alone; "
                                  f"received {given}.")
    if _suffix(filepath) not in (".weights.npz", ".npz"):
        _refuse_file("load_weights", _NPZ)(self, filepath)
    if self.outputs is None:
        raise ValueError(f"Model '{self.name}' is not built yet: call it on data first (its "
                         "layers create their weights on the first call), then load weights.")
    from ..io import native
    native.load_weights(self, filepath)


def _no_graph(what):
    def get(self):
        raise AttributeError(f"Model '{self.name}' is a subclassed model: it has no defined "
                             f"{what} (Keras gives one only to functional models).")
    return property(get)


_METHODS = {
    "_run": _run, "_run_graph": _run_graph, "forward": forward, "call": call,
    "backward": backward, "_standardize_inputs": _standardize_inputs, "_pack": _pack,
    "_eager_call": _eager_call, "_prepare_eager": _prepare_eager, "__call__": __call__,
    "build": build, "_sublayers": _sublayers, "__setattr__": __setattr__,
    "__delattr__": __delattr__, "layers": property(_layers),
    "weights": property(_weights), "summary": summary,
    "compile": compile, "get_config": get_config,
    "save": _refuse_file("save", "Keras writes the class and its get_config; " + _NPZ),
    "to_json": lambda self, **kw: _refuse_file("to_json", _NPZ)(self, "<json>"),
    "save_weights": save_weights, "load_weights": load_weights,
    "input": _no_graph("input"), "output": _no_graph("output"),
    "input_shape": _no_graph("input_shape"), "output_shape": _no_graph("output_shape"),
    "optional_input_gradient": False,
}
