"""``keras.saving``: model files, the registry of user classes, and object configs.

``load_model``, ``save_model``, ``load_weights``, ``save_weights``
    Keras 3's signatures over ``model_files`` (``.keras``, legacy ``.h5``,
    ``.unrolled.npz``). Every argument is honoured or refused by name.

``register_keras_serializable(package="Custom", name=None)``
    registers a user's class (which must have ``get_config``) or function under
    ``"package>name"``; ``get_registered_object``, ``get_registered_name``,
    ``get_custom_objects`` and ``custom_object_scope`` read the registry as Keras's do.
    A file or config can only *name* an object: it is looked up among the objects the user
    registered or passed (``custom_objects``) and unrolled's own classes. Nothing a file
    names is ever imported, and ``safe_mode=False`` (Keras's switch for running a file's
    lambdas) is refused.

``serialize_keras_object(obj)``/``deserialize_keras_object(config)``
    Keras 3's ``{"module", "class_name", "config", "registered_name"}`` dicts for
    unrolled's layers, models, initializers, regularizers, constraints, activations,
    optimizers (and learning-rate schedules), losses and metrics, for registered objects
    (``from_config`` or ``cls(**config)``), and for plain values (lists, tuples, dicts,
    NumPy arrays as ``"__numpy__"``). The dicts are Keras's: Keras reads what this writes
    and the other way round, for the classes unrolled has.
"""
import inspect
import os

GLOBAL_CUSTOM_OBJECTS = {}      # "package>name" -> class or function
GLOBAL_CUSTOM_NAMES = {}        # class or function -> "package>name"
_SCOPE = {}                     # the innermost custom_object_scope's objects

_SAVING_NAMES = ("load_model, save_model, load_weights, save_weights, "
                 "register_keras_serializable, get_registered_object, get_registered_name, "
                 "get_custom_objects, custom_object_scope, CustomObjectScope, "
                 "serialize_keras_object, deserialize_keras_object")


# ---- the registry ---------------------------------------------------------------------------
def register_keras_serializable(package="Custom", name=None):
    """A decorator registering a class or function under ``"package>name"`` (``name``: the
    object's own name when None). A class needs ``get_config``."""
    if ">" in str(package):
        raise ValueError("Invalid package name: the `package` argument cannot contain '>'. "
                         f"Received: package={package}")

    def decorator(arg):
        key = f"{package}>{name if name is not None else arg.__name__}"
        if inspect.isclass(arg) and not hasattr(arg, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() method.")
        GLOBAL_CUSTOM_OBJECTS[key] = arg
        GLOBAL_CUSTOM_NAMES[arg] = key
        return arg
    return decorator


def get_custom_objects():
    """The registry itself (a dict ``"package>name" -> object``); entries added to it by
    hand are found by name as registered ones are."""
    return GLOBAL_CUSTOM_OBJECTS


def get_registered_name(obj):
    """``"package>name"`` for a registered object, else its ``__name__``."""
    return GLOBAL_CUSTOM_NAMES.get(obj, obj.__name__)


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object registered or passed under ``name``, or None. Looked up, in Keras's
    order, in the active ``custom_object_scope``, the registry, ``custom_objects``, then
    ``module_objects``."""
    for table in (_SCOPE, GLOBAL_CUSTOM_OBJECTS, custom_objects or {}, module_objects or {}):
        if name in table:
            return table[name]
    return None


class CustomObjectScope:
    """``with custom_object_scope({"MyLayer": MyLayer}):``: names found by
    ``get_registered_object`` (and the loaders) inside the block only."""

    def __init__(self, custom_objects):
        self.custom_objects = dict(custom_objects or {})
        self._outer = None

    def __enter__(self):
        global _SCOPE
        self._outer, _SCOPE = _SCOPE, dict(self.custom_objects)
        return self

    def __exit__(self, *exc):
        global _SCOPE
        _SCOPE = dict(self._outer)
        return False


custom_object_scope = CustomObjectScope


def _reset_scope():
    """``clear_session()``: Keras forgets the active scope's objects too."""
    global _SCOPE
    _SCOPE = {}


# ---- files ----------------------------------------------------------------------------------
def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a ``.keras``, legacy ``.h5`` or ``.unrolled.npz`` file
    (``unrolled.models.load_model``)."""
    from . import model_files
    return model_files.load_model(filepath, custom_objects=custom_objects, compile=compile,
                                  safe_mode=safe_mode)


def _may_write(filepath, overwrite):
    """Keras's ``overwrite=False``: ask on the terminal before replacing a file."""
    if overwrite or not os.path.exists(os.fspath(filepath)):
        return True
    while True:
        answer = input(f"[WARNING] {os.fspath(filepath)} already exists - overwrite? "
                       "[y/n]").strip().lower()
        if answer in ("y", "n"):
            return answer == "y"
        print('Please answer "y" or "n".')


def save_model(model, filepath, overwrite=True, zipped=None, **kwargs):
    """Save ``model`` to ``.keras`` (Keras 3 archive), ``.h5`` (legacy) or
    ``.unrolled.npz``. ``include_optimizer`` (default True): a compiled model's file holds
    its compile arguments and optimizer state (False: weights and config alone; Keras 3
    honours it for ``.h5`` only, unrolled in every format); ``zipped=False`` (an unzipped
    directory) is not written by unrolled."""
    from . import model_files
    path = os.fspath(filepath)
    include_optimizer = kwargs.pop("include_optimizer", True)
    save_format = kwargs.pop("save_format", False)
    if save_format and not path.endswith((".h5", ".hdf5", ".keras")):
        raise ValueError("The `save_format` argument is deprecated in Keras 3. Please remove "
                         "this argument and pass a file path with either `.keras` or `.h5` "
                         f"extension.Received: save_format={save_format}")
    if kwargs:
        raise ValueError(f"The following argument(s) are not supported: {list(kwargs)}")
    if zipped is False:
        raise NotImplementedError("save_model(zipped=False) is not implemented in unrolled: "
                                  "it writes zipped .keras archives only.")
    if _may_write(path, overwrite):
        model_files.save_model(model, filepath, include_optimizer)


def load_weights(model, filepath, skip_mismatch=False, **kwargs):
    """``model.load_weights(filepath, skip_mismatch, **kwargs)``."""
    model.load_weights(filepath, skip_mismatch=skip_mismatch, **kwargs)


def save_weights(model, filepath, overwrite=True, max_shard_size=None, **kwargs):
    """``model.save_weights(filepath)``; ``max_shard_size`` (sharded files) is refused."""
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {kwargs}")
    if max_shard_size is not None:
        raise NotImplementedError("save_weights(max_shard_size=...) is not implemented in "
                                  "unrolled: it writes one weights file.")
    if _may_write(filepath, overwrite):
        model.save_weights(filepath)


# ---- object configs -------------------------------------------------------------------------
def serialize_keras_object(obj):
    """Keras 3's config of ``obj`` (see the module docstring for what is covered)."""
    from .objects import serialize
    return serialize(obj)


def deserialize_keras_object(config, custom_objects=None, safe_mode=True, **kwargs):
    """The object a Keras 3 config describes: one of unrolled's classes by ``module`` and
    ``class_name``, or an object registered or passed in ``custom_objects`` (built with its
    ``from_config``). Nothing the config names is imported."""
    from .objects import deserialize
    module_objects = kwargs.pop("module_objects", None)
    if kwargs:
        raise ValueError(f"deserialize_keras_object: arguments not supported: {list(kwargs)}")
    if safe_mode is not True:
        raise NotImplementedError("deserialize_keras_object(safe_mode=False) is not supported: "
                                  "unrolled never runs code from a config.")
    objects = dict(module_objects or {})
    objects.update(custom_objects or {})
    return deserialize(config, objects)


def __getattr__(name):
    raise AttributeError(f"module 'unrolled.saving' has no attribute '{name}'. unrolled.saving "
                         f"offers {_SAVING_NAMES}.")
