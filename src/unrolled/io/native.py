"""The native weights format: a plain ``.npz`` of arrays, never pickled.

Arrays are stored in ``get_weights()`` order with an ``__order__`` index of their weight
paths (``simple_rnn/simple_rnn_cell/kernel``); loading checks the index, the count and the
shapes before it assigns. When the stored paths are exactly the model's, in another order,
the arrays go by path: files written before ``Model.layers`` followed Keras's order (issue
20) list the weights of some multi-branch models in another order, under the same paths.
Otherwise (a model built again, whose layers have other names) they go by position, as
Keras's weights files go by the model's structure, and each position must hold the same
kind of weight (``kernel``, ``recurrent_kernel``, ``bias``, ...): a file of another
model whose shapes happen to fit is refused rather than loaded.
"""
import io
import json
import os

import numpy as np

from .atomic import atomic_write


def save_weights(model, path):
    """Write ``model.get_weights()`` to ``path`` (``.npz``), atomically."""
    weights = model.weights
    arrays = {f"w{i:04d}": w.numpy() for i, w in enumerate(weights)}
    index = json.dumps([w.path for w in weights]).encode()
    arrays["__order__"] = np.frombuffer(index, dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def load_weights(model, path):
    """Read weights written by ``save_weights`` into ``model`` (count and shapes checked).

    The archive goes through ``io.safety``: read into memory once, members read by exact
    name, ``.npy`` headers checked against their bytes, no pickle; a damaged file is a
    ``ModelFileError`` (a ``ValueError``)."""
    from .safety import ModelFileError, SafeZip, read_file, read_npy

    data = read_file(path)
    archive = SafeZip(data, os.fspath(path))
    try:
        names = json.loads(read_npy(archive.read("__order__.npy"), "__order__", path).tobytes().decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{os.fspath(path)!r} is not a valid unrolled weights file: {e}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{os.fspath(path)!r} is not a valid unrolled weights file: its "
                             "__order__ index is not a list of weight paths.")
    own = model.weights
    if len(names) != len(own):
        raise ModelFileError(
            f"{os.fspath(path)!r} holds {len(names)} weight arrays, but model '{model.name}' has "
            f"{len(own)}: {[w.path for w in own]}."
        )
    arrays = [read_npy(archive.read(f"w{i:04d}.npy"), f"w{i:04d}", path) for i in range(len(names))]
    paths = [w.path for w in own]
    if names != paths and sorted(names) == sorted(paths) and len(set(paths)) == len(paths):
        by_path = dict(zip(names, arrays))
        arrays = [by_path[p] for p in paths]
    else:
        for i, (stored, mine) in enumerate(zip(names, paths)):
            if stored.rsplit("/", 1)[-1] != mine.rsplit("/", 1)[-1]:
                raise ModelFileError(
                    f"{os.fspath(path)!r} does not fit model '{model.name}': weight {i} is "
                    f"{stored!r} in the file but {mine!r} in the model; the file belongs to a "
                    "model of another structure.")
    try:
        model.set_weights(arrays)
    except ValueError as e:
        raise ModelFileError(f"{os.fspath(path)!r} does not fit model '{model.name}': {e}") from None
