"""Keras files: ``.keras`` archives, legacy ``.h5`` models, ``.weights.h5`` weights.

``.keras`` (Keras 3) is a zip of ``metadata.json``, ``config.json`` (the model config, see
``graph.py``) and ``model.weights.h5``, where each layer's variables sit in a group such as
``layers/lstm/cell/vars`` as datasets ``"0"``, ``"1"``, … in ``get_weights()`` order.
``.weights.h5`` is that HDF5 file alone. The legacy ``.h5`` format (``keras.saving.
save_model(m, "x.h5")``, tf.keras 2) stores the config as the ``model_config`` attribute
and the weights under ``model_weights/<layer name>``, listed by the ``layer_names`` and
``weight_names`` attributes.

``"hard_sigmoid"`` is read as the file's Keras version means it (``serialize.
hard_sigmoid_for``): the ``keras_version`` of ``metadata.json`` or of the ``.h5`` attributes.
A model that computes Keras 2's hard sigmoid is refused by ``save_keras`` (Keras 3 has none)
and written by ``save_legacy_h5`` as ``"hard_sigmoid"`` in a file marked Keras 2.

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

import numpy as np

from ..version import __version__
from . import keras_layouts
from ..io.atomic import atomic_write
from .graph import model_config, model_from_config, weight_groups
from ..io.h5_sandbox import H5Dataset, H5Group, open_h5
from ..io.safety import (MAX_JSON_BYTES, ModelFileError, SafeZip, UnsupportedModelError,
                     import_h5py, read_attr, read_dataset, read_file, weights_budget)
from .serialize import KERAS2_HARD_SIGMOID, activation_users, hard_sigmoid_for, rename_activation

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


# --- legacy HDF5 (tf.keras 2, keras.saving.save_model(m, "x.h5")) --------------------------------
def _attr_list(group, name):
    """A string-list attribute, also when Keras split it into ``name0``, ``name1``, …
    (sizes checked before reading, see ``h5_worker``)."""
    if name in group.attrs:
        values = list(read_attr(group, name))
    else:
        values, k = [], 0
        while f"{name}{k}" in group.attrs and k < 10_000:
            values += list(read_attr(group, f"{name}{k}"))
            k += 1
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def load_legacy_weights(model, group, path, file_size, match="names", skip_mismatch=False):
    """Assign weights from a legacy ``model_weights`` group (or a weights-only file's root).

    ``match="names"``: every layer with weights must find its name in the file (a model
    rebuilt from the file's own config). ``"order"``: Keras's ``load_weights(path)``: the
    file's layers that hold weights, in order, go to the model's layers that have weights,
    in ``model.layers`` order, whatever their names; the counts must agree.
    ``"by_name"``: Keras's ``load_weights(path, by_name=True)``: a model layer takes the
    weights stored under its name, and layers the file does not name are left alone.
    ``skip_mismatch`` (order and by_name) leaves a weight whose shape differs, and in
    by_name a layer whose number of weights differs, as it is, with a warning. Nothing is
    assigned until every weight has been read and checked."""
    listed = _attr_list(group, "layer_names")
    twice = sorted({name for name in listed if listed.count(name) > 1})
    if twice:
        raise ModelFileError(f"{path!r} lists the layers {twice} more than once; the file is "
                             "ambiguous.")
    stored = {name: _attr_list(group[name], "weight_names") for name in listed if name in group}
    if match == "order":
        pairs = _pairs_by_order(model, [n for n in listed if stored.get(n)], path)
    else:
        pairs = [(layer, layer.name) for layer in _with_weights(model)
                 if match == "names" or layer.name in stored]
    updates = []
    for k, (layer, name) in enumerate(pairs):
        own, names = _legacy_weights(layer), stored.get(name)
        where = f"layer #{k} (named {layer.name!r} in the model, {name!r} in the file)"
        if names is None:
            raise ModelFileError(f"{path!r} has no weights for layer {layer.name!r}; it holds "
                                 f"weights for {sorted(k for k, v in stored.items() if v)}.")
        if len(names) != len(own):
            message = (f"{path!r}: {where} has {len(own)} weights, the file {len(names)} "
                       f"({names}).")
            if skip_mismatch and match == "by_name":
                _warn(f"Skipping {where}: {message}")
                continue
            raise ModelFileError(message)
        for var, wname in zip(own, names):
            ds = group[name].get(wname)
            if ds is None:
                raise ModelFileError(f"{path!r}: weight {wname!r} is listed but missing.")
            if skip_mismatch and match != "names" and tuple(ds.shape) != tuple(var.shape):
                _warn(f"Skipping weight {var.path} of {where}: it has shape {tuple(var.shape)}, "
                      f"the file's {wname!r} {tuple(ds.shape)} (skip_mismatch=True).")
                continue
            updates.append((var, read_dataset(ds, var.shape, wname, path, file_size)))
    for var, value in updates:
        var.assign(value)


def _with_weights(model):
    return [layer for layer in model.layers if layer.weights]


def _legacy_weights(layer):
    """A layer's weights in the order Keras 2 wrote them: trainable ones first."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _pairs_by_order(model, names, path):
    layers = _with_weights(model)
    if len(layers) != len(names):
        raise ModelFileError(
            f"{path!r} holds weights for {len(names)} layers ({names}), but the model has "
            f"{len(layers)} layers with weights ({[layer.name for layer in layers]}). Weights "
            "are matched by layer order; load_weights(path, by_name=True) matches them by name.")
    return list(zip(layers, names))


def _legacy_config(model):
    """The config and keras_version of a legacy ``.h5``: Keras 3's, or, for a model that
    computes Keras 2's hard sigmoid, ``"hard_sigmoid"`` in a file marked Keras 2."""
    config = model_config(model)
    keras2 = activation_users(config, KERAS2_HARD_SIGMOID)
    if not keras2:
        return config, KERAS_VERSION
    keras3 = activation_users(config, "hard_sigmoid")
    if keras3:
        raise UnsupportedModelError(
            f"Cannot save model '{model.name}' as legacy .h5: {_names(keras2)} use Keras 2's "
            f"hard_sigmoid, clip(0.2*x + 0.5, 0, 1), and {_names(keras3)} Keras 3's, clip(x/6 + "
            "0.5, 0, 1); a legacy file's keras_version gives \"hard_sigmoid\" one meaning. Save "
            "it as .unrolled.npz instead.")
    return rename_activation(config, KERAS2_HARD_SIGMOID, "hard_sigmoid"), KERAS2_VERSION


def _names(layers):
    return ("layer " if len(layers) == 1 else "layers ") + ", ".join(f"'{n}'" for n in layers)


def legacy_h5_bytes(model, with_config=True):
    """A legacy ``.h5`` file (config + ``model_weights``) as bytes, as Keras's legacy saver."""
    h5py = import_h5py()
    buf = io.BytesIO()
    layers = model.layers
    config, version = _legacy_config(model) if with_config else (None, KERAS_VERSION)
    with h5py.File(buf, "w") as f:
        if with_config:
            f.attrs["backend"] = "tensorflow"
            f.attrs["keras_version"] = version
            f.attrs["model_config"] = json.dumps(config)
            root = f.create_group("model_weights")
        else:
            root = f
        root.attrs["layer_names"] = [l.name.encode("utf8") for l in layers]
        root.attrs["backend"] = "tensorflow"
        root.attrs["keras_version"] = version
        for (gpath, _), layer in _layer_paths(model, layers):
            group = root.create_group(layer.name)
            names = []
            for sub, variables in weight_groups(model, layers):
                if sub == gpath or sub.startswith(gpath + "/"):
                    for var in variables:
                        name = _legacy_name(layer, var, sub[len(gpath):])
                        if name in names:                   # paths that are not unique
                            name = f"{layer.name}{sub[len(gpath):]}/{var.name}"
                        names.append(name)
                        group.create_dataset(name, data=var.numpy())
            group.attrs["weight_names"] = [n.encode("utf8") for n in names]
        root.create_group("top_level_model_weights").attrs["weight_names"] = np.array([], "S1")
    return buf.getvalue()


def _legacy_name(layer, var, sub):
    """A weight's name in a legacy ``.h5``: its path, as Keras 3 writes it
    (``bidirectional/forward_lstm/lstm_cell/kernel``,
    ``multi_head_attention/query/kernel``), or, for a weight whose path does not start with
    its layer's name, the layer's name and the weight's group in the ``.keras`` layout."""
    path = getattr(var, "path", None) or ""
    if path.startswith(layer.name + "/"):
        return path
    return f"{layer.name}{sub}/{var.name}"


def _layer_paths(model, layers):
    """Each layer with the path of its top group (``layers/lstm``)."""
    tops = [g for g in weight_groups(model, layers) if g[0].count("/") == 1]
    return list(zip(tops, layers))


# --- whole files -----------------------------------------------------------------------------
def save_keras(model, path):
    """Write ``model`` as a Keras 3 ``.keras`` archive that ``keras.saving.load_model`` reads."""
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
        compiled = compile_config(model)
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


def save_legacy_h5(model, path):
    data = legacy_h5_bytes(model)
    with atomic_write(path) as f:
        f.write(data)


def load_legacy_h5(path, compile=True):
    data = read_file(path)
    with open_h5(data, path) as f:
        if compile and "training_config" in f.attrs:
            _warn(f"{path!r}: the training configuration of a legacy .h5 file (optimizer, "
                  "loss, metrics) is not read by unrolled; the model is loaded uncompiled: "
                  "call compile() before training.")
        raw = read_attr(f, "model_config")
        if raw is None:
            raise ModelFileError(f"{path!r} has no model_config attribute: it holds weights only. "
                                 "Build the model and use model.load_weights().")
        config = parse_json(raw if isinstance(raw, (bytes, str)) else bytes(raw),
                            "model_config", path)
        version = read_attr(f, "keras_version")
        if version is None and "model_weights" in f:
            version = read_attr(f["model_weights"], "keras_version")
        model = model_from_config(config, f"{path!r} model_config",
                                  hard_sigmoid_for(version, legacy=True),
                                  weights_bytes=weights_budget(len(data)))
        if "model_weights" not in f:
            raise ModelFileError(f"{path!r} has no model_weights group.")
        load_legacy_weights(model, f["model_weights"], path, len(data))
    return model


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
