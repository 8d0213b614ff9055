"""``load_model``, ``save_model`` and file-based weights, dispatched on the file name.

=====================  ============================================  ===================
file name              what it holds                                 needs
=====================  ============================================  ===================
``*.keras``            Keras 3 archive: config + weights + metadata  h5py
                       (+ compile_config, optimizer variables)
``*.h5``, ``*.hdf5``   legacy Keras/tf.keras model (config+weights)  h5py
                       (+ training_config, optimizer_weights)
``*.unrolled.npz``     unrolled's native model: config + weights     NumPy only
                       (+ __compile__, optimizer/vars)
``*.weights.h5``       weights only, Keras 3 layout                  h5py
``*.weights.npz``      weights only, unrolled's native layout        NumPy only
=====================  ============================================  ===================

Files are data, never code: see ``unrolled.io.safety`` for the checks and the errors
(``FileNotFoundError``, ``ModelFileError``, ``UnsafeModelError``, ``UnsupportedModelError``).
"""
import os


def _suffix(path):
    name = os.fspath(path).lower()
    for suffix in (".unrolled.npz", ".weights.h5", ".weights.npz", ".keras", ".hdf5", ".h5",
                   ".npz"):
        if name.endswith(suffix):
            return suffix
    return os.path.splitext(name)[1]


def save_model(model, filepath, include_optimizer=True):
    """Save config and weights of ``model`` to ``filepath`` (.keras, .h5 or .unrolled.npz)
    and, for a compiled model with ``include_optimizer``, its training state (compile
    arguments and optimizer variables), which ``load_model(compile=True)`` restores. Keras
    3 honours ``include_optimizer=False`` in ``.h5`` files only (its ``.keras`` files keep
    the optimizer whatever it says); unrolled honours it in all three formats."""
    from . import keras_format, legacy_h5, npz_model

    kind = _suffix(filepath)
    include_optimizer = bool(include_optimizer)
    if kind == ".keras":
        keras_format.save_keras(model, filepath, include_optimizer)
    elif kind in (".h5", ".hdf5"):
        legacy_h5.save_legacy_h5(model, filepath, include_optimizer)
    elif kind == ".unrolled.npz":
        npz_model.save_npz_model(model, filepath, include_optimizer)
    else:
        raise ValueError(
            f"save_model: cannot tell the format of {os.fspath(filepath)!r}. Use a name ending "
            "in .keras (Keras 3), .h5 (legacy Keras) or .unrolled.npz (native, NumPy only); "
            "for weights alone use save_weights with .weights.h5 or .weights.npz."
        )


def _reader_boundary(read):
    """Only the documented errors leave a file reader.

    The format checks raise ``ModelFileError`` with a precise message. A corrupted file can
    still trip something deeper (h5py on a mangled B-tree, a config with a wrong type); that
    is turned into a ``ModelFileError`` naming the original error, instead of escaping as an
    ``OverflowError`` or ``TypeError`` the caller could not expect. (Found by tests/unit/io/test_fuzz.py.)
    """
    import functools
    import zipfile
    import zlib

    @functools.wraps(read)
    def guarded(*args, **kwargs):
        from ..io.safety import ModelFileError
        try:
            return read(*args, **kwargs)
        except (ModelFileError, FileNotFoundError, ImportError):
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
                OSError, RuntimeError, SystemError, UnicodeError, MemoryError, RecursionError,
                EOFError, zipfile.BadZipFile, zlib.error) as e:
            path = args[-1] if args else kwargs.get("filepath")
            raise ModelFileError(
                f"{os.fspath(path)!r} could not be read: {type(e).__name__}: {e}. The file may be "
                "truncated or corrupted.") from e
    return guarded


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a ``.keras``, legacy ``.h5`` or ``.unrolled.npz`` file. ``compile``
    (Keras's default, True): the file's compile state (a ``.keras`` file's compile_config,
    a legacy ``.h5`` file's training_config, an ``.unrolled.npz`` file's ``__compile__``)
    compiles the model and its optimizer state is restored; False leaves both out. Configs
    are data: a file never makes unrolled import code.
    ``custom_objects={"Name": Class}`` gives, in code, the classes of custom layers and cells
    written the Keras way (``saving.custom_objects``); ``safe_mode=False`` (allowing code from
    the file) is refused."""
    from . import custom_objects as custom
    if safe_mode is not True:
        raise NotImplementedError("load_model(safe_mode=False) is not supported: unrolled "
                                  "never runs code from a file.")
    with custom.scope(custom_objects, "load_model"):
        return _load_model(bool(compile), filepath)


@_reader_boundary
def _load_model(compile, filepath):
    from . import keras_format, legacy_h5, npz_model
    from ..io.safety import HDF5_MAGIC, ZIP_MAGIC, ModelFileError

    kind = _suffix(filepath)
    if kind == ".keras":
        return keras_format.load_keras(filepath, compile)
    if kind in (".h5", ".hdf5", ".weights.h5"):
        return legacy_h5.load_legacy_h5(filepath, compile)
    if kind in (".unrolled.npz", ".npz"):
        return npz_model.load_npz_model(filepath, compile)
    if not os.path.isfile(os.fspath(filepath)):
        raise FileNotFoundError(f"No such file: {os.fspath(filepath)!r}.")
    with open(filepath, "rb") as f:                          # unknown name: sniff the bytes
        head = f.read(8)
    if head.startswith(ZIP_MAGIC):
        try:
            return keras_format.load_keras(filepath, compile)
        except ModelFileError:
            return npz_model.load_npz_model(filepath, compile)
    if head.startswith(HDF5_MAGIC):
        return legacy_h5.load_legacy_h5(filepath, compile)
    raise ModelFileError(f"{os.fspath(filepath)!r} is not a model file: expected a .keras or "
                         f".unrolled.npz zip archive or an HDF5 .h5 file; it starts with {head!r}.")


def model_from_json(json_string, custom_objects=None):
    """A model (not its weights) from ``model.to_json()`` text of Keras 3, tf.keras or
    Keras 2, as ``keras.models.model_from_json``. ``"hard_sigmoid"`` means what the Keras
    version that wrote the text computed (its ``keras_version``; Keras 2's when the text has
    Keras 2's layout and no version). Configs are data: no code in them is run;
    ``custom_objects`` gives custom layer classes in code, as for ``load_model``."""
    from .graph import model_from_config
    from .keras_format import parse_json
    from ..io.safety import ModelFileError
    from .serialize import hard_sigmoid_for

    from . import custom_objects as custom
    config = parse_json(json_string, "the JSON text", "model_from_json")
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError("model_from_json: the JSON text is not a Keras model config "
                             "(no \"class_name\").")
    version = config.get("keras_version")
    with custom.scope(custom_objects, "model_from_json"):
        try:
            return model_from_config(config, "model_from_json",
                                     hard_sigmoid_for(version, legacy="module" not in config))
        except (ModelFileError, ImportError, NotImplementedError):
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
                RuntimeError, MemoryError, RecursionError) as e:   # a value of the wrong type
            raise ModelFileError(f"model_from_json: the config could not be read: "
                                 f"{type(e).__name__}: {e}") from e


def save(model, filepath):
    """The body of ``Model.save(filepath)``."""
    save_model(model, filepath)


def save_weights(model, filepath):
    """The weights alone: ``.weights.h5`` (Keras 3 layout) or ``.npz`` (native)."""
    from . import keras_format
    from ..io import native

    kind = _suffix(filepath)
    if kind == ".weights.h5":
        keras_format.save_weights_h5(model, filepath)
    elif kind in (".weights.npz", ".npz"):
        native.save_weights(model, filepath)
    else:
        raise ValueError(f"save_weights: unsupported file name {os.fspath(filepath)!r}; expected "
                         "a name ending in .weights.h5 or .weights.npz.")


def load_weights(model, filepath, skip_mismatch=False, by_name=None, objects_to_skip=None):
    """``Model.load_weights``: ``.weights.h5``, a legacy ``.h5`` (weights-only or whole model;
    matched by layer order as Keras does, or by name with ``by_name=True``), the weights of
    a ``.keras`` archive, or ``.weights.npz``. The arguments are Keras 3's; ``by_name`` is
    for legacy ``.h5`` files only, as in Keras."""
    kind = _suffix(filepath)
    if objects_to_skip is not None:
        raise NotImplementedError("load_weights(objects_to_skip=...) is not implemented in "
                                  "unrolled; load the weights and set the others back with "
                                  "layer.set_weights().")
    if by_name is not None and kind not in (".h5", ".hdf5"):
        raise ValueError(f"`by_name` only supports loading legacy '.h5' or '.hdf5' files. "
                         f"Received: {os.fspath(filepath)}")
    if skip_mismatch and kind in (".weights.npz", ".npz"):
        raise NotImplementedError("load_weights(skip_mismatch=True) is not implemented for "
                                  ".npz weights; it is for Keras's .h5 and .keras files.")
    if kind not in (".weights.h5", ".h5", ".hdf5", ".keras", ".weights.npz", ".npz"):
        raise ValueError(f"load_weights: unsupported file name {os.fspath(filepath)!r}; expected "
                         "a name ending in .weights.h5, .h5, .keras or .weights.npz.")
    _load_weights(model, kind, skip_mismatch, by_name, filepath)


@_reader_boundary
def _load_weights(model, kind, skip_mismatch, by_name, filepath):
    from . import keras_format
    from ..io import native

    if kind in (".weights.h5", ".h5", ".hdf5"):
        keras_format.load_weights_file_h5(model, filepath, skip_mismatch, by_name)
    elif kind == ".keras":
        keras_format.load_weights_from_keras(model, filepath, skip_mismatch)
    else:
        native.load_weights(model, filepath)
