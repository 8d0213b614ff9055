"""An unrolled layer's config as Keras 3 writes it: ``layer_config``.

Each option listed for the layer's class in ``serialize.LAYERS`` is written under its name,
its value converted by the kind the name implies (an activation by its name, an initializer
as a Keras initializer dict, tuples as lists, NumPy scalars as Python numbers), taken from the
layer or, for recurrent layers, its cell. Regularizers and constraints the layer holds are
written as Keras's; nested layers (``RNN``'s cell, ``Bidirectional``'s two layers, ...) as
their own configs. Classes written the Keras way (``custom_objects``) write their own.
"""
import numpy as np

from .. import constraints, regularizers
from . import custom_objects
from ..io.safety import UnsupportedModelError
from .serialize import INITIALIZERS, LAYERS, rule_keys, supported_classes


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
