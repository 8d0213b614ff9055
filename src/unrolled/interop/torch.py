"""PyTorch ↔ unrolled: ``from_torch``, ``to_torch``, ``load_torch_state``, ``from_torch_state``.

The conversion table (PyTorch names on the left; ``H`` units, ``F`` input features; one row
per direction ``d`` — ``l{k}`` forward, ``l{k}_reverse`` backward — of layer ``k``)::

    Keras weight               PyTorch parameter(s)                  how
    kernel (F, G*H)            weight_ih_l{k} (G*H, F)               gate blocks reordered, transposed
    recurrent_kernel (H, G*H)  weight_hh_l{k} (G*H, H)               gate blocks reordered, transposed
    bias (G*H,)  RNN, LSTM     bias_ih_l{k} + bias_hh_l{k}           summed (to torch: b_ih = bias, b_hh = 0)
    bias (2, 3H) GRU           [bias_ih_l{k}; bias_hh_l{k}]          rows stacked, gate blocks reordered
    Dense kernel (F, U)        Linear weight (U, F)                  transposed
    Dense bias (U,)            Linear bias (U,)                      as is
    Embedding embeddings       Embedding weight                      as is

Gate blocks (``GATE_ORDER``): LSTM PyTorch i,f,g,o = Keras i,f,c,o (no reorder); GRU
PyTorch r,z,n → Keras z,r,h (blocks 1, 0, 2). PyTorch's GRU is Keras's ``reset_after=True``
(``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``); ``reset_after=False`` has no PyTorch
equivalent and is refused. ``h' = (1 - z) * n + z * h`` in both.

Shapes and outputs: unrolled is batch-major, ``(batch, time, features)``. A recurrent module
converts to layers with ``return_sequences=True`` whose output equals PyTorch's ``output``
(the first element of its tuple); with ``batch_first=False`` transpose the input
(``x.transpose(1, 0, 2)``). ``num_layers > 1`` becomes a stack of layers, ``bidirectional``
a ``Bidirectional`` (``merge_mode="concat"``). Inside ``nn.Sequential`` a recurrent module
hands its ``output`` to the next module. ``dropout > 0`` acts in training only and is
dropped with a warning; ``proj_size > 0`` is refused.

``to_torch`` returns modules whose ``forward`` takes batch-major input and returns what the
unrolled layer returns (last step or sequence, ``go_backwards`` order, merge mode applied).

Conv1d, pooling, padding, BatchNorm1d, LayerNorm, the activation modules and
MultiheadAttention: ``torch_layers.py`` (PyTorch → unrolled, with the channels-first /
channels-last rules) and ``torch_layer_modules.py`` (unrolled → PyTorch). State dicts of one
module or of a whole model (embedding, recurrent module, Linear head): ``torch_state.py``;
the ``.pt`` files ``unrolled convert`` writes (Keras config + state_dict):
``torch_checkpoint.py``.
"""
import warnings

import numpy as np

from ..layers import (Activation, Bidirectional, Dense, Dropout, Embedding, Flatten, Input,
                      MultiHeadAttention, Permute)
from ..models import Model, Sequential
from .gates import GATE_ORDER, GATES, KERAS_CLASS
from .gates import reorder_blocks as _blocks
TORCH_ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu", "Sigmoid": "sigmoid", "Identity": "linear",
                     "Hardsigmoid": "hard_sigmoid", "Softmax": "softmax"}


def _copy(dst, src, what):
    """One weight copy, its shape and kind checked (a ValueError, not an assert that
    ``python -O`` drops)."""
    src = np.asarray(src)
    if src.dtype.kind not in "biuf":
        raise ValueError(f"{what}: the weight has dtype {src.dtype}; expected real numbers.")
    if dst.shape != src.shape:
        raise ValueError(f"{what}: expected a weight of shape {dst.shape}, got {src.shape}.")
    return src.astype(np.float32)


# --- PyTorch → unrolled ----------------------------------------------------------------------
def _keras_weights(kind, p, sfx, use_bias):
    """Keras [kernel, recurrent_kernel, (bias)] from PyTorch arrays ``p`` for one direction."""
    order = GATE_ORDER[kind]
    out = [_blocks(p[f"weight_ih{sfx}"], kind, order).T,            # kernel = W_ih^T, reordered
           _blocks(p[f"weight_hh{sfx}"], kind, order).T]            # recurrent_kernel = W_hh^T
    if use_bias:
        b_ih = _blocks(p[f"bias_ih{sfx}"], kind, order)
        b_hh = _blocks(p[f"bias_hh{sfx}"], kind, order)
        out.append(np.stack([b_ih, b_hh]) if kind == "GRU" else b_ih + b_hh)
    return out


def recurrent_from_arrays(kind, p, num_layers, bidirectional, use_bias, nonlinearity="tanh",
                          last=None):
    """The unrolled layers for a PyTorch RNN/LSTM/GRU given its parameters as NumPy arrays.

    ``last`` (``return_sequences``, ``go_backwards``, ``merge_mode``) sets the last layer's
    options, for modules made by ``to_torch``; by default PyTorch's ``output`` is returned.
    """
    layers = []
    for k in range(num_layers):
        seq, backwards, merge = last if last and k == num_layers - 1 else (True, False, "concat")
        kw = {"return_sequences": seq, "use_bias": use_bias, "go_backwards": backwards}
        if kind == "RNN":
            kw["activation"] = nonlinearity
        units = p[f"weight_hh_l{k}"].shape[1]
        layer = KERAS_CLASS[kind](units, **kw)
        if bidirectional:
            layer = Bidirectional(layer, merge_mode=merge)
        f_in = p[f"weight_ih_l{k}"].shape[1]
        layer.build((None, None, f_in))
        weights = _keras_weights(kind, p, f"_l{k}", use_bias)
        if bidirectional:
            weights += _keras_weights(kind, p, f"_l{k}_reverse", use_bias)
        layer.set_weights([_copy(w, v, f"{kind} layer {k}") for w, v in
                           zip(layer.get_weights(), weights)])
        layers.append(layer)
    return layers


def _module_arrays(module):
    return {k: tensor_array(k, v, type(module).__name__) for k, v in module.state_dict().items()}


def tensor_array(name, t, where):
    """A state tensor as a NumPy array. float16 and bfloat16 (which NumPy lacks) become
    float32, exactly; sparse, quantized, complex and data-less (meta) tensors are refused
    with ``ModelFileError``: densifying a sparse tensor could allocate whatever size it
    declares, and a complex weight would lose its imaginary part."""
    import torch

    from ..io.safety import ModelFileError
    kind = ("sparse" if t.layout != torch.strided else "quantized" if t.is_quantized else
            "complex" if t.is_complex() else "meta (no data)" if t.is_meta else None)
    if kind is not None:
        raise ModelFileError(f"{where}: tensor {name!r} is {kind} ({t.dtype}, {t.layout}); "
                             "unrolled reads dense real-valued weights only.")
    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    try:
        return t.numpy()
    except TypeError:                     # float8, uint1..7, ...: no NumPy dtype
        raise ModelFileError(f"{where}: tensor {name!r} has dtype {t.dtype}, which NumPy "
                             "cannot hold; unrolled reads float, integer and bool tensors "
                             "(float16 and bfloat16 are widened to float32).") from None


def _convert_module(module, layout=None):
    """A list of unrolled layers for one torch module; ``layout`` (``torch_layers.Layout``)
    follows an ``nn.Sequential``'s data from module to module."""
    from . import torch_layers

    layout = torch_layers.Layout() if layout is None else layout
    kind = type(module).__name__
    if kind in GATES or kind == "KerasRecurrent":
        layout.last_axis(kind, 3)
    elif kind == "Linear":                      # first in a chain: (N, in_features) input
        layout.last_axis(kind, layout.rank or 2)
    elif kind == "Softmax":
        layout.last_axis(kind)
    elif kind == "Embedding":
        layout.last_axis(kind, (layout.rank or 2) + 1)
    if kind in GATES:
        if getattr(module, "proj_size", 0):
            raise ValueError("nn.LSTM with proj_size > 0 has no Keras equivalent (Keras LSTMs "
                             "have no projection); it cannot be converted.")
        if module.dropout:
            warnings.warn(f"nn.{kind}(dropout={module.dropout}): dropout between layers acts in "
                          "training only and is not carried over; inference is unchanged.")
        nonlin = getattr(module, "nonlinearity", "tanh")
        return recurrent_from_arrays(kind, _module_arrays(module), module.num_layers,
                                     module.bidirectional, module.bias, nonlin)
    if kind == "KerasRecurrent":                             # made by to_torch
        rnn = module.rnn
        return recurrent_from_arrays(
            type(rnn).__name__, _module_arrays(rnn), 1, rnn.bidirectional, rnn.bias,
            getattr(rnn, "nonlinearity", "tanh"),
            (module.return_sequences, module.go_backwards, module.merge_mode))
    if kind == "Linear":
        layer = Dense(module.out_features, use_bias=module.bias is not None)
        layer.build((None, module.in_features))
        w = _module_arrays(module)
        values = [w["weight"].T] + ([w["bias"]] if module.bias is not None else [])
        layer.set_weights([_copy(a, b, "Linear") for a, b in zip(layer.get_weights(), values)])
        return [layer]
    if kind == "Embedding":
        if module.max_norm is not None:
            raise ValueError("nn.Embedding(max_norm=...) renormalizes rows in forward; Keras's "
                             "Embedding does not, so it cannot be converted.")
        layer = Embedding(module.num_embeddings, module.embedding_dim)
        layer.build(None)
        layer.set_weights([_copy(layer.embeddings.value, _module_arrays(module)["weight"],
                                 "Embedding")])
        return [layer]
    if kind in TORCH_ACTIVATIONS and TORCH_ACTIVATIONS[kind]:
        if kind == "Softmax" and module.dim not in (-1, None):
            raise ValueError("nn.Softmax converts only with dim=-1 (Keras's axis).")
        return [Activation(TORCH_ACTIVATIONS[kind])]
    if kind == "Flatten":
        if module.start_dim != 1 or module.end_dim != -1:
            raise ValueError("nn.Flatten converts with start_dim=1, end_dim=-1 only.")
        # after channels-first modules PyTorch flattens (N, C, L) channel by channel:
        # unrolled's (N, L, C) is transposed first, so a following Linear reads the same order
        first = layout.state == "first"
        layout.state, layout.rank = "last", 2
        return ([Permute((2, 1))] if first else []) + [Flatten()]
    if kind == "Dropout":
        return [Dropout(module.p)]
    if kind == "Sequential":
        return [l for m in module for l in _convert_module(m, layout)]
    layers = torch_layers.from_module(module, lambda: _module_arrays(module), layout)
    if layers is not None:
        return layers
    raise ValueError(f"Cannot convert torch module {kind}; supported: RNN, LSTM, GRU, Linear, "
                     "Embedding, Conv1d, MaxPool1d, AvgPool1d, ConstantPad1d, ZeroPad1d, "
                     "BatchNorm1d, LayerNorm, MultiheadAttention, Tanh, ReLU, LeakyReLU, ELU, "
                     "PReLU, GELU, SiLU, Mish, Softplus, Softsign, SELU, Sigmoid, Hardsigmoid, "
                     "Softmax, Identity, Flatten, Dropout, nn.Sequential of them, and the "
                     "modules to_torch writes (KerasRecurrent, ChannelsLast, "
                     "KerasMultiheadAttention).")


def _modules(module):
    """The modules of a chain in order, to_torch's wrappers opened."""
    if type(module).__name__ in ("Sequential", "ChannelsLast"):
        return [m for sub in (module.body if hasattr(module, "body") else module)
                for m in _modules(sub)]
    return [getattr(module, "rnn", getattr(module, "mha", module))]


def _first_module(module):
    """The first module of a chain that tells the input size (padding, pooling and
    activations keep the channels)."""
    mods = _modules(module)
    return next((m for m in mods if type(m).__name__ in (
        "Embedding", "Linear", "LayerNorm", "RNN", "LSTM", "GRU", "Conv1d", "BatchNorm1d",
        "MultiheadAttention")), mods[0])


def _default_input_shape(first):
    """The unrolled Input shape a chain starting with ``first`` takes (channels-last)."""
    kind = type(first).__name__
    if kind == "Embedding":
        return (None,)
    if kind == "Linear":
        return (first.in_features,)
    size = next((getattr(first, a) for a in ("input_size", "in_channels", "num_features",
                                               "embed_dim") if hasattr(first, a)), None)
    if size is None and kind == "LayerNorm":
        size = first.normalized_shape[-1]
    if size is None:
        raise ValueError(f"from_torch cannot tell the input size of a chain starting with "
                         f"nn.{kind}; pass input_shape= (without the batch axis, "
                         "channels-last, e.g. (None, channels)).")
    return (None, size)


def from_torch(module, input_shape=None):
    """unrolled equivalent of a torch module: one layer, or a ``Sequential`` model.

    ``input_shape`` (without the batch axis) fixes a Sequential model's Input; by default it
    is ``(None, input_size)`` for a recurrent first module, ``(None,)`` integer ids for an
    Embedding, ``(in_features,)`` for a Linear and ``(None, channels)`` for a Conv1d,
    BatchNorm1d, LayerNorm or MultiheadAttention (which a bare BatchNorm1d, LayerNorm or
    PReLU is also built for: pass ``input_shape=(features,)`` for ``(N, C)`` data).

    Channels-first modules (Conv1d, pooling, padding, BatchNorm1d on (N, C, L)) become
    channels-last layers: where PyTorch's data is ``(N, C, L)``, unrolled's is
    ``(N, L, C)``, so a chain that starts (ends) channels-first takes (gives) the transpose
    of PyTorch's input (output). A MultiheadAttention in a chain attends to itself.
    """
    from . import torch_layers

    shape = None if input_shape is None else tuple(input_shape)
    layers = _convert_module(module, torch_layers.Layout(None if shape is None else len(shape) + 1))
    if len(layers) == 1 and type(module).__name__ != "Sequential":
        return layers[0]
    first = _first_module(module)
    dtype = "int64" if type(first).__name__ == "Embedding" else None
    inp = Input(shape=shape or _default_input_shape(first), dtype=dtype)
    if not any(isinstance(l, MultiHeadAttention) for l in layers):
        return Sequential([inp] + layers)
    x = inp
    for layer in layers:                               # self-attention: mha(x, x)
        x = (layer(x, x, use_causal_mask=getattr(layer, "_torch_causal", False))
             if isinstance(layer, MultiHeadAttention) else layer(x))
    return Model(inp, x)


def torch_load(path):
    """The object in a ``.pt`` file, via ``torch.load(weights_only=True)`` only: tensors and
    plain containers, no code. ``ModelFileError`` when torch cannot read it so."""
    from ..io.safety import ModelFileError, read_file

    try:
        import torch
    except ImportError:
        raise ImportError("Reading a PyTorch state file needs torch: the file is a pickle, which "
                          "unrolled opens only through torch.load(weights_only=True). Install "
                          "torch, or convert the file where torch is installed.") from None
    read_file(path)                                         # exists, not empty, not huge
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:                                  # torch raises many kinds here
        raise ModelFileError(f"{path!r} is not a PyTorch state file torch can read with "
                             f"weights_only=True ({type(e).__name__}: {str(e)[:300]}).") from None


STATE_KEYS = ("state_dict", "model_state_dict", "model")     # checkpoint dicts people save


def state_of(obj, path):
    """The ``{name: np.ndarray}`` state in what ``torch_load`` returned: a state dict, or a
    checkpoint dict holding one under ``state_dict``, ``model_state_dict`` or ``model`` (its
    other entries — epoch, optimizer state — do not change the model and are not read)."""
    import torch

    from ..io.safety import ModelFileError
    if isinstance(obj, dict) and not all(torch.is_tensor(v) for v in obj.values()):
        found = [k for k in STATE_KEYS if isinstance(obj.get(k), dict)]
        if len(found) > 1:
            raise ModelFileError(f"{path!r} is a checkpoint with several state dicts "
                                 f"({found}); unrolled does not guess which is the model.")
        obj = obj[found[0]] if found else obj
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ModelFileError(f"{path!r} holds a {type(obj).__name__}, not a state_dict (a dict "
                             f"of tensors, or a checkpoint dict with one under "
                             f"{' or '.join(map(repr, STATE_KEYS))}).")
    return {k: tensor_array(k, v, repr(path)) for k, v in obj.items()}


def load_torch_state(path):
    """A PyTorch ``state_dict`` file as ``{name: np.ndarray}``, via ``torch.load(weights_only=True)``.

    A ``.pt`` file is a pickle; unrolled never unpickles by itself. Only torch's restricted
    ``weights_only`` loader (tensors and plain containers, no code) reads it, so torch must be
    installed; without it this raises ImportError. Tensors saved on a GPU load on the CPU.
    A model written by ``unrolled convert`` (``torch_checkpoint``) is read with
    ``load_torch_model``.
    """
    from ..io.safety import ModelFileError
    from .torch_checkpoint import is_checkpoint

    obj = torch_load(path)
    if is_checkpoint(obj):
        raise ModelFileError(f"{path!r} holds a whole model written by unrolled (its Keras "
                             "config beside the state_dict); read it with "
                             "unrolled.interop.load_torch_model.")
    return state_of(obj, path)


def recurrent_spec(state, kind=None):
    """``(kind, input_size, hidden_size, num_layers, bidirectional, bias)`` of a recurrent
    module's state dict, read from its keys and shapes; None if it is not recurrent."""
    if any(k.startswith("weight_hr") for k in state):
        raise ValueError("This LSTM state has proj_size > 0 (weight_hr_l*), which Keras lacks.")
    if "weight_ih_l0" not in state:
        return None
    ih, hh = np.shape(state["weight_ih_l0"]), np.shape(state.get("weight_hh_l0"))
    if len(ih) != 2 or len(hh) != 2 or hh[1] == 0 or hh[0] != ih[0] or ih[0] % hh[1]:
        raise ValueError(f"weight_ih_l0 {ih} and weight_hh_l0 {hh} are not the (G*H, F) and "
                         "(G*H, H) weights of a PyTorch RNN, LSTM or GRU.")
    inferred = {blocks: kind for kind, blocks in GATES.items()}.get(ih[0] // hh[1])
    if inferred is None:
        raise ValueError(f"weight_ih_l0 has {ih[0]} rows for {hh[1]} units: {ih[0] // hh[1]} "
                         "gate blocks, not 1 (RNN), 4 (LSTM) or 3 (GRU).")
    if kind is not None and kind != inferred:
        raise ValueError(f"The state's shapes say {inferred}, not {kind}.")
    num_layers = len([k for k in state if k.startswith("weight_ih_l") and "reverse" not in k])
    bidirectional, bias = "weight_ih_l0_reverse" in state, "bias_ih_l0" in state
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    missing = [f"{n}_l{k}{d}" for k in range(num_layers) for d in ("", "_reverse")[:1 + bidirectional]
               for n in names if f"{n}_l{k}{d}" not in state]
    if missing:
        raise ValueError(f"The {inferred} state of {num_layers} layer(s) lacks {missing}.")
    odd = [f"{k} {np.shape(v)}" for k, v in state.items() if k.split("_l")[0] in names
           and np.ndim(v) != (2 if k.startswith("weight") else 1)]
    if odd:
        raise ValueError(f"These {inferred} weights have the wrong number of dimensions "
                         f"(weights 2, biases 1): {odd}.")
    return inferred, ih[1], hh[1], num_layers, bidirectional, bias


def to_torch(layer_or_model):
    """A torch module computing what the unrolled layer or Sequential/chain model computes."""
    from .torch_modules import to_torch as _to_torch

    return _to_torch(layer_or_model)


from .torch_state import from_torch_state  # noqa: E402  (public here too)

__all__ = ["from_torch", "to_torch", "load_torch_state", "from_torch_state", "GATE_ORDER"]
