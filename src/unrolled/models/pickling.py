"""``copy.deepcopy(model)`` and ``pickle``: a model goes through unrolled's own format.

Keras 3 pickles a model by saving it to an in-memory ``.keras`` archive and loading it
again (``KerasSaveable.__reduce__``), and ``copy.deepcopy`` takes the same road. unrolled
does the same with its native format, NumPy alone: ``Model.__reduce__`` returns::

    (unrolled.models.pickling.rebuild, (payload, functions, classes))

* ``payload`` (bytes): an uncompressed ``.npz`` archive of ``.npy`` arrays, as
  ``.unrolled.npz`` (``saving.npz_model``): ``__format__``, ``__config__`` (the model's JSON
  config), one array per weight (``layers/lstm/cell/vars/0`` ...), and, for a compiled
  model, ``__compile__`` (JSON: optimizer, loss and metrics as ``compile`` received them,
  and which weights the optimizer holds state for) and ``optimizer/vars/0`` ... in
  ``optimizer.variables`` order (iteration, learning rate, slots), as Keras saves them.
  It is read back as files are (``io.safety``: members by name, ``.npy`` headers checked,
  ``allow_pickle`` never): the payload is data.
* ``functions``: the losses, metrics and learning rates that ``compile`` was given as
  Python functions (alone or in ``LossFunctionWrapper(fn, gradient_fn)`` and
  ``MeanMetricWrapper(fn)``, whose other arguments go in ``__compile__``), which pickle
  *by reference* (module and name), as Python pickles any function; unpickling imports
  their module, as it would for the function alone. A lambda or a local function cannot
  be pickled (``PicklingError``), but is kept as it is by ``copy.deepcopy``, which copies
  no function.
* ``classes``: ``{name: class}`` for the layers and cells written the Keras way
  (``layers/custom.py``), by reference as well; ``rebuild`` builds them as
  ``load_model(..., custom_objects=classes)`` does (a class defined inside a function
  deep-copies, but does not pickle, as Python's rule for classes goes).

The copy holds what a ``.keras`` round trip holds in Keras 3, so ``fit`` continues as the
original's would: the weights, the compile arguments, the optimizer's iterations, learning
rate (also one set by a callback) and slots (Adam's moments, SGD's momentum), the
learning-rate schedule. As in Keras it does not hold the metrics' running totals (the copy
builds its metrics on its first batch; ``fit`` and ``evaluate`` reset them anyway), nor a
stateful RNN's carried states (the copy starts from zeros, as after ``reset_states()``),
nor where a random stream stands (the copy's dropout masks are not the ones the original
would draw next). Beyond Keras's copy, it keeps
``optimizer.exclude_from_weight_decay``. Refused, with the reason: subclassed models (their
structure is Python code, not a config) and compile arguments that are neither unrolled's
built-in classes nor Python functions.
"""
import io
import json
import types

import numpy as np

_FORMAT = "unrolled.pickle/1"


def reduce_model(model):
    """``(rebuild, args)`` for ``Model.__reduce__``; raises TypeError naming what cannot be
    copied."""
    if getattr(type(model), "_user_call", None) is not None:
        raise TypeError(
            f"Cannot pickle or copy model '{model.name}' ({type(model).__name__}): it is a "
            "subclassed model, whose structure is its Python code, not a config. Build a new "
            "one in code and copy the weights: new.set_weights(model.get_weights()) (or "
            "save_weights/load_weights with .weights.npz).")
    functions = []
    compiled = _compile_state(model, functions)
    try:
        payload = _payload(model, compiled)
    except (ValueError, TypeError) as e:  # not built; a layer or a value no config can hold
        raise type(e)(f"Cannot pickle or copy model '{model.name}': {e}") from None
    return rebuild, (payload, tuple(functions), _custom_classes(model))


def rebuild(payload, functions=(), classes=None):
    """The model a ``reduce_model`` payload describes (compiled, optimizer state restored)."""
    from ..saving import custom_objects as custom
    with custom.scope(classes or None, "unpickling a model"):
        return _from_payload(payload, tuple(functions))


# --- writing ---------------------------------------------------------------------------------
def _payload(model, compiled):
    from ..saving.graph import model_config, weight_groups
    arrays = {"__format__": _text(_FORMAT), "__config__": _text(json.dumps(model_config(model)))}
    for group, variables in weight_groups(model, model.layers):
        for i, var in enumerate(variables):
            arrays[f"{group}/vars/{i}"] = var.numpy()
    if compiled is not None:
        arrays["__compile__"] = _text(json.dumps(compiled))
        for i, var in enumerate(model.optimizer.variables):
            arrays[f"optimizer/vars/{i}"] = var.numpy()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _compile_state(model, functions):
    """The JSON-able compile state of ``model``, or None if it is not compiled. Functions
    are appended to ``functions`` and written as ``{"function": index}``."""
    from .. import losses, metrics, optimizers
    from ..losses import LossFunctionWrapper
    from ..metrics import MeanMetricWrapper
    from ..optimizers import schedules
    if not getattr(model, "compiled", False) or model.optimizer is None:
        return None
    opt = model.optimizer

    def entry(obj, module, what):
        if obj is None or isinstance(obj, str):
            return obj
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
            functions.append(obj)
            return {"function": len(functions) - 1}
        cls = type(obj)
        if cls is LossFunctionWrapper:                   # a function with its gradient
            return {"wrapper": cls.__name__, "fn": entry(obj.fn, module, what),
                    "gradient_fn": entry(obj.gradient_fn, module, what),
                    "reduction": obj.reduction, "name": obj.name}
        if cls is MeanMetricWrapper:
            return {"wrapper": cls.__name__, "fn": entry(obj.fn, module, what),
                    "name": obj.name, "dtype": obj.dtype.name, "fn_kwargs": obj.fn_kwargs}
        if getattr(module, cls.__name__, None) is cls and hasattr(obj, "get_config") \
                and cls.__name__ not in ("MeanMetricWrapper", "LossFunctionWrapper"):
            return {"class_name": cls.__name__, "config": obj.get_config()}
        raise TypeError(
            f"Cannot pickle or copy model '{model.name}': its {what} {obj!r} is neither one of "
            f"unrolled's {module.__name__.rsplit('.', 1)[-1]} nor a Python function. Compile "
            "with a built-in name or class, or a module-level function.")

    config = opt.get_config()
    lr = opt._learning_rate
    if callable(lr) and not hasattr(lr, "value"):
        config["learning_rate"] = entry(lr, schedules, "learning-rate schedule")
    optimizer = entry(opt, optimizers, "optimizer")
    optimizer["config"] = config
    args = model._compile_args
    weights = model.weights
    index = {id(w): i for i, w in enumerate(weights)}
    for var in opt._seen:
        if id(var) not in index:
            raise TypeError(
                f"Cannot pickle or copy model '{model.name}': its optimizer '{opt.name}' holds "
                f"state for variable '{var.path}', which is not one of the model's weights.")
    return {"optimizer": optimizer,
            "loss": entry(args["loss"], losses, "loss"),
            "metrics": [entry(m, metrics, "metric") for m in args["metrics"]],
            "seen": [index[id(v)] for v in opt._seen],
            "exclude_from_weight_decay": {
                "weights": sorted(index[i] for i in opt._exclude_ids if i in index),
                "pattern": opt._exclude_pattern.pattern if opt._exclude_pattern else None}}


def _custom_classes(model):
    """``{registered name: class}`` of the layers and cells written the Keras way."""
    from ..saving.custom_objects import is_custom
    found, stack, seen = {}, list(model.layers), set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if is_custom(obj):
            for cell in getattr(obj, "_cells", None) or [obj]:
                found[_registered_name(type(cell))] = type(cell)
        for attr in ("cell", "layer", "forward_layer", "backward_layer"):
            sub = getattr(obj, attr, None)
            if sub is not None and hasattr(sub, "get_config"):
                stack.append(sub)
        stack.extend(getattr(obj, "cells", None) or [])
        if hasattr(obj, "_sublayers"):
            stack.extend(obj._sublayers())
    return found


def _registered_name(cls):
    import sys
    registry = sys.modules.get("unrolled.saving")
    return registry.get_registered_name(cls) if registry is not None else cls.__name__


def _text(text):
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


# --- reading ---------------------------------------------------------------------------------
def _from_payload(payload, functions):
    from ..saving.graph import model_from_config, weight_groups
    from ..saving.keras_format import config_layer_order, parse_json
    from ..io.safety import MAX_JSON_BYTES, ModelFileError, SafeZip, read_npy, weights_budget

    where = "the pickled model"
    if not isinstance(payload, (bytes, bytearray)):
        raise ModelFileError(f"{where} is not an unrolled payload (bytes expected).")
    archive = SafeZip(bytes(payload), where)

    def member(name, max_bytes=None):
        data = archive.read(name + ".npy", *(() if max_bytes is None else (max_bytes,)))
        return read_npy(data, name, where)

    def text(name):
        return bytes(member(name, MAX_JSON_BYTES).astype(np.uint8))

    if not archive.has("__format__.npy") or text("__format__").decode("utf-8", "replace") \
            != _FORMAT:
        raise ModelFileError(f"{where} is not in this version's format {_FORMAT!r}.")
    config = parse_json(text("__config__"), "__config__", where)
    model = model_from_config(config, f"{where} __config__",
                              weights_bytes=weights_budget(len(payload)))
    updates = []
    for group, variables in weight_groups(model, config_layer_order(model, config)):
        for i, var in enumerate(variables):
            updates.append((var, _checked(member(f"{group}/vars/{i}"), var, where)))
    for var, value in updates:
        var.assign(value)
    if archive.has("__compile__.npy"):
        compiled = parse_json(text("__compile__"), "__compile__", where)
        try:
            _compile(model, compiled, functions, member, where)
        except (KeyError, IndexError, TypeError, AttributeError) as e:   # a damaged payload
            raise ModelFileError(f"{where}: its compile state cannot be read: "
                                 f"{type(e).__name__}: {e}") from None
    return model


def _compile(model, compiled, functions, member, where):
    """``model.compile`` as the original was compiled, then the optimizer's state."""
    import re

    from .. import losses, metrics, optimizers
    from .compile_config import _build, _optimizer_config

    def build(entry, module, adjust=None):
        if isinstance(entry, dict) and set(entry) == {"function"}:
            return functions[entry["function"]]
        if isinstance(entry, dict) and entry.get("wrapper") == "LossFunctionWrapper":
            return losses.LossFunctionWrapper(build(entry["fn"], losses), build(
                entry["gradient_fn"], losses), entry["reduction"], entry["name"])
        if isinstance(entry, dict) and entry.get("wrapper") == "MeanMetricWrapper":
            return metrics.MeanMetricWrapper(build(entry["fn"], metrics), entry["name"],
                                             entry["dtype"], **entry["fn_kwargs"])
        return _build(entry, module, where, adjust)

    optimizer = dict(compiled["optimizer"])
    optimizer["config"] = dict(optimizer["config"])
    lr = optimizer["config"].get("learning_rate")
    if isinstance(lr, dict) and set(lr) == {"function"}:
        optimizer["config"]["learning_rate"] = functions[lr["function"]]
    model.compile(optimizer=build(optimizer, optimizers, _optimizer_config),
                  loss=build(compiled["loss"], losses),
                  metrics=[build(m, metrics) for m in compiled["metrics"]])
    opt, weights = model.optimizer, model.weights
    opt.build([weights[i] for i in compiled["seen"]])
    for i, var in enumerate(opt.variables):
        var.assign(_checked(member(f"optimizer/vars/{i}"), var, where))
    excluded = compiled["exclude_from_weight_decay"]
    opt._exclude_ids = {id(weights[i]) for i in excluded["weights"]}
    if excluded["pattern"] is not None:
        opt._exclude_pattern = re.compile(excluded["pattern"])


def _checked(value, var, where):
    from ..io.safety import ModelFileError
    if value.shape != var.shape:
        raise ModelFileError(f"{where}: {var.path} has shape {value.shape}, the model expects "
                             f"{var.shape}.")
    return value
