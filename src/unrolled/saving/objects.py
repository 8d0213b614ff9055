"""The body of ``unrolled.saving.serialize_keras_object``/``deserialize_keras_object``.

A config is ``{"module", "class_name", "config", "registered_name"}`` as Keras 3 writes
it. Reading resolves, in Keras's order: ``registered_name`` among the objects the user
registered or passed; then, for a Keras module (``keras.layers``, ``keras.optimizers``...),
unrolled's class of that name; then ``class_name`` among the user's objects. A name found
nowhere is an error: no module a config names is imported.
"""
import numpy as np

_PLAIN = (str, int, float, bool)


def _keras_dict(module, obj, config):
    return {"module": module, "class_name": type(obj).__name__, "config": config,
            "registered_name": None}


def _is_library(obj, package):
    return type(obj).__module__.startswith(f"unrolled.{package}")


def serialize(obj):
    from unrolled import activations, constraints, initializers, regularizers
    from unrolled.layers.base import Layer
    from unrolled.losses.base import Loss, LossFunctionWrapper
    from unrolled.metrics.base import MeanMetricWrapper, Metric
    from unrolled.optimizers.base import Optimizer
    from unrolled.optimizers.schedules import LearningRateSchedule
    from unrolled.saving import GLOBAL_CUSTOM_NAMES

    if obj is None or isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, (list, tuple)):
        items = [serialize(x) for x in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        return {k: serialize(v) for k, v in obj.items()}
    if isinstance(obj, bytes):
        return {"class_name": "__bytes__", "config": {"value": obj.decode("utf-8")}}
    if isinstance(obj, (np.ndarray, np.generic)):
        if np.ndim(obj) > 0:
            return {"class_name": "__numpy__",
                    "config": {"value": obj.tolist(), "dtype": obj.dtype.name}}
        return obj.item()
    registered = GLOBAL_CUSTOM_NAMES.get(obj) if callable(obj) and not isinstance(obj, type) \
        and not hasattr(obj, "get_config") else None
    if registered is not None:                                 # a registered function
        return {"module": obj.__module__, "class_name": "function", "config": registered,
                "registered_name": "function"}
    registered = GLOBAL_CUSTOM_NAMES.get(type(obj))
    if registered is not None:                                 # an instance of a registered class
        return {"module": type(obj).__module__, "class_name": type(obj).__name__,
                "config": serialize(obj.get_config()), "registered_name": registered}
    if isinstance(obj, activations.Activation):
        return {"module": "builtins", "class_name": "function", "config": obj.name,
                "registered_name": "function"}
    if isinstance(obj, Layer) and _is_library(obj, ""):
        from unrolled.models import Model
        if isinstance(obj, Model):
            from unrolled.saving.graph import model_config
            return model_config(obj)
        from unrolled.saving.config_writer import layer_config
        return layer_config(obj)
    if isinstance(obj, initializers.Initializer):
        from unrolled.saving.config_writer import serialize_initializer
        return serialize_initializer(obj)
    if isinstance(obj, regularizers.Regularizer) and _is_library(obj, "regularizers"):
        return regularizers.serialize(obj)
    if isinstance(obj, constraints.Constraint) and _is_library(obj, "constraints"):
        return constraints.serialize(obj)
    if isinstance(obj, Optimizer) and _is_library(obj, "optimizers"):
        config = obj.get_config()
        if isinstance(config.get("learning_rate"), LearningRateSchedule):
            config["learning_rate"] = serialize(config["learning_rate"])
        return _keras_dict("keras.optimizers", obj, config)
    if isinstance(obj, LearningRateSchedule) and _is_library(obj, "optimizers"):
        return _keras_dict("keras.optimizers.schedules", obj, obj.get_config())
    if (isinstance(obj, Loss) and _is_library(obj, "losses")
            and type(obj) is not LossFunctionWrapper):           # (a wrapped function)
        return _keras_dict("keras.losses", obj, obj.get_config())
    if (isinstance(obj, Metric) and _is_library(obj, "metrics")
            and type(obj) is not MeanMetricWrapper):
        return _keras_dict("keras.metrics", obj, obj.get_config())
    if hasattr(obj, "get_config") and not _is_library(obj, ""):   # a user's class, as Keras
        return {"module": type(obj).__module__, "class_name": type(obj).__name__,
                "config": serialize(obj.get_config()), "registered_name": type(obj).__name__}
    raise TypeError(
        f"serialize_keras_object: cannot serialize {obj!r} ({type(obj).__name__}). unrolled "
        "writes configs of its own layers, models, initializers, regularizers, constraints, "
        "activations, optimizers, losses and metrics, and of user classes with a "
        "get_config() method (registered with unrolled.saving.register_keras_serializable "
        "to be read back by name).")


def _from_registered(cls, config, where):
    if isinstance(cls, type):
        if hasattr(cls, "from_config"):
            return cls.from_config(config)
        raise TypeError(f"Unable to reconstruct an instance of '{where}' because the class is "
                        "missing a `from_config()` method.")
    return cls                                    # a function: the object itself


def _built_in(entry, module, class_name, inner):
    """unrolled's object for a Keras module's class name, or None if the module is not one
    of Keras's."""
    from unrolled import activations, constraints, regularizers
    where = f"deserialize_keras_object({class_name!r})"
    if class_name == "function" and module in ("builtins", "keras.activations",
                                               "keras.src.activations.activations"):
        return activations.get(inner)
    if module == "keras.layers":
        from unrolled.saving.config_reader import layer_from_config
        layer = layer_from_config(entry, where)
        shape = (entry.get("build_config") or {}).get("input_shape")
        if shape is not None:                     # Keras builds the layer it reads
            nested = isinstance(shape[0], (list, tuple)) if len(shape) else False
            layer._maybe_build([tuple(s) for s in shape] if nested else tuple(shape))
        return layer
    if (module == "keras" and class_name == "Sequential") or class_name == "Functional":
        from unrolled.saving.graph import model_from_config
        return model_from_config(entry, where)
    if module == "keras.initializers":
        from unrolled.saving.config_reader import read_initializer
        return read_initializer(entry, where)
    if module == "keras.regularizers":
        return regularizers.get(entry)
    if module == "keras.constraints":
        return constraints.get(entry)
    from unrolled import losses, metrics, optimizers
    from unrolled.models.compile_config import _build, _optimizer_config
    from unrolled.optimizers import schedules
    table = {"keras.optimizers": (optimizers, _optimizer_config),
             "keras.optimizers.schedules": (schedules, None), "keras.losses": (losses, None),
             "keras.metrics": (metrics, None)}
    if module in table:
        package, adjust = table[module]
        if module == "keras.losses":
            entry = _without_default_axis(entry, getattr(losses, class_name, None))
        return _build(entry, package, where, adjust)
    return None


def _without_default_axis(entry, cls):
    """Keras 3 writes ``axis: -1`` in every crossentropy's config; unrolled's losses
    reduce over the last axis without taking the argument, so -1 (the same) is dropped and
    any other axis is left for ``_build`` to refuse by name."""
    import inspect
    config = entry.get("config") or {}
    if (isinstance(cls, type) and config.get("axis") == -1
            and "axis" not in inspect.signature(cls.__init__).parameters):
        entry = {**entry, "config": {k: v for k, v in config.items() if k != "axis"}}
    return entry


def deserialize(config, custom_objects):
    from unrolled.saving import get_registered_object

    if config is None or isinstance(config, (int, float, bool)):
        return config
    if isinstance(config, str):
        found = get_registered_object(config, custom_objects)
        return config if found is None else found
    if isinstance(config, (list, tuple)):                      # a list, as Keras reads both
        return [deserialize(x, custom_objects) for x in config]
    if not isinstance(config, dict):
        raise TypeError(f"deserialize_keras_object: could not parse config: {config!r}")
    if "class_name" not in config or "config" not in config:
        return {k: deserialize(v, custom_objects) for k, v in config.items()}
    class_name, inner = config["class_name"], config["config"]
    module, registered = config.get("module"), config.get("registered_name")
    if class_name == "__numpy__":
        return np.array(inner["value"], dtype=inner["dtype"])
    if class_name == "__bytes__":
        return inner["value"].encode("utf-8")
    if class_name == "__lambda__":
        raise ValueError("deserialize_keras_object: the config holds a Python lambda, which "
                         "unrolled never runs (Keras runs it only with safe_mode=False).")
    if class_name == "function" and isinstance(inner, str):
        found = get_registered_object(inner, custom_objects)
        if found is not None:
            return found
    elif registered not in (None, "function", "Functional"):
        found = get_registered_object(registered, custom_objects)
        if found is not None:
            return _from_registered(found, inner, class_name)
    if isinstance(module, str) and (module == "builtins" or module.split(".")[0] == "keras"):
        obj = _built_in(config, module, class_name, inner)
        if obj is not None:
            return obj
    found = get_registered_object(class_name, custom_objects)
    if found is not None:
        return _from_registered(found, inner, class_name)
    raise TypeError(
        f"Could not locate class '{class_name}' (module {module!r}, registered name "
        f"{registered!r}). unrolled builds its own classes by their Keras names and the "
        "classes registered with unrolled.saving.register_keras_serializable or passed in "
        "custom_objects; it imports nothing a config names.")
