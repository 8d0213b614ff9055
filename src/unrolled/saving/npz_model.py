"""The native model format, ``.unrolled.npz``: NumPy alone, no h5py, no pickle.

An uncompressed ``.npz`` (a zip of ``.npy`` arrays) holding:

* ``__format__``: the bytes ``unrolled.npz/1`` as a uint8 array;
* ``__config__``: the model's Keras-style JSON config (``graph.model_config``) as uint8;
* one array per weight, named by its place in Keras 3's weights layout, e.g.
  ``layers/lstm/cell/vars/0`` (see ``graph.weight_groups``);
* for a compiled model (unless saved with ``include_optimizer=False``), its training
  state: ``__compile__`` (optimizer, loss, metrics) and ``optimizer/vars/0`` ... (the
  optimizer's iteration, learning rate and slots, in Keras's order), described in
  ``training_state``. A loss or metric given as a function is written by name (a
  registered function, or one of unrolled's); any other function is refused by name.

``load_npz_model(path, compile=True)`` compiles the model from ``__compile__`` and
restores the optimizer's state, so ``fit`` goes on where it stopped, as Keras's
``load_model`` does with a ``.keras`` file; ``compile=False`` leaves both out. A file
without ``__compile__`` (an uncompiled model, or a file written before the training
state was saved) loads uncompiled.

The same archive, under the format ``unrolled.pickle/1``, is the payload of ``pickle``
and ``copy.deepcopy`` (``models.pickling``): ``archive_bytes`` writes both and
``read_archive`` reads both. It loads with ``np.load(path, allow_pickle=False)`` too;
the reader reads each member by its expected name and checks every ``.npy`` header
against the bytes present before reading (``safety.read_npy``).
"""
import io
import json

import numpy as np

from ..io.atomic import atomic_write
from .graph import model_config, model_from_config, weight_groups
from ..io.safety import MAX_JSON_BYTES, ModelFileError, SafeZip, read_file, read_npy, weights_budget
from . import training_state

FORMAT = "unrolled.npz/1"


def _text_array(text):
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def archive_bytes(model, fmt, compiled=None):
    """The archive of ``model`` (format ``fmt``) as bytes: config, weights and, when
    ``compiled`` (a ``training_state.compile_state``) is given, the training state."""
    arrays = {"__format__": _text_array(fmt),
              "__config__": _text_array(json.dumps(model_config(model)))}
    for group, variables in weight_groups(model, model.layers):
        for i, var in enumerate(variables):
            arrays[f"{group}/vars/{i}"] = var.numpy()
    if compiled is not None:
        arrays.update(training_state.state_arrays(model, compiled))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def save_npz_model(model, path, include_optimizer=True):
    """Write ``model`` to ``path`` (``.unrolled.npz``), atomically: config, weights and, for
    a compiled model with ``include_optimizer``, its training state. A compile argument
    that a file cannot name raises TypeError before anything is written."""
    compiled = None
    if include_optimizer:
        compiled = training_state.compile_state(
            model, training_state.ByName(),
            f"Cannot save the training state of model '{model.name}' to .unrolled.npz")
    data = archive_bytes(model, FORMAT, compiled)
    with atomic_write(path) as f:
        f.write(data)


def load_npz_model(path, compile=True):
    """A model from a ``.unrolled.npz`` file written by ``save_npz_model``; with
    ``compile`` its training state, if it holds one."""
    raw = read_file(path)
    return read_archive(raw, path, FORMAT, compile, training_state.ByName())


class _Archive:
    """An ``.npz`` held in memory: members by name (``"x"`` is ``x.npy``), headers checked."""

    def __init__(self, raw, where):
        self.where, self._zip = where, SafeZip(raw, where)

    def has(self, name):
        return self._zip.has(name + ".npy")

    def names(self):
        return [n[:-4] for n in self._zip.names() if n.endswith(".npy")]

    def array(self, name, max_bytes=None):
        data = self._zip.read(name + ".npy", *(() if max_bytes is None else (max_bytes,)))
        return read_npy(data, name, self.where)

    def text(self, name, max_bytes=MAX_JSON_BYTES):
        value = self.array(name, max_bytes)
        if value.dtype != np.uint8 or value.ndim != 1:
            raise ModelFileError(f"{self.where!r}: {name} has dtype {value.dtype} and shape "
                                 f"{value.shape}; expected text as a 1-D uint8 array.")
        return value.tobytes()


def read_archive(raw, where, fmt, compile, functions):
    """The model in archive ``raw`` (bytes) of format ``fmt``; with ``compile``, compiled
    and its optimizer's state restored (functions read by ``functions``, see
    ``training_state``). Every member is checked before any weight is assigned."""
    from .keras_format import config_layer_order, parse_json

    archive = _Archive(raw, where)
    if not archive.has("__format__"):
        hint = " (a weights-only .npz loads with load_weights)" if fmt == FORMAT else ""
        raise ModelFileError(f"{where!r} is an .npz archive but not an unrolled model: it has "
                             f"no __format__ member{hint}.")
    found = archive.text("__format__", 1024).decode("utf-8", "replace")
    if found != fmt:
        raise ModelFileError(f"{where!r} has format {found!r}; this version reads {fmt!r}.")
    config = parse_json(archive.text("__config__"), "__config__", where)
    model = model_from_config(config, f"{where!r} __config__",
                              weights_bytes=weights_budget(len(raw)))
    updates = []
    for group, variables in weight_groups(model, config_layer_order(model, config)):
        for i, var in enumerate(variables):
            name = f"{group}/vars/{i}"
            value = archive.array(name)
            if value.shape != var.shape:
                raise ModelFileError(f"{where!r}: {name} has shape {value.shape}, the model "
                                     f"expects {var.shape}.")
            updates.append((var, value))
    for var, value in updates:
        var.assign(value)
    if compile:
        training_state.restore(model, archive, functions, where)
    return model
