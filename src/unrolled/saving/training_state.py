"""A compiled model's training state in unrolled's own archives: ``.unrolled.npz`` files
and the ``pickle``/``copy.deepcopy`` payload (both written by ``npz_model.archive_bytes``).

Beside the config and the weights, a compiled model adds:

* ``__compile__``: JSON text (UTF-8, as a uint8 array) ::

      {"optimizer": {"class_name": "Adam", "config": {...}},
       "loss": ..., "metrics": [...],
       "seen": [indices into model.weights],
       "exclude_from_weight_decay": {"weights": [indices], "pattern": str or None}}

  ``loss`` and each metric as ``compile`` received them: a name (``"mse"``), one of
  unrolled's classes as ``{"class_name", "config"}``, a ``LossFunctionWrapper`` or
  ``MeanMetricWrapper`` around functions, or a function. A learning-rate schedule sits in
  the optimizer's config as ``{"class_name", "config"}``, a learning rate given as a
  function as a function. ``seen`` lists the variables the optimizer holds slots for, in
  the order it first saw them (the order of its slots).
* ``optimizer/vars/0`` ... ``optimizer/vars/{n-1}``: ``optimizer.variables`` in Keras's
  order: the iteration (int64), the learning rate (not with a schedule), then the slot
  groups (Adam: every variable's momentum, then every variable's velocity).

A function is written by the container's rule: ``ByReference`` (pickle: the function
object travels beside the data and pickles by reference) or ``ByName`` (files: a name,
looked up when read; a file holds no code). ``restore`` compiles the model from
``__compile__``, builds the optimizer over ``seen`` and checks every ``optimizer/vars/i``
(its shape and dtype must be those of the variable it replaces, no member may be missing
or left over) before assigning any; what does not fit raises ``ModelFileError`` naming
the member.
"""
import json
import re
import sys
import types

import numpy as np

from ..io.safety import MAX_JSON_BYTES, ModelFileError


# --- how functions are written ---------------------------------------------------------------
class ByReference:
    """``pickle``/``copy.deepcopy``: functions go in ``functions`` (pickled by reference,
    beside the payload) and the JSON holds their index, ``{"function": i}``."""

    def __init__(self, functions=()):
        self.functions = list(functions)

    def write(self, fn, module, what, prefix):
        self.functions.append(fn)
        return {"function": len(self.functions) - 1}

    def read(self, entry, module, what, where):
        i = entry["function"]
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(self.functions):
            raise ModelFileError(f"{where}: its {what} refers to function {i!r}, which was not "
                                 "pickled with it.")
        return self.functions[i]


class ByName:
    """Files: a function is written as ``{"function": name}``, where ``name`` is the
    ``"package>name"`` under which it was registered with
    ``unrolled.saving.register_keras_serializable`` or, for one of unrolled's own loss and
    metric functions (``unrolled.losses.mean_squared_error``...), its name. Any other
    function is refused when saving (a file cannot hold code), naming it. Reading looks the
    name up among the registered objects (and ``custom_object_scope``), or among unrolled's
    own functions of that kind: a file can only name a function the program provides."""

    def write(self, fn, module, what, prefix):
        key = _registered_name(fn)
        if key is not None:
            return {"function": key}
        if _builtin_function(module, getattr(fn, "__name__", None)) is fn:
            return {"function": fn.__name__}
        raise TypeError(
            f"{prefix}: its {what} {fn!r} is a Python function that is neither registered nor "
            "one of unrolled's; a file names functions, it holds no code. Register it "
            "(@unrolled.saving.register_keras_serializable(), and again in the program that "
            "loads the file), or save the model without its training state: "
            "unrolled.saving.save_model(model, path, include_optimizer=False).")

    def read(self, entry, module, what, where):
        name = entry["function"]
        if not isinstance(name, str):
            raise ModelFileError(f"{where}: its {what} names function {name!r}; expected a "
                                 "name.")
        if ">" in name:
            import unrolled.saving as registry
            fn = registry.get_registered_object(name)
            if fn is None or isinstance(fn, type) or not callable(fn):
                raise ModelFileError(
                    f"{where}: its {what} is the function registered as {name!r}, which is "
                    "not registered in this program. Register it (unrolled.saving."
                    "register_keras_serializable) before loading, or load with compile=False.")
            return fn
        fn = _builtin_function(module, name)
        if fn is None:
            raise ModelFileError(f"{where}: its {what} names {name!r}, which is not one of "
                                 f"unrolled's {_kind(module)} functions.")
        return fn


def _registered_name(fn):
    registry = sys.modules.get("unrolled.saving")        # only if the program imported it
    return None if registry is None else registry.GLOBAL_CUSTOM_NAMES.get(fn)


def _builtin_function(module, name):
    """unrolled's own loss or metric function ``name`` (one compile knows by name)."""
    from .. import losses, metrics
    if module not in (losses, metrics) or not isinstance(name, str) \
            or name not in module._BY_NAME:
        return None
    fn = getattr(module, name, None)
    return fn if isinstance(fn, types.FunctionType) else None


def _kind(module):
    return module.__name__.rsplit(".", 1)[-1]


# --- writing ---------------------------------------------------------------------------------
def compile_state(model, functions, prefix):
    """The JSON-able compile state of ``model`` (None if it is not compiled). Functions are
    written by ``functions`` (``ByReference`` or ``ByName``); what cannot be written raises
    TypeError starting with ``prefix`` (e.g. "Cannot pickle or copy model 'm'")."""
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
            return functions.write(obj, module, what, prefix)
        cls = type(obj)
        if cls is LossFunctionWrapper:                   # a function with its gradient
            return {"wrapper": cls.__name__, "fn": entry(obj.fn, module, what),
                    "gradient_fn": entry(obj.gradient_fn, module, what),
                    "reduction": obj.reduction, "name": obj.name}
        if cls is MeanMetricWrapper:
            return {"wrapper": cls.__name__, "fn": entry(obj.fn, module, what),
                    "name": obj.name, "dtype": obj.dtype.name, "fn_kwargs": obj.fn_kwargs}
        if getattr(module, cls.__name__, None) is cls and hasattr(obj, "get_config"):
            return {"class_name": cls.__name__, "config": obj.get_config()}
        raise TypeError(
            f"{prefix}: its {what} {obj!r} is neither one of unrolled's {_kind(module)} nor a "
            "Python function. Compile with a built-in name or class, or a module-level function.")

    config = opt.get_config()
    lr = opt._learning_rate
    if callable(lr) and not hasattr(lr, "value"):
        config["learning_rate"] = entry(lr, schedules, "learning-rate schedule")
    optimizer = entry(opt, optimizers, "optimizer")
    optimizer["config"] = config
    args = model._compile_args
    index = {id(w): i for i, w in enumerate(model.weights)}
    for var in opt._seen:
        if id(var) not in index:
            raise TypeError(
                f"{prefix}: its optimizer '{opt.name}' holds state for variable "
                f"'{var.path}', which is not one of the model's weights.")
    return {"optimizer": optimizer,
            "loss": entry(args["loss"], losses, "loss"),
            "metrics": [entry(m, metrics, "metric") for m in args["metrics"]],
            "seen": [index[id(v)] for v in opt._seen],
            "exclude_from_weight_decay": {
                "weights": sorted(index[i] for i in opt._exclude_ids if i in index),
                "pattern": opt._exclude_pattern.pattern if opt._exclude_pattern else None}}


def state_arrays(model, compiled):
    """The archive members of a compile state: ``__compile__`` and ``optimizer/vars/i``."""
    arrays = {"__compile__": np.frombuffer(json.dumps(compiled).encode("utf-8"), np.uint8)}
    for i, var in enumerate(model.optimizer.variables):
        arrays[f"optimizer/vars/{i}"] = var.numpy()
    return arrays


# --- reading ---------------------------------------------------------------------------------
def restore(model, archive, functions, where):
    """Compile ``model`` as the archive's ``__compile__`` says and give its optimizer the
    archive's ``optimizer/vars``. ``archive`` has ``has(name)``, ``names()``, ``array(name)``
    and ``text(name, max_bytes)`` (members read through ``io.safety``). An archive
    without ``__compile__`` (an uncompiled model, or a file from before the training state
    was saved) leaves the model uncompiled; one with optimizer variables but no
    ``__compile__`` is refused."""
    from .keras_format import parse_json
    path, where = where, repr(where)                    # the file (or "the pickled model")
    if not archive.has("__compile__"):
        stray = [n for n in archive.names() if n.startswith("optimizer/")]
        if stray:
            raise ModelFileError(f"{where}: it holds optimizer variables ({stray[0]}...) but no "
                                 "__compile__ member to say which optimizer they belong to.")
        return
    compiled = parse_json(archive.text("__compile__", MAX_JSON_BYTES), "__compile__", path)
    try:
        _compile(model, compiled, functions, where)
        seen = _indices(compiled["seen"], len(model.weights), "__compile__ seen", where)
        excluded = compiled["exclude_from_weight_decay"]
        excluded_ids = _indices(excluded["weights"], len(model.weights),
                                "__compile__ exclude_from_weight_decay", where)
        pattern = excluded["pattern"]
        if pattern is not None and not isinstance(pattern, str):
            raise TypeError(f"exclude_from_weight_decay pattern {pattern!r} is not a string")
    except (KeyError, IndexError, TypeError, AttributeError) as e:   # a damaged state
        raise ModelFileError(f"{where}: its compile state cannot be read: "
                             f"{type(e).__name__}: {e}") from None
    opt, weights = model.optimizer, model.weights
    opt.build([weights[i] for i in seen])
    values = [_checked(archive, f"optimizer/vars/{i}", var, where)
              for i, var in enumerate(opt.variables)]
    extra = f"optimizer/vars/{len(values)}"
    if archive.has(extra):
        raise ModelFileError(f"{where}: it holds {extra}, but optimizer '{opt.name}' has "
                             f"{len(values)} variables.")
    for var, value in zip(opt.variables, values):
        var.assign(value)
    opt._exclude_ids = {id(weights[i]) for i in excluded_ids}
    if pattern is not None:
        try:
            opt._exclude_pattern = re.compile(pattern)
        except re.error as e:
            raise ModelFileError(f"{where}: __compile__ exclude_from_weight_decay pattern "
                                 f"{pattern!r} is not a regular expression ({e}).") from None


def _compile(model, compiled, functions, where):
    """``model.compile`` as the original was compiled."""
    from .. import losses, metrics, optimizers
    from ..models.compile_config import _build, _optimizer_config
    from ..optimizers import schedules

    def build(entry, module, what, adjust=None):
        if isinstance(entry, dict) and set(entry) == {"function"}:
            return functions.read(entry, module, what, where)
        if isinstance(entry, dict) and entry.get("wrapper") == "LossFunctionWrapper":
            return losses.LossFunctionWrapper(
                build(entry["fn"], losses, what), build(entry["gradient_fn"], losses, what),
                entry["reduction"], entry["name"])
        if isinstance(entry, dict) and entry.get("wrapper") == "MeanMetricWrapper":
            if not isinstance(entry["fn_kwargs"], dict):
                raise TypeError(f"fn_kwargs {entry['fn_kwargs']!r} is not a dict")
            return metrics.MeanMetricWrapper(build(entry["fn"], metrics, what), entry["name"],
                                             entry["dtype"], **entry["fn_kwargs"])
        return _build(entry, module, where, adjust)

    optimizer = dict(compiled["optimizer"])
    optimizer["config"] = dict(optimizer["config"])
    lr = optimizer["config"].get("learning_rate")
    if isinstance(lr, dict) and set(lr) == {"function"}:
        optimizer["config"]["learning_rate"] = functions.read(lr, schedules, "learning rate",
                                                              where)
    if not isinstance(compiled["metrics"], list):
        raise TypeError(f"metrics {compiled['metrics']!r} is not a list")
    model.compile(optimizer=build(optimizer, optimizers, "optimizer", _optimizer_config),
                  loss=build(compiled["loss"], losses, "loss"),
                  metrics=[build(m, metrics, "metric") for m in compiled["metrics"]])


def _indices(values, count, what, where):
    if not isinstance(values, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count for i in values) \
            or len(set(values)) != len(values):
        raise ModelFileError(f"{where}: {what} must list distinct indices of the model's "
                             f"{count} weights; it holds {str(values)[:200]}.")
    return values


def _checked(archive, name, var, where):
    """Member ``name`` for optimizer variable ``var``: same shape and dtype, or refused."""
    if not archive.has(name):
        raise ModelFileError(f"{where}: {name} is missing; optimizer variable '{var.path}' "
                             "has no saved value.")
    value = archive.array(name)
    expected = var.numpy()
    if value.shape != expected.shape or value.dtype != expected.dtype:
        raise ModelFileError(f"{where}: {name} has shape {value.shape} and dtype {value.dtype}; "
                             f"optimizer variable '{var.path}' has shape {expected.shape} and "
                             f"dtype {expected.dtype}.")
    if name.endswith("/0") and value.dtype.kind in "iu" and value.ndim == 0 and value < 0:
        raise ModelFileError(f"{where}: {name} (the optimizer's iteration count) is {value}.")
    return value
