"""Keras configs read back into unbuilt unrolled layers: ``layer_from_config``.

Reading is strict: a key that is neither a listed option (``serialize.LAYERS``), a key that
must hold its neutral value (``NEUTRAL``: regularizers and constraints ``None``, ``sparse``
false, …) nor a key without effect on the numbers (``IGNORED``) raises
``UnsupportedModelError`` naming it. ``Lambda`` layers and custom objects raise
``UnsafeModelError`` (``check_not_code``), unless the caller passed the class. Initializers
are read under their Keras 3 names (Keras 2's aliases and ``VarianceScaling`` forms
included), dtypes as Keras's policies, and ``InputLayer``s from Keras 3 or tf.keras 2
configs (``input_layer_from_config``).
"""
import numpy as np

from .. import constraints, initializers, regularizers
from ..layers import InputLayer
from . import custom_objects
from ..io.safety import UnsafeModelError, UnsupportedModelError
from .serialize import (ACTIVATIONS, FLOAT_DTYPES, IGNORED, INIT_ALIASES, INITIALIZERS, LAYERS,
                        NESTED, NEUTRAL, NEUTRAL_SUFFIXES, rule_keys, supported_classes)


def check_not_code(entry, where):
    """Refuse Lambda layers and custom (registered or non-Keras) objects."""
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise UnsupportedModelError(f"{where}: expected a {{'class_name', 'config'}} object; "
                                    f"received {str(entry)[:200]}.")
    class_name = entry["class_name"]
    module = entry.get("module")
    registered = entry.get("registered_name")
    if class_name in ("Lambda", "function", "__lambda__"):
        raise UnsafeModelError(
            f"{where}: a {class_name} holds Python code, which unrolled never runs from a "
            f"file. Supported classes: {', '.join(supported_classes())}."
        )
    # tf_keras (Keras 2 as a package, 2.16+) names its own models "tf_keras.src.engine.*"
    custom = (module is not None and not (module in ("keras", "tf_keras")
                                          or module.startswith(("keras.", "tf_keras."))))
    custom = custom or (registered is not None and registered != class_name)
    if custom and custom_objects.lookup(entry) is None:      # (a class passed in code)
        raise UnsafeModelError(
            f"{where}: {class_name} is a custom object (module={module!r}, "
            f"registered_name={registered!r}); custom objects are refused. Supported classes: "
            f"{', '.join(supported_classes())}.{custom_objects.refusal_hint()}"
        )


DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy", "Policy")


def read_dtype(value, where):
    if isinstance(value, dict):          # a dtype policy: Keras's own classes, nothing else
        check_not_code(value, f"{where} dtype")
        if value["class_name"] not in DTYPE_POLICIES:
            raise UnsupportedModelError(f"{where}: dtype policy {value['class_name']!r} is not "
                                        f"supported; supported: {', '.join(DTYPE_POLICIES)}.")
        config = value.get("config")
        value = config.get("name") if isinstance(config, dict) else None
    if value is None:
        return None
    if value not in FLOAT_DTYPES:
        raise UnsupportedModelError(f"{where}: dtype {value!r} is not supported; layers compute in "
                                    f"{' or '.join(FLOAT_DTYPES)}.")
    return value


# Keras 2.2 and earlier wrote glorot_uniform and he_uniform as VarianceScaling with these
# (scale, mode, distribution): the same initializers, under their Keras 3 names.
_VARIANCE_SCALING = {(1.0, "fan_avg", "uniform"): "GlorotUniform",
                     (1.0, "fan_avg", "normal"): "GlorotNormal",
                     (1.0, "fan_avg", "truncated_normal"): "GlorotNormal",
                     (2.0, "fan_in", "uniform"): "HeUniform",
                     (2.0, "fan_in", "normal"): "HeNormal",
                     (2.0, "fan_in", "truncated_normal"): "HeNormal",
                     (1.0, "fan_in", "uniform"): "LecunUniform",
                     (1.0, "fan_in", "normal"): "LecunNormal",
                     (1.0, "fan_in", "truncated_normal"): "LecunNormal"}


def read_initializer(value, where):
    if isinstance(value, str):
        value = {"class_name": INIT_ALIASES.get(value, value), "config": {}}
    check_not_code(value, where)
    if value["class_name"] == "VarianceScaling":
        config = dict(value.get("config") or {})
        key = (config.get("scale", 1.0), config.get("mode", "fan_in"),
               config.get("distribution", "truncated_normal"))
        if key in _VARIANCE_SCALING:       # a named one, under its Keras 3 name
            for k in ("scale", "mode", "distribution"):
                config.pop(k, None)
            value = {"class_name": _VARIANCE_SCALING[key], "config": config}
        else:
            value = {"class_name": "VarianceScaling", "config": config}
    name = INIT_ALIASES.get(value["class_name"], value["class_name"])
    if name not in INITIALIZERS:
        raise UnsupportedModelError(f"{where}: initializer {name!r} is not supported; supported: "
                                    f"{', '.join(sorted(INITIALIZERS))}.")
    kwargs = {}
    for key, v in (value.get("config") or {}).items():
        if key in INITIALIZERS[name]:
            kwargs[key] = v
        elif v is not None:
            raise UnsupportedModelError(f"{where}: option {key}={v!r} of initializer {name} is "
                                        "not supported.")
    try:
        return getattr(initializers, name)(**kwargs)
    except (TypeError, ValueError) as e:
        raise UnsupportedModelError(f"{where}: initializer {name} cannot be built: {e}") from None


def _read_option(key, value, where, hard_sigmoid):
    if key.endswith("activation"):
        if not isinstance(value, str) or value not in ACTIVATIONS:
            check_not_code(value if isinstance(value, dict) else {"class_name": "?"}, where)
            raise UnsupportedModelError(f"{where}: activation {value!r} is not supported; "
                                        f"supported: {', '.join(ACTIVATIONS)}.")
        if value == "hard_sigmoid":
            if hard_sigmoid is None:
                raise UnsupportedModelError(
                    f"{where}: {key} 'hard_sigmoid' is clip(0.2*x + 0.5, 0, 1) in files Keras 2 "
                    "wrote and clip(x/6 + 0.5, 0, 1) in files Keras 3 wrote, and this file's "
                    "keras_version cannot be read, so which one it means is unknown.")
            return hard_sigmoid
        return value
    if key.endswith("_initializer"):
        return read_initializer(value, f"{where} {key}")
    if key in ("noise_shape", "target_shape") and value is not None:
        return tuple(value)
    return value


def _check_neutral(key, value, where, class_name):
    if key in NEUTRAL or key.endswith(NEUTRAL_SUFFIXES):
        allowed = NEUTRAL.get(key, (None,))
        if value not in allowed:
            raise UnsupportedModelError(
                f"{where}: option {key}={str(value)[:100]} of {class_name} is not supported "
                f"(only {' or '.join(map(repr, allowed))}); unrolled implements inference and "
                "training without it."
            )
        return True
    return key in IGNORED


def layer_from_config(entry, where="layer", hard_sigmoid="hard_sigmoid"):
    """An unbuilt unrolled layer or cell from a Keras ``{"class_name", "config"}`` entry;
    ``hard_sigmoid``: the activation the entry's ``"hard_sigmoid"`` means (``hard_sigmoid_for``)."""
    cls = custom_objects.lookup(entry)                       # a class the caller passed
    if cls is not None:
        name = (entry.get("config") or {}).get("name", "")
        return custom_objects.build(cls, entry, f"{where} {name!r}", read_dtype)
    check_not_code(entry, where)
    class_name = entry["class_name"]
    if class_name not in LAYERS or class_name == "InputLayer":
        raise UnsupportedModelError(
            f"{where}: layer class {class_name!r} is not supported. Supported classes: "
            f"{', '.join(supported_classes())}."
        )
    cls, _, options = LAYERS[class_name]
    config = entry.get("config") or {}
    where = f"{where} {config.get('name', '')!r} ({class_name})"
    kwargs, training_only = {}, {}
    nested = NESTED.get(class_name, ())
    for key, value in config.items():
        if key in ("name", "trainable"):
            kwargs[key] = value
        elif key.endswith(NEUTRAL_SUFFIXES) and value is not None:
            takes = key in rule_keys(cls) or (key == "activity_regularizer"
                                              and not hasattr(cls, "step"))   # not on cells
            rule = _read_rule(key, value, where) if takes else None
            if rule is not None:
                kwargs[key] = rule
            else:
                training_only[key] = _read_training_only(key, value, where)
        elif key == "dtype":
            kwargs["dtype"] = read_dtype(value, where)
        elif key in options:
            kwargs[key] = _read_option(key, value, where, hard_sigmoid)
        elif key in nested:
            if value is None:
                continue
            if key == "cells":
                kwargs[key] = [layer_from_config(c, f"{where} cell {i}", hard_sigmoid)
                               for i, c in enumerate(value)]
            else:
                kwargs[key] = layer_from_config(value, f"{where} {key}", hard_sigmoid)
        elif not _check_neutral(key, value, where, class_name):
            raise UnsupportedModelError(
                f"{where}: option {key!r} is not supported. Supported options of {class_name}: "
                f"{', '.join(sorted(options + nested)) or 'none'}."
            )
    if class_name in ("GRU", "GRUCell") and "reset_after" not in config:
        # Keras <= 2.1 wrote no reset_after and computed reset_after=False; every later
        # version writes the key (Keras 3's default, True, never goes unwritten).
        kwargs["reset_after"] = False
    if nested:
        first = nested[0]
        if first not in kwargs:
            raise UnsupportedModelError(f"{where}: the config has no {first!r}.")
        layer = cls(kwargs.pop(first), **kwargs)
    else:
        try:
            layer = cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise UnsupportedModelError(
                f"{where}: the config cannot build the layer: {e}") from None
    if training_only:
        layer._training_only = training_only
    return layer



def _read_rule(key, value, where):
    """A file's regularizer or constraint as an object unrolled trains with, or None when
    unrolled does not implement it (then it is kept and ``fit`` refuses the model)."""
    if isinstance(value, dict):
        check_not_code(value, f"{where} {key}")
    module = regularizers if key.endswith("_regularizer") else constraints
    try:
        return module.get(value)
    except (NotImplementedError, ValueError):
        return None


# Regularizers and constraints change training only, never the outputs: a file's that
# unrolled does not implement (OrthogonalRegularizer, an activity regularizer on a cell) are
# kept (and written back), and ``fit`` refuses a model holding them.
TRAINING_ONLY = {"L1", "L2", "L1L2", "OrthogonalRegularizer", "MaxNorm", "NonNeg", "UnitNorm",
                 "MinMaxNorm", "l1", "l2", "l1_l2", "max_norm", "non_neg", "unit_norm",
                 "min_max_norm", "orthogonal_regularizer"}


def _read_training_only(key, value, where):
    name = value if isinstance(value, str) else None
    if name is None:
        check_not_code(value, f"{where} {key}")
        name = value["class_name"]
    if name not in TRAINING_ONLY:
        known = ", ".join(sorted(TRAINING_ONLY))
        raise UnsupportedModelError(f"{where}: {key} {name!r} is not one of Keras's built-in "
                                    f"regularizers and constraints ({known}).")
    return value


def input_layer_from_config(entry, where="InputLayer"):
    """An ``InputLayer`` from a Keras 3 or tf.keras 2 config (batch_shape or batch_input_shape)."""
    check_not_code(entry, where)
    config = dict(entry.get("config") or {})
    shape = config.pop("batch_shape", None) or config.pop("batch_input_shape", None)
    config.pop("batch_shape", None)
    config.pop("batch_input_shape", None)
    if shape is None and config.get("shape") is not None:
        shape = [config.pop("batch_size", None)] + list(config.pop("shape"))
    if shape is None:
        raise UnsupportedModelError(f"{where}: the InputLayer has no batch_shape.")
    dtype = config.pop("dtype", None) or "float32"
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", "float32")
    name = config.pop("name", None)
    for key, value in config.items():
        if key != "shape" and not _check_neutral(key, value, where, "InputLayer"):
            raise UnsupportedModelError(f"{where}: option {key!r} of InputLayer is not supported.")
    if np.dtype(dtype).kind not in "biuf":
        raise UnsupportedModelError(f"{where}: input dtype {dtype!r} is not supported.")
    return InputLayer(batch_shape=tuple(shape), dtype=dtype, name=name)
