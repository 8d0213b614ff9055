"""Keras files: ``.keras`` archives, legacy ``.h5`` models, ``.weights.h5`` weights.

``.keras`` (Keras 3) is a zip of ``metadata.json``, ``config.json`` (the model config, see
``graph.py``) and ``model.weights.h5``, where each layer's variables sit in a group such as
``layers/lstm/cell/vars`` as datasets ``"0"``, ``"1"``, … in ``get_weights()`` order.
``.weights.h5`` is that HDF5 file alone. The legacy ``.h5`` format (``keras.saving.
save_model(m, "x.h5")``, tf.keras 2) is read and written by ``legacy_h5`` (a compiled
model's ``training_config`` and ``optimizer_weights`` by ``h5_training``).

``"hard_sigmoid"`` is read as the file's Keras version means it (``serialize.
hard_sigmoid_for``): the ``keras_version`` of ``metadata.json`` or of the ``.h5`` attributes.
A model that computes Keras 2's hard sigmoid is refused by ``save_keras`` (Keras 3 has none)
and written by ``legacy_h5.save_legacy_h5`` as ``"hard_sigmoid"`` in a file marked Keras 2.

Files are read into memory and checked as ``safety.py`` describes; HDF5 is parsed in a
separate process with a time limit and read back as a snapshot (``h5_sandbox``). The errors
raised are ``FileNotFoundError`` and ``safety.ModelFileError`` and its subclasses
``UnsafeModelError`` and ``UnsupportedModelError`` (all ``ValueError``). Files are written
atomically, in this process: ``h5py`` is imported only inside the writers.
"""
import datetime
import io
import json
import zipfile

from ..version import __version__
from . import keras_layouts
from ..io.atomic import atomic_write
from .graph import model_config, model_from_config, weight_groups
from ..io.h5_sandbox import H5Dataset, H5Group, open_h5
from ..io.safety import (MAX_JSON_BYTES, ModelFileError, SafeZip, UnsupportedModelError,
                     import_h5py, read_dataset, read_file, weights_budget)
from .serialize import KERAS2_HARD_SIGMOID, activation_users, hard_sigmoid_for

KERAS_VERSION = "3.15.1"          # the Keras version whose format these files follow
KERAS2_VERSION = "2.15.0"         # legacy .h5 files whose "hard_sigmoid" is Keras 2's: the last
                                  # Keras 2 release (tf.keras 2.15), for readers of keras_version


def parse_json(data, what, path):
    if len(data) > MAX_JSON_BYTES:
        raise ModelFileError(f"{what} in {path!r} is {len(data)} bytes; too large for a config.")
    try:
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{what} in {path!r} is not valid JSON ({e}).") from None
    except RecursionError:                # "[[[[..." nested deeper than json can follow
        raise ModelFileError(f"{what} in {path!r} nests lists or objects too deeply to be a "
                             "model config.") from None


def config_layer_order(model, config):
    """Our layers in the order of the config's layer list (Keras's order of ``model.layers``)."""
    if config["class_name"] == "Sequential":
        return model.layers
    by_name = {layer.name: layer for layer in model.layers}
    names = [e.get("name") or e.get("config", {}).get("name") for e in config["config"]["layers"]]
    return [by_name[n] for n in names if n in by_name]


# --- the Keras 3 weights layout --------------------------------------------------------------
def weights_h5_bytes(model, layers=None, with_optimizer=False):
    """``model.weights.h5`` as bytes: one ``<path>/vars`` group per layer and cell, and with
    ``with_optimizer`` the optimizer's state in ``optimizer/vars`` (``optimizer.variables``
    order: iteration, learning rate, slots), as Keras 3 saves a compiled model."""
    h5py = import_h5py()
    buf = io.BytesIO()
    groups = weight_groups(model, layers)
    if with_optimizer and model.optimizer is not None and model.optimizer.built:
        groups = groups + [("optimizer", model.optimizer.variables)]
    with h5py.File(buf, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        for path, variables in groups:
            group = f.create_group(f"{path}/vars")
            group.attrs["name"] = path.rsplit("/", 1)[-1]
            for i, var in enumerate(variables):
                group.create_dataset(str(i), data=var.numpy())
    return buf.getvalue()


def compile_config(model):
    """Keras 3's ``compile_config`` of a compiled model (None if it is not compiled): the
    optimizer's config, and the loss and metrics as ``compile`` received them, names or
    built-in objects (their class and config)."""
    if not getattr(model, "compiled", False) or model.optimizer is None:
        return None
    args = model._compile_args

    def serialize(obj, module):
        if obj is None or isinstance(obj, str):
            return obj
        from ..losses import LossFunctionWrapper
        from ..metrics import MeanMetricWrapper
        if not hasattr(obj, "get_config") or type(obj) in (MeanMetricWrapper,
                                                           LossFunctionWrapper):
            raise UnsupportedModelError(
                f"Cannot save the compile state of model '{model.name}': {obj!r} is a "
                "function, which a .keras file cannot hold (compile with a built-in name or "
                "class to save it).")
        return {"module": module, "class_name": type(obj).__name__,
                "config": obj.get_config(), "registered_name": None}

    return {"optimizer": serialize(model.optimizer, "keras.optimizers"),
            "loss": serialize(args["loss"], "keras.losses"), "loss_weights": None,
            "metrics": [serialize(m, "keras.metrics") for m in args["metrics"]] or None,
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
            "jit_compile": False}


def load_weights_h5(model, f, path, file_size, layers=None, skip_mismatch=False):
    """Assign every variable of ``model`` from an open Keras 3 weights file (shapes checked).
    With ``skip_mismatch`` a layer whose group is missing or does not fit is left as it is,
    with a warning, as Keras's ``load_weights(..., skip_mismatch=True)`` does. Older
    writers' layouts (tf.keras 2.13, Windows ``\\`` paths) are read through ``keras_layouts``."""
    f = keras_layouts.view_for(model, layers, f, path)
    updates = []
    for group_path, variables in weight_groups(model, layers):
        if not variables:
            continue
        try:
            updates += _group_updates(f, group_path, variables, path, file_size)
        except ModelFileError as e:
            if not skip_mismatch:
                raise
            _warn(f"Skipping the weights of {group_path} (skip_mismatch=True): {e}")
    for var, value in updates:                               # all read and checked: now assign
        var.assign(value)


def _group_updates(f, group_path, variables, path, file_size):
    group = f.get(f"{group_path}/vars")
    if not isinstance(group, H5Group):
        raise ModelFileError(
            f"{path!r} has no weights at {group_path}/vars for layer variables "
            f"{[v.path for v in variables]}; the file belongs to a different model."
        )
    if len(group.keys()) != len(variables):
        raise ModelFileError(
            f"{path!r}: {group_path}/vars holds {len(group.keys())} arrays, but the layer "
            f"has {len(variables)} ({[v.name for v in variables]})."
        )
    updates = []
    for i, var in enumerate(variables):
        ds = group.get(str(i))
        if not isinstance(ds, H5Dataset):
            raise ModelFileError(f"{path!r}: {group_path}/vars/{i} is missing.")
        updates.append((var, read_dataset(ds, var.shape, f"{group_path}/vars/{i}", path,
                                          file_size)))
    return updates


def _warn(message):
    import warnings
    warnings.warn(message, stacklevel=4)


def _names(layers):
    return ("layer " if len(layers) == 1 else "layers ") + ", ".join(f"'{n}'" for n in layers)


# --- whole files -----------------------------------------------------------------------------
def save_keras(model, path, include_optimizer=True):
    """Write ``model`` as a Keras 3 ``.keras`` archive that ``keras.saving.load_model`` reads;
    a compiled model's ``compile_config`` and optimizer variables unless
    ``include_optimizer=False`` (which Keras itself ignores for ``.keras`` files)."""
    config = model_config(model)
    keras2 = activation_users(config, KERAS2_HARD_SIGMOID)
    if keras2:
        raise UnsupportedModelError(
            f"Cannot save model '{model.name}' as .keras: {_names(keras2)} use Keras 2's "
            "hard_sigmoid, clip(0.2*x + 0.5, 0, 1), read from a file Keras 2 wrote; Keras 3 has "
            "only clip(x/6 + 0.5, 0, 1) under that name, so the .keras file would compute other "
            "numbers. Save it as .h5 (legacy, marked Keras 2) or .unrolled.npz instead.")
    metadata = {"keras_version": KERAS_VERSION, "unrolled_version": __version__,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    try:
        compiled = compile_config(model) if include_optimizer else None
    except UnsupportedModelError as e:                       # the model itself still saves
        compiled = None
        _warn(f"{e} The model is saved without its compile state.")
    if compiled is not None:
        config["compile_config"] = compiled
    weights = weights_h5_bytes(model, model.layers, with_optimizer=compiled is not None)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", json.dumps(metadata))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", weights)
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def load_keras(path, compile=True):
    """A model from a ``.keras`` archive (members read by name into memory, never extracted).
    With ``compile`` (as Keras) a saved ``compile_config`` compiles the model and the saved
    optimizer state is restored, so ``fit`` goes on where it stopped."""
    archive = SafeZip(read_file(path), path)
    config = parse_json(archive.read("config.json", MAX_JSON_BYTES), "config.json", path)
    version = None                     # tf.keras 2.13-2.15 wrote .keras archives too: "2.x"
    if archive.has("metadata.json"):
        metadata = parse_json(archive.read("metadata.json", MAX_JSON_BYTES), "metadata.json", path)
        version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    data = archive.read("model.weights.h5")
    model = model_from_config(config, f"{path!r} config.json",
                              hard_sigmoid_for(version, legacy=False),
                              weights_bytes=weights_budget(len(data)))
    with open_h5(data, f"{path}:model.weights.h5") as f:
        load_weights_h5(model, f, path, len(data), config_layer_order(model, config))
        if compile and config.get("compile_config"):
            _compile_from_config(model, config["compile_config"], f, path, len(data))
    return model


def _compile_from_config(model, compiled, f, path, file_size):
    """``model.compile`` from a saved ``compile_config``, then the optimizer's variables
    from ``optimizer/vars``. What unrolled cannot honour leaves the model uncompiled, with
    Keras's kind of warning (the model still predicts)."""
    from ..models.compile_config import compile_kwargs
    try:
        model.compile(**compile_kwargs(compiled, f"{path!r} compile_config"))
    except (ValueError, TypeError, NotImplementedError, KeyError) as e:
        model.compiled = False
        _warn(f"{path!r}: the model was not compiled from the file's compile_config ({e}); "
              "call compile() after loading.")
        return
    group = f.get("optimizer/vars")
    if not isinstance(group, H5Group):
        return
    optimizer = model.optimizer
    optimizer.build(model.trainable_weights)
    variables = optimizer.variables
    if len(group.keys()) != len(variables):
        _warn(f"{path!r}: skipping the optimizer's state: the file holds {len(group.keys())} "
              f"variables, optimizer '{optimizer.name}' has {len(variables)}.")
        return
    values = []
    for i, var in enumerate(variables):
        ds = group.get(str(i))
        if not isinstance(ds, H5Dataset):
            raise ModelFileError(f"{path!r}: optimizer/vars/{i} is missing.")
        values.append(read_dataset(ds, var.shape, f"optimizer/vars/{i}", path, file_size))
    for var, value in zip(variables, values):
        var.assign(value)


def save_weights_h5(model, path):
    """``model.save_weights("x.weights.h5")``: the Keras 3 weights layout alone."""
    data = weights_h5_bytes(model)
    with atomic_write(path) as f:
        f.write(data)


def load_weights_file_h5(model, path, skip_mismatch=False, by_name=None):
    """``model.load_weights(path)`` for a Keras 3 ``.weights.h5`` or a legacy weights/model
    ``.h5`` (matched by layer order, or by name with ``by_name``), as Keras 3 reads them."""
    data = read_file(path)
    with open_h5(data, path) as f:
        legacy = "model_weights" in f or "layer_names" in f.attrs or "layer_names0" in f.attrs
        if by_name is not None and not legacy:
            raise ValueError(f"`by_name` only supports loading legacy '.h5' or '.hdf5' files; "
                             f"{path!r} holds Keras 3's weights layout.")
        if legacy:
            from .legacy_h5 import load_legacy_weights
            group = f if "layer_names" in f.attrs or "layer_names0" in f.attrs else f["model_weights"]
            load_legacy_weights(model, group, path, len(data),
                                "by_name" if by_name else "order", skip_mismatch)
        else:
            load_weights_h5(model, f, path, len(data), skip_mismatch=skip_mismatch)


def load_weights_from_keras(model, path, skip_mismatch=False):
    """``model.load_weights("x.keras")``: the archive's ``model.weights.h5``, whose groups
    are named by the layers' classes and order (``layers/lstm``, ``layers/lstm_1``...), as
    Keras 3 matches them: the model's layers in its own order, whatever their names."""
    archive = SafeZip(read_file(path), path)
    data = archive.read("model.weights.h5")
    with open_h5(data, f"{path}:model.weights.h5") as f:
        load_weights_h5(model, f, path, len(data), skip_mismatch=skip_mismatch)
