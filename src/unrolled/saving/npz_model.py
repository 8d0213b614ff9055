"""The native model format, ``.unrolled.npz``: NumPy alone, no h5py, no pickle.

An uncompressed ``.npz`` (a zip of ``.npy`` arrays) holding:

* ``__format__``: the bytes ``unrolled.npz/1`` as a uint8 array;
* ``__config__``: the model's Keras-style JSON config (``graph.model_config``) as uint8;
* one array per weight, named by its place in Keras 3's weights layout, e.g.
  ``layers/lstm/cell/vars/0`` (see ``graph.weight_groups``).

It loads with ``np.load(path, allow_pickle=False)`` too; ``load_npz_model`` reads each
member by its expected name and checks every ``.npy`` header against the bytes present
before reading (``safety.read_npy``).
"""
import io
import json

import numpy as np

from ..io.atomic import atomic_write
from .graph import model_config, model_from_config, weight_groups
from ..io.safety import MAX_JSON_BYTES, ModelFileError, SafeZip, read_file, read_npy, weights_budget

FORMAT = "unrolled.npz/1"


def _text_array(text):
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def save_npz_model(model, path):
    """Write config and weights of ``model`` to ``path`` (``.unrolled.npz``), atomically."""
    arrays = {"__format__": _text_array(FORMAT),
              "__config__": _text_array(json.dumps(model_config(model)))}
    for group, variables in weight_groups(model, model.layers):
        for i, var in enumerate(variables):
            arrays[f"{group}/vars/{i}"] = var.numpy()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def load_npz_model(path):
    """A model from a ``.unrolled.npz`` file written by ``save_npz_model``."""
    from .keras_format import config_layer_order, parse_json

    raw = read_file(path)
    archive = SafeZip(raw, path)

    def member(name, max_bytes=None):
        data = archive.read(name + ".npy", *(() if max_bytes is None else (max_bytes,)))
        return read_npy(data, name, path)

    if not archive.has("__format__.npy"):
        raise ModelFileError(f"{path!r} is an .npz archive but not an unrolled model: it has no "
                             "__format__ member (a weights-only .npz loads with load_weights).")
    fmt = bytes(member("__format__", 1024).astype(np.uint8)).decode("utf-8", "replace")
    if fmt != FORMAT:
        raise ModelFileError(f"{path!r} has format {fmt!r}; this version reads {FORMAT!r}.")
    config = parse_json(bytes(member("__config__", MAX_JSON_BYTES).astype(np.uint8)),
                        "__config__", path)
    model = model_from_config(config, f"{path!r} __config__", weights_bytes=weights_budget(len(raw)))
    updates = []
    for group, variables in weight_groups(model, config_layer_order(model, config)):
        for i, var in enumerate(variables):
            name = f"{group}/vars/{i}"
            value = member(name)
            if value.shape != var.shape:
                raise ModelFileError(f"{path!r}: {name} has shape {value.shape}, the model "
                                     f"expects {var.shape}.")
            updates.append((var, value))
    for var, value in updates:
        var.assign(value)
    return model
