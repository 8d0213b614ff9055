"""``.pt`` files that hold a whole model: what ``unrolled convert m.keras m.pt`` writes, and
``load_torch_model`` for any ``.pt`` (that, or a PyTorch state dict).

A state dict alone cannot hold a Keras model: activations (a Dense head's softmax),
``return_sequences``, ``go_backwards``, merge modes, input shape and dtype are not tensors.
So the file is a checkpoint dict, as PyTorch users keep them, that
``torch.load(path, weights_only=True)`` loads (strings, ints and tensors only)::

    {"format": "unrolled.keras_model", "format_version": 1,
     "keras_version": "3.15.1", "unrolled_version": "...",
     "config": "<the model's Keras config, JSON text as in a .keras file's config.json>",
     "state_dict": to_torch(model).state_dict()}

``state_dict`` is PyTorch's layout (``0.rnn.weight_ih_l0``, ``1.weight``, ...): it loads
into ``unrolled.interop.to_torch(model)`` with ``load_state_dict``, and a PyTorch user reads
the tensors by name. Reading rebuilds the model from the config (data: no code runs, as for
``.keras``), loads the state into ``to_torch(model)`` (``strict=True``: every key, every
shape) and converts those modules back; a state changed in PyTorch (fine-tuned, non-zero
``bias_hh``) gives the model PyTorch computes. A model ``to_torch`` cannot express (not a
chain of layers, a Keras-only activation or option) is refused when writing, by name.
"""
import io
import json
import os

import numpy as np

FORMAT = "unrolled.keras_model"
FORMAT_VERSION = 1
KEYS = ("format", "format_version", "keras_version", "unrolled_version", "config", "state_dict")


def is_checkpoint(obj):
    return isinstance(obj, dict) and isinstance(obj.get("format"), str) and obj["format"] == FORMAT


def checkpoint_dict(model):
    """The dict ``save_torch_model`` writes (tensors on the CPU). Raises ``ValueError``
    naming what PyTorch modules cannot hold."""
    from .. import __version__
    from ..saving.graph import model_config
    from ..saving.keras_format import KERAS_VERSION
    from .torch import to_torch

    config = model_config(model)
    try:
        module = to_torch(model)
    except ValueError as e:
        raise ValueError(f"Cannot write model '{model.name}' as a .pt file: {e} A .pt file "
                         "holds what PyTorch modules compute; save it as .keras, .h5 or "
                         ".unrolled.npz (or .onnx) instead.") from None
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "keras_version": KERAS_VERSION,
            "unrolled_version": __version__, "config": json.dumps(config),
            "state_dict": module.state_dict()}


def save_torch_model(model, path):
    """Write ``model`` as a ``.pt`` checkpoint (module docstring), atomically. Before
    writing, the file is read back and its weights compared with the model's, bit for bit."""
    import torch

    from ..io.atomic import atomic_write
    ckpt = checkpoint_dict(model)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    again, _ = _read(torch.load(io.BytesIO(buf.getvalue()), weights_only=True), repr(path),
                     len(buf.getvalue()))
    mine, theirs = model.get_weights(), again.get_weights()
    if len(mine) != len(theirs) or not all(np.array_equal(a, b) for a, b in zip(mine, theirs)):
        raise ValueError(f"Cannot write model '{model.name}' as a .pt file: its weights do "
                         "not come back unchanged from PyTorch's layout. Save it as .keras.")
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def _read_file(obj, where, size):
    """``_read`` for a checkpoint from a file: a config that trips the model's code (a value
    of the wrong type where a shape or a name belongs) raises ``ModelFileError`` naming the
    original error, as the other loaders' (``saving.model_files._reader_boundary``), never a bare
    ``AttributeError`` or ``TypeError``."""
    from ..io.safety import ModelFileError
    try:
        return _read(obj, where, size)
    except (ModelFileError, NotImplementedError):
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            RuntimeError, MemoryError, RecursionError) as e:
        raise ModelFileError(f"{where} could not be read: {type(e).__name__}: "
                             f"{' '.join(str(e).split())[:600]}") from e


def _read(obj, where, size):
    """(model, torch module with the file's state) from a checkpoint dict."""
    import torch

    from ..saving.graph import model_from_config
    from ..saving.keras_format import parse_json
    from ..io.safety import ModelFileError
    from ..saving.serialize import hard_sigmoid_for
    from . import torch_layers
    from .torch import _convert_module, tensor_array, to_torch

    missing = [k for k in KEYS if k not in obj]
    extra = [k for k in obj if k not in KEYS]
    if missing or extra:
        raise ModelFileError(f"{where}: an unrolled .pt model has the entries {list(KEYS)}; "
                             f"this one lacks {missing} and has {extra} besides.")
    version = obj["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelFileError(f"{where}: format_version {obj['format_version']!r}; this unrolled "
                             f"reads version {FORMAT_VERSION}.")
    state = obj["state_dict"]
    if not isinstance(obj["config"], str) or not isinstance(state, dict) or \
            not all(torch.is_tensor(v) for v in state.values()):
        raise ModelFileError(f"{where}: 'config' must be JSON text and 'state_dict' a dict of "
                             "tensors.")
    state = {k: torch.from_numpy(np.ascontiguousarray(tensor_array(k, v, where)))
             for k, v in state.items()}
    config = parse_json(obj["config"], "'config'", where)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(f"{where}: 'config' is not a Keras model config.")
    version = obj["keras_version"] if isinstance(obj["keras_version"], str) else None
    model = model_from_config(config, f"{where} config", hard_sigmoid_for(version, legacy=False),
                              weights_bytes=size + 2 ** 20)
    module = to_torch(model)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{where}: the state_dict does not fit the model its config "
                             f"describes: {' '.join(str(e).split())[:600]}") from None
    layers = _convert_module(module, torch_layers.Layout(len(model.inputs[0].shape)))
    weights = [w for layer in layers for w in layer.get_weights()]
    shapes = [w.shape for w in model.get_weights()]
    if [w.shape for w in weights] != shapes:
        raise ModelFileError(f"{where}: the weights read back from PyTorch's layout have "
                             f"shapes {[w.shape for w in weights]}, the model {shapes}.")
    model.set_weights(weights)
    return model, module


def load_torch_model(path, kind=None, nonlinearity="tanh", head_on=None):
    """A model from any ``.pt``/``.pth`` file (read with ``torch.load(weights_only=True)``
    only): one ``save_torch_model`` wrote, or a PyTorch state dict
    (``from_torch_state(state, kind, nonlinearity, head_on)``; a lone layer is put in a
    ``Sequential`` after an ``Input``)."""
    from ..io.safety import ModelFileError
    from ..layers import Input
    from ..models import Sequential
    from .torch import recurrent_spec, state_of, torch_load
    from .torch_state import from_torch_state, strip_prefix

    obj = torch_load(path)
    if is_checkpoint(obj):
        given = {k: v for k, v in (("kind", kind), ("head_on", head_on)) if v is not None}
        if nonlinearity != "tanh":
            given["nonlinearity"] = nonlinearity
        if given:
            raise ModelFileError(f"{path!r} holds a whole model written by unrolled, with its "
                                 f"architecture; {given} apply to PyTorch state dicts only.")
        return _read_file(obj, repr(path), os.path.getsize(path))[0]
    state = state_of(obj, path)
    layer = from_torch_state(state, kind=kind, nonlinearity=nonlinearity, head_on=head_on)
    if hasattr(layer, "_nodes"):
        return layer
    spec = recurrent_spec(strip_prefix(state))
    if spec is not None:
        shape, dtype = (None, spec[1]), None
    elif type(layer).__name__ == "Embedding":
        shape, dtype = (None,), "int64"
    else:
        shape, dtype = (layer.kernel.value.shape[0],), None
    return Sequential([Input(shape=shape, dtype=dtype), layer])


def torch_reference(path, kind=None, nonlinearity="tanh", head_on=None):
    """(torch module, description) computing what the ``.pt`` file describes: the
    ``to_torch`` modules of an unrolled model, or ``torch_state.torch_reference``."""
    from .torch import state_of, torch_load
    from .torch_state import torch_reference as state_reference

    obj = torch_load(path)
    if is_checkpoint(obj):
        return _read_file(obj, repr(path), os.path.getsize(path))[1], "unrolled model as torch modules"
    module = state_reference(state_of(obj, path), kind, nonlinearity, head_on)
    return module, "torch modules rebuilt from the state's keys and shapes"
