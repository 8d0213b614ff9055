"""Layer configs as Keras 3 writes them, read and written through one table.

``LAYERS`` lists every class that can be read or written: its ``unrolled`` class, the
snake-case name Keras uses for it in weight paths, and the options (constructor arguments)
that travel in its config. An option's value is converted by the kind its name implies:
``*activation`` ↔ a name such as ``"tanh"``, ``*_initializer`` ↔ a Keras initializer dict,
tuples ↔ lists. Options live on the layer or, for recurrent layers, on its cell.

``"hard_sigmoid"`` names two formulas: Keras 3's ``clip(x / 6 + 0.5, 0, 1)`` and, in files
Keras 1 or 2 (tf.keras 2 included) wrote, ``clip(0.2 x + 0.5, 0, 1)``, unrolled's
``"hard_sigmoid_keras2"``. The loaders say which one the file means (``hard_sigmoid_for``,
from its ``keras_version``); configs unrolled writes name the Keras 2 one
``"hard_sigmoid_keras2"``, except legacy ``.h5`` files marked as Keras 2 (``keras_format``).

Reading is strict: a key that is neither a listed option, a key that must hold its
neutral value (``NEUTRAL``: regularizers and constraints ``None``, ``sparse`` false, …) nor
a key without effect on the numbers (``IGNORED``) raises ``UnsupportedModelError`` naming
it. ``Lambda`` layers and custom objects raise ``UnsafeModelError``.
"""
import re

import numpy as np

from .. import activations, constraints, initializers, regularizers
from ..layers import (RNN, Activation, Add, Average, Bidirectional, Concatenate, Dense, Dot,
                      Dropout, Embedding, Flatten, InputLayer, Masking, Maximum, Minimum,
                      Multiply, Permute, RepeatVector, Reshape, StackedRNNCells, Subtract,
                      TimeDistributed)
from ..layers import COMPANION_MODULES
from ..layers.recurrent import CELL_RULES
from ..layers import registry
from ..layers.registry import CELL_TYPES
from . import custom_objects
from ..io.safety import UnsafeModelError, UnsupportedModelError

RNN_FLAGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
             "zero_output_for_mask")

# class name: (unrolled class, Keras snake-case name, options in the config). The recurrent
# layers and their cells come from the cell registry (``layers.registry``).
LAYERS = {
    "InputLayer": (InputLayer, "input_layer", ()),
    "Dense": (Dense, "dense", ("units", "activation", "use_bias", "kernel_initializer",
                               "bias_initializer")),
    "Activation": (Activation, "activation", ("activation",)),
    "Flatten": (Flatten, "flatten", ()),
    "RNN": (RNN, "rnn", RNN_FLAGS),                                   # + "cell"
    "StackedRNNCells": (StackedRNNCells, "stacked_rnn_cells", ()),    # + "cells"
    "Bidirectional": (Bidirectional, "bidirectional", ("merge_mode",)),  # + "layer", "backward_layer"
    "TimeDistributed": (TimeDistributed, "time_distributed", ()),     # + "layer"
    "Embedding": (Embedding, "embedding", ("input_dim", "output_dim", "embeddings_initializer",
                                           "mask_zero")),
    "Masking": (Masking, "masking", ("mask_value",)),
    "Dropout": (Dropout, "dropout", ("rate", "noise_shape", "seed")),
    "RepeatVector": (RepeatVector, "repeat_vector", ("n",)),
    "Reshape": (Reshape, "reshape", ("target_shape",)),
    "Permute": (Permute, "permute", ("dims",)),
    "Concatenate": (Concatenate, "concatenate", ("axis",)),
    "Add": (Add, "add", ()),
    "Multiply": (Multiply, "multiply", ()),
    "Average": (Average, "average", ()),
    "Subtract": (Subtract, "subtract", ()),
    "Maximum": (Maximum, "maximum", ()),
    "Minimum": (Minimum, "minimum", ()),
    "Dot": (Dot, "dot", ("axes", "normalize")),
}


for _module in COMPANION_MODULES:                    # convolution, pooling, normalization, ...
    LAYERS.update(_module.KERAS_LAYERS)


def _add_cell_type(t):
    """The layer and cell classes of a cell type (``layers.registry``), built in or
    registered later."""
    LAYERS[t.name] = (t.layer, t.snake, RNN_FLAGS + t.options)
    LAYERS[t.cell_name] = (t.cell, t.cell_snake, t.options)


def _remove_cell_type(t):
    LAYERS.pop(t.name, None)
    LAYERS.pop(t.cell_name, None)


registry.on_register(_add_cell_type, _remove_cell_type)
NESTED = {"RNN": ("cell",), "StackedRNNCells": ("cells",), "TimeDistributed": ("layer",),
          "Bidirectional": ("layer", "backward_layer")}

# Keys that must hold the value that makes them irrelevant (else: unsupported option).
NEUTRAL = {"sparse": (False,), "ragged": (False,), "optional": (False,), "time_major": (False,),
           "data_format": ("channels_last", None), "quantization_config": (None,),
           "lora_rank": (None,), "activity_regularizer": (None,)}
NEUTRAL_SUFFIXES = ("_regularizer", "_constraint")
# Keys without effect on the computed numbers. ``batch_input_shape``/``batch_shape`` on a
# layer: Keras 2 used them only to make the Input of a Sequential's first layer (which
# ``graph._sequential`` reads before the layer is built); elsewhere (an Embedding inside a
# functional model) the layer takes the shape of the tensor it is called on, as in Keras.
IGNORED = {"implementation", "use_cudnn", "input_length", "lora_alpha", "batch_size",
           "build_config", "module", "registered_name", "shared_object_id", "input_dtype",
           "batch_input_shape", "batch_shape"}
FLOAT_DTYPES = ("float32", "float64")

# Keras initializer class: the config keys our initializer takes (others must be None).
INITIALIZERS = {"Zeros": (), "Ones": (), "Constant": ("value",), "GlorotUniform": ("seed",),
                "GlorotNormal": ("seed",), "HeUniform": ("seed",), "HeNormal": ("seed",),
                "LecunNormal": ("seed",), "LecunUniform": ("seed",),
                "Orthogonal": ("gain", "seed"), "Identity": ("gain",),
                "RandomNormal": ("mean", "stddev", "seed"),
                "RandomUniform": ("minval", "maxval", "seed"),
                "TruncatedNormal": ("mean", "stddev", "seed"),
                "VarianceScaling": ("scale", "mode", "distribution", "seed")}
_INIT_ALIASES = {"zeros": "Zeros", "ones": "Ones", "glorot_uniform": "GlorotUniform",
                 "glorot_normal": "GlorotNormal", "he_uniform": "HeUniform",
                 "he_normal": "HeNormal", "lecun_normal": "LecunNormal",
                 "lecun_uniform": "LecunUniform", "orthogonal": "Orthogonal",
                 "identity": "Identity", "random_normal": "RandomNormal",
                 "random_uniform": "RandomUniform", "uniform": "RandomUniform",
                 "normal": "RandomNormal", "constant": "Constant",
                 "truncated_normal": "TruncatedNormal", "variance_scaling": "VarianceScaling",
                 # Keras 3.2-3.4 wrote these class names
                 "OrthogonalInitializer": "Orthogonal", "IdentityInitializer": "Identity"}
# Every name unrolled.activations gives layers, its aliases ("silu", "hard_swish") included.
ACTIVATIONS = activations.names()
KERAS2_HARD_SIGMOID = "hard_sigmoid_keras2"


def hard_sigmoid_for(keras_version, legacy):
    """The activation ``"hard_sigmoid"`` means in a file written by Keras ``keras_version``
    (the file's attribute: str, bytes or None when absent): Keras 3's ``"hard_sigmoid"`` from
    version 3 on, else ``"hard_sigmoid_keras2"``. Without a version, a legacy ``.h5`` is Keras
    2's (Keras 3 always writes one) and a ``.keras`` archive Keras 3's. None: the version
    cannot be read, so a file that uses ``"hard_sigmoid"`` is refused."""
    if keras_version is None:
        return KERAS2_HARD_SIGMOID if legacy else "hard_sigmoid"
    if isinstance(keras_version, bytes):
        keras_version = keras_version.decode("latin-1")
    if not isinstance(keras_version, str):
        return None
    m = re.match(r"\s*(\d+)(?:[.\s+-]|$)", keras_version)   # "2.2.4", "2.2.4-tf", "3.15.1"
    if m is None:
        return None
    return "hard_sigmoid" if int(m.group(1)) >= 3 else KERAS2_HARD_SIGMOID


def activation_users(config, name):
    """The names of the layers and cells in a (model or layer) config whose activation
    options equal ``name``, in config order."""
    found = []

    def visit(obj, owner):
        if isinstance(obj, dict):
            owner = obj["name"] if isinstance(obj.get("name"), str) and "class_name" not in obj \
                else owner
            for key, value in obj.items():
                if key.endswith("activation") and value == name and owner not in found:
                    found.append(owner)
                visit(value, owner)
        elif isinstance(obj, list):
            for value in obj:
                visit(value, owner)

    visit(config, None)
    return found


def rename_activation(config, old, new):
    """A copy of ``config`` whose activation options ``old`` read ``new``."""
    if isinstance(config, dict):
        return {k: new if k.endswith("activation") and v == old else rename_activation(v, old, new)
                for k, v in config.items()}
    if isinstance(config, list):
        return [rename_activation(v, old, new) for v in config]
    return config


def supported_classes():
    return sorted(LAYERS)


def snake_name(class_name):
    return LAYERS[class_name][1]


# --- writing --------------------------------------------------------------------------------
def dtype_policy(name):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def serialize_initializer(init):
    name = type(init).__name__
    if name not in INITIALIZERS:
        raise UnsupportedModelError(f"Initializer {name} has no Keras equivalent; supported: "
                                    f"{sorted(INITIALIZERS)}.")
    return {"module": "keras.initializers", "class_name": name, "config": init.get_config(),
            "registered_name": None}


def _to_json(key, value):
    if key.endswith("activation"):
        return value.name
    if key.endswith("_initializer"):
        return serialize_initializer(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _option(obj, key):
    """An option's value, from the object or (recurrent layers) from its cell."""
    if key in ("dropout", "recurrent_dropout", "seed") or not hasattr(obj, key):
        holder = getattr(obj, "cell", obj)
        if hasattr(holder, key):
            return getattr(holder, key)
    return getattr(obj, key)


def layer_config(layer):
    """``{"module", "class_name", "config", "registered_name"}`` for an unrolled layer or cell."""
    if custom_objects.is_custom(layer):                      # written the Keras way
        return custom_objects.entry(layer, dtype_policy)
    class_name = type(layer).__name__
    if class_name not in LAYERS or not isinstance(layer, LAYERS[class_name][0]):
        raise UnsupportedModelError(
            f"Layer class {class_name} cannot be saved in Keras format; supported: "
            f"{', '.join(supported_classes())}."
        )
    if class_name == "InputLayer":
        config = {"batch_shape": list(layer.batch_shape), "dtype": layer.dtype,
                  "sparse": False, "ragged": False, "name": layer.name}
    else:
        config = {"name": layer.name, "trainable": layer.trainable,
                  "dtype": dtype_policy(layer.dtype)}
        for key in LAYERS[class_name][2]:
            config[key] = _to_json(key, _option(layer, key))
        for key in rule_keys(type(layer)):                   # regularizers, constraints
            rule = _option(layer, key)
            if rule is not None:
                config[key] = (regularizers.serialize(rule) if key.endswith("_regularizer")
                               else constraints.serialize(rule))
        activity = getattr(layer, "activity_regularizer", None)   # (any layer: base.py)
        if activity is not None:
            config["activity_regularizer"] = regularizers.serialize(activity)
    config.update(getattr(layer, "_training_only", {}))      # a file's others, back
    for key in getattr(type(layer), "keras_config_omits", ()):  # keys Keras's class refuses
        config.pop(key, None)
    if class_name == "RNN":
        config["cell"] = layer_config(layer.cell)
    elif class_name == "StackedRNNCells":
        config["cells"] = [layer_config(c) for c in layer.cells]
    elif class_name == "TimeDistributed":
        config["layer"] = layer_config(layer.layer)
    elif class_name == "Bidirectional":
        config["layer"] = layer_config(layer.forward_layer)
        config["backward_layer"] = layer_config(layer.backward_layer)
    return {"module": "keras.layers", "class_name": class_name, "config": config,
            "registered_name": None}


# --- reading --------------------------------------------------------------------------------
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
        value = {"class_name": _INIT_ALIASES.get(value, value), "config": {}}
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
    name = _INIT_ALIASES.get(value["class_name"], value["class_name"])
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


def rule_keys(cls):
    """The ``<weight>_regularizer``/``<weight>_constraint`` options a layer class takes
    (``Layer.weight_rules``; a recurrent layer's are its cell's)."""
    if any(cls is t.layer for t in CELL_TYPES):
        return CELL_RULES
    return tuple(f"{p}_{k}" for p in getattr(cls, "weight_rules", ())
                 for k in ("regularizer", "constraint"))


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
