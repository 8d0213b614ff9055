"""Custom layers and cells in model files: written as Keras writes them, read only through
classes the caller passes in code.

Writing: a layer or cell written the Keras way (``layers/custom.py``) is saved as Keras
saves one: ``{"module": its class's module, "class_name", "config": its get_config(),
"registered_name": the class name, or ``"package>Name"`` for a class registered with
``unrolled.saving.register_keras_serializable``}``, the dtype as a dtype policy, its weights in the
layer's (or cell's) ``vars`` group, in ``weights`` order. A layer that holds other layers
is refused (Keras nests their weights by attribute name, which unrolled does not write).

Reading: such an entry names a class, and a file never makes unrolled import anything.
``load_model(path, custom_objects={"Name": Class})`` (and ``model_from_json``) builds it
with ``Class.from_config(config)`` only when the caller passed that class in code, found
by the entry's ``registered_name`` or ``class_name``; otherwise the entry is refused
(``UnsafeModelError``), as before. ``scope`` holds the classes while a loader runs.
"""
import contextlib
import sys

from ..layers.base import Layer, _snake_case
from ..io.safety import UnsafeModelError, UnsupportedModelError

_ACTIVE = None                    # {name: class} while a loader with custom_objects runs


@contextlib.contextmanager
def scope(custom_objects, what):
    """The classes a loader may build, by name, while it runs. Each must be a class
    derived from ``unrolled.layers.Layer`` (a layer or a cell written the Keras way)."""
    global _ACTIVE
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"{what}: custom_objects must be a dict of name: class; received "
                        f"{type(custom_objects).__name__}.")
    for name, cls in (custom_objects or {}).items():
        if not (isinstance(name, str) and isinstance(cls, type) and issubclass(cls, Layer)):
            raise NotImplementedError(
                f"{what}: custom_objects[{name!r}] must be a layer class (a subclass of "
                f"unrolled.layers.Layer, passed in code); received {cls!r}. unrolled builds "
                "custom layers and cells only; functions, losses and other objects are not "
                "read from files.")
    outer, _ACTIVE = _ACTIVE, dict(custom_objects or {})
    try:
        yield
    finally:
        _ACTIVE = outer


def lookup(entry):
    """The class the caller passed for a file's ``{"class_name", "registered_name"}``
    entry, or None: from ``custom_objects``, else, for an entry that is not Keras's own,
    a layer class registered in code with ``unrolled.saving.register_keras_serializable``
    (or in its ``custom_object_scope``)."""
    if not isinstance(entry, dict):
        return None
    keys = [k for k in (entry.get("registered_name"), entry.get("class_name"))
            if isinstance(k, str)]
    for key in keys:
        if _ACTIVE and key in _ACTIVE:
            return _ACTIVE[key]
    module = entry.get("module")
    registry = sys.modules.get("unrolled.saving")           # only if a script imported it
    if registry is None or not isinstance(module, str) or module.split(".")[0] == "keras":
        return None
    for key in keys:
        found = registry.get_registered_object(key)
        if isinstance(found, type) and issubclass(found, Layer):
            return found
    return None


def refusal_hint():
    return (" A custom layer or cell is built only from a class passed in code: "
            "load_model(path, custom_objects={'ClassName': ClassName}).")


def is_custom(obj):
    from ..layers.recurrent.custom_cells import KerasCells
    return getattr(type(obj), "_keras_way", False) or isinstance(obj, KerasCells)


def entry(layer, dtype_policy):
    """The file entry of a Keras-way layer (or of the user cell inside ``RNN(cell)``)."""
    from ..layers.recurrent.custom_cells import KerasCells
    if isinstance(layer, KerasCells):
        if layer._stacked:
            raise UnsupportedModelError(
                f"Cannot save the cells of '{layer.name}': a list of cells written the Keras "
                "way is not written to files by unrolled; save a model with one such cell per "
                "RNN layer.")
        layer = layer._cells[0]
    cls = type(layer)
    if layer._sublayers():
        raise UnsupportedModelError(
            f"Cannot save layer '{layer.name}' ({cls.__name__}): it holds other layers, whose "
            "weights Keras's format nests by attribute name, which unrolled does not write.")
    config = dict(layer.get_config())
    _check_config(cls, config)
    config["dtype"] = dtype_policy(layer.dtype)
    registry = sys.modules.get("unrolled.saving")           # "package>Name" if registered
    registered = registry.get_registered_name(cls) if registry is not None else cls.__name__
    return {"module": cls.__module__, "class_name": cls.__name__, "config": config,
            "registered_name": registered}


def _check_config(cls, config):
    """Keras's rule: a class whose ``__init__`` takes arguments beyond the base layer's must
    write them in ``get_config``, else the file could not build it again."""
    import inspect
    params = inspect.signature(cls.__init__).parameters.values()
    missing = [p.name for p in params if p.name != "self" and p.default is p.empty
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in config]
    if missing:
        raise UnsupportedModelError(
            f"Layer {cls.__name__} has arguments {missing} in `__init__()` and therefore must "
            "override `get_config()` (returning them beside super().get_config()) to be saved "
            "(the automatic config keeps plain values only: str, int, float, bool, None).")


def build(cls, file_entry, where, read_dtype):
    """A layer of the caller's ``cls`` from a file entry's config (``cls.from_config``)."""
    config = dict(file_entry.get("config") or {})
    if "dtype" in config:
        dtype = read_dtype(config["dtype"], where)
        if dtype is None:
            config.pop("dtype")
        else:
            config["dtype"] = dtype
    try:
        layer = cls.from_config(config)
    except (TypeError, ValueError, KeyError) as e:
        raise UnsupportedModelError(f"{where}: {cls.__name__}.from_config could not build the "
                                    f"layer from the file's config: {e}") from None
    if not isinstance(layer, Layer):
        raise UnsafeModelError(f"{where}: {cls.__name__}.from_config returned "
                               f"{type(layer).__name__}, not a layer.")
    return layer


def snake(class_name):
    """Keras's snake-case name of a custom class (its weights group)."""
    return _snake_case(class_name)
