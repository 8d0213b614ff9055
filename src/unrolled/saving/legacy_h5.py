"""Legacy ``.h5`` model files (tf.keras 2; Keras 3's ``save_model(m, "x.h5")``).

The config is the root attribute ``model_config`` (JSON) and the weights sit under
``model_weights/<layer name>``, listed by the ``layer_names`` and ``weight_names``
attributes (split into ``name0``, ``name1``... when large), a layer's weights in Keras 2's
order (trainable first). A compiled model's ``training_config`` and ``optimizer_weights``
are written and read by ``h5_training``. ``"hard_sigmoid"`` means what the file's
``keras_version`` says (``serialize.hard_sigmoid_for``). Files are read as
``keras_format`` describes (into memory, HDF5 parsed in a sandboxed process).
"""
import io
import json

import numpy as np

from ..io.atomic import atomic_write
from ..io.h5_sandbox import open_h5
from ..io.safety import (ModelFileError, UnsupportedModelError, import_h5py, read_attr,
                         read_dataset, read_file, weights_budget)
from .graph import model_config, model_from_config, weight_groups
from .keras_format import KERAS2_VERSION, KERAS_VERSION, _names, _warn, parse_json
from .serialize import KERAS2_HARD_SIGMOID, activation_users, hard_sigmoid_for, rename_activation


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


def legacy_h5_bytes(model, with_config=True, include_optimizer=True):
    """A legacy ``.h5`` file (config + ``model_weights``) as bytes, as Keras's legacy saver;
    with ``include_optimizer``, a compiled model's ``training_config`` and
    ``optimizer_weights`` too (``h5_training``)."""
    from . import h5_training
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
        if with_config:
            h5_training.write(f, model, include_optimizer)
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


def save_legacy_h5(model, path, include_optimizer=True):
    data = legacy_h5_bytes(model, include_optimizer=include_optimizer)
    with atomic_write(path) as f:
        f.write(data)


def load_legacy_h5(path, compile=True):
    """A model from a legacy ``.h5`` file; with ``compile`` (as Keras) its
    ``training_config`` compiles it and ``optimizer_weights`` restore the optimizer's
    state (``h5_training``)."""
    from . import h5_training
    data = read_file(path)
    with open_h5(data, path) as f:
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
        if compile:
            h5_training.restore(model, f, path, len(data))
    return model
