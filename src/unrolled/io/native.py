"""The native weights format: a plain ``.npz`` of arrays, never pickled.

Arrays are stored under their weight paths (``simple_rnn/simple_rnn_cell/kernel``) with
a ``__order__`` index, so loading checks names, count and shapes before it assigns.
"""
import io
import json
import os

import numpy as np

from .atomic import atomic_write

_MAX_BYTES = 2 ** 31  # refuse absurd files before reading them whole


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
    """Read weights written by ``save_weights`` into ``model`` (names and shapes checked)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights file at {path!r}.")
    size = os.path.getsize(path)
    if size == 0 or size > _MAX_BYTES:
        raise ValueError(f"{path!r} is not a weights file (size {size} bytes).")
    try:
        with np.load(path, allow_pickle=False) as data:
            names = json.loads(bytes(data["__order__"]).decode())
            arrays = [data[f"w{i:04d}"] for i in range(len(names))]
    except (KeyError, ValueError, OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path!r} is not a valid unrolled weights file: {e}") from None
    own = model.weights
    if len(arrays) != len(own):
        raise ValueError(
            f"{path!r} holds {len(arrays)} weight arrays, but model '{model.name}' has "
            f"{len(own)}: {[w.path for w in own]}."
        )
    model.set_weights(arrays)
