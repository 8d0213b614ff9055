"""``to_torch``: unrolled layers and models as torch modules (the table is in ``torch.py``).

``KerasRecurrent`` wraps one ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (``batch_first=True``) and
returns what the Keras layer returns: the sequence or the last output, in ``go_backwards``
processing order, with a Bidirectional merge mode applied. torch is imported inside.
"""
import numpy as np

from ..layers import registry
from .gates import GATE_ORDER
from .gates import reorder_blocks as _blocks

_CACHE = {}


def _recurrent_class():
    if "KerasRecurrent" in _CACHE:
        return _CACHE["KerasRecurrent"]
    import torch
    from torch import nn

    class KerasRecurrent(nn.Module):
        """A torch recurrent module run as the unrolled/Keras layer runs (batch-major)."""

        def __init__(self, rnn, return_sequences, go_backwards=False, merge_mode="concat"):
            super().__init__()
            self.rnn = rnn
            self.return_sequences = return_sequences
            self.go_backwards = go_backwards
            self.merge_mode = merge_mode

        def forward(self, x):
            if self.go_backwards:
                x = torch.flip(x, [1])              # processing order, as Keras returns it
            out, h = self.rnn(x)
            h = h[0] if isinstance(h, tuple) else h
            if not self.rnn.bidirectional:
                return out if self.return_sequences else h[-1]
            units = self.rnn.hidden_size
            y, y_rev = (out[..., :units], out[..., units:]) if self.return_sequences else (h[-2], h[-1])
            if self.merge_mode == "concat":
                return torch.cat([y, y_rev], dim=-1)
            if self.merge_mode == "sum":
                return y + y_rev
            if self.merge_mode == "ave":
                return (y + y_rev) / 2
            return y * y_rev

    _CACHE["KerasRecurrent"] = KerasRecurrent
    return KerasRecurrent


def _activation(layer):
    from torch import nn

    from .torch_layer_modules import TO_TORCH_ACTS as acts
    name = layer.activation.name
    if name == "linear":
        return None
    if name == "softmax":
        return nn.Softmax(dim=-1)
    if name == "leaky_relu":                    # by name: Keras's default slope 0.2
        return nn.LeakyReLU(0.2)
    if name not in acts:                  # e.g. hard_sigmoid_keras2: Hardsigmoid is x/6 + 1/2
        raise ValueError(f"Layer '{layer.name}': activation {name!r} has no PyTorch module "
                         f"here; convertible: linear, softmax, leaky_relu, {', '.join(acts)}.")
    return getattr(nn, acts[name])()


def _assign(param, value, what):
    import torch

    value = np.ascontiguousarray(value, dtype=np.float32)
    assert tuple(param.shape) == value.shape, f"{what}: expected {tuple(param.shape)}, got {value.shape}"
    with torch.no_grad():
        param.copy_(torch.from_numpy(value))


def _torch_weights(kind, weights, use_bias):
    """PyTorch arrays for one direction from Keras [kernel, recurrent_kernel, (bias)]."""
    order = GATE_ORDER[kind]
    inverse = [order.index(i) for i in range(len(order))]      # torch block i = Keras block inverse[i]
    out = {"weight_ih": _blocks(weights[0].T, kind, inverse),     # W_ih = kernel^T, reordered
           "weight_hh": _blocks(weights[1].T, kind, inverse)}     # W_hh = recurrent_kernel^T
    if use_bias:
        bias = weights[2]
        if kind == "GRU":                                         # rows [input bias, recurrent bias]
            out["bias_ih"], out["bias_hh"] = (_blocks(bias[0], kind, inverse),
                                              _blocks(bias[1], kind, inverse))
        else:                                                     # one bias: all of it in b_ih
            out["bias_ih"], out["bias_hh"] = _blocks(bias, kind, inverse), np.zeros_like(bias)
    return out


def _kind(layer):
    cell = type(layer.cell).__name__
    entry = registry.of_cell(layer.cell)
    kind = entry and entry.torch
    if kind is None:
        raise ValueError(f"Layer '{layer.name}' has a {cell}; only SimpleRNN, LSTM and GRU cells "
                         "convert to PyTorch.")
    c = layer.cell
    if kind == "GRU" and not c.reset_after:
        raise ValueError(f"GRU '{layer.name}' has reset_after=False: the reset gate multiplies "
                         "h before the recurrent product, while PyTorch's GRU (cuDNN's form) "
                         "applies it after. There is no equivalent PyTorch module.")
    allowed = ("tanh", "relu") if kind == "RNN" else ("tanh",)
    rec = getattr(c, "recurrent_activation", None)
    if c.activation.name not in allowed or (rec is not None and rec.name != "sigmoid"):
        raise ValueError(f"Layer '{layer.name}': PyTorch's {kind} has fixed activations "
                         f"({'/'.join(allowed)}, recurrent sigmoid); this layer uses others.")
    if layer.return_state or layer.stateful:
        raise ValueError(f"Layer '{layer.name}': return_state and stateful do not convert.")
    return kind


def _recurrent(layer):
    from torch import nn

    bidi = type(layer).__name__ == "Bidirectional"
    subs = [layer.forward_layer, layer.backward_layer] if bidi else [layer]
    kind = _kind(subs[0])
    if bidi and (_kind(subs[1]) != kind or subs[1].cell.units != subs[0].cell.units
                 or subs[1].cell.use_bias != subs[0].cell.use_bias):
        raise ValueError(f"Bidirectional '{layer.name}': both directions must be the same "
                         "kind of layer with the same units to become one PyTorch module.")
    if bidi and layer.merge_mode is None:
        raise ValueError(f"Bidirectional '{layer.name}' has merge_mode=None (two outputs).")
    cell = subs[0].cell
    f_in = cell.kernel.value.shape[0]
    kwargs = {"batch_first": True, "bias": cell.use_bias, "bidirectional": bidi}
    if kind == "RNN":
        kwargs["nonlinearity"] = cell.activation.name
    rnn = getattr(nn, kind)(f_in, cell.units, **kwargs)
    for sub, sfx in zip(subs, ["_l0", "_l0_reverse"]):
        for name, value in _torch_weights(kind, sub.get_weights(), cell.use_bias).items():
            _assign(getattr(rnn, name + sfx), value, f"{layer.name} {name}{sfx}")
    return _recurrent_class()(rnn, layer.return_sequences, False if bidi else layer.go_backwards,
                              layer.merge_mode if bidi else "concat")


def _layer_modules(layer, call_kwargs=None):
    from torch import nn

    from .torch_layer_modules import layer_modules
    name = type(layer).__name__
    companion = layer_modules(layer, _activation, call_kwargs)
    if companion is not None:
        return companion
    if name == "TimeDistributed" and type(layer.layer).__name__ == "Dense":
        return _layer_modules(layer.layer)                  # Linear acts on the last axis anyway
    if name == "Dense":
        w = layer.get_weights()
        lin = nn.Linear(w[0].shape[0], w[0].shape[1], bias=layer.use_bias)
        _assign(lin.weight, w[0].T, f"{layer.name} weight")   # Linear weight = kernel^T
        if layer.use_bias:
            _assign(lin.bias, w[1], f"{layer.name} bias")
        act = _activation(layer)
        return [lin] + ([act] if act is not None else [])
    if name == "Embedding":
        if layer.mask_zero:
            raise ValueError(f"Embedding '{layer.name}' has mask_zero=True; masks do not convert.")
        emb = nn.Embedding(layer.input_dim, layer.output_dim)
        _assign(emb.weight, layer.get_weights()[0], f"{layer.name} weight")
        return [emb]
    if name == "Activation":
        act = _activation(layer)
        return [act if act is not None else nn.Identity()]
    if name == "Flatten":
        return [nn.Flatten()]
    if name == "Dropout":
        return [nn.Dropout(layer.rate)]
    if hasattr(layer, "cell") or name == "Bidirectional":
        return [_recurrent(layer)]
    raise ValueError(f"Layer '{layer.name}' ({name}) does not convert to PyTorch; supported: "
                     "Dense, TimeDistributed(Dense), Embedding, Activation, Flatten, Dropout, "
                     "SimpleRNN, LSTM, GRU, RNN(cell), Bidirectional, Conv1D, MaxPooling1D, "
                     "AveragePooling1D, ZeroPadding1D, BatchNormalization, LayerNormalization, "
                     "ReLU, LeakyReLU, PReLU, ELU, Softmax, MultiHeadAttention.")


def to_torch(obj):
    """A torch module for an unrolled layer, Sequential, or single-chain functional model."""
    from torch import nn

    if hasattr(obj, "_nodes"):                              # a model
        nodes = obj._nodes
        for a, b in zip(nodes, nodes[1:]):
            # one input, or one tensor passed several times (self-attention: mha(x, x))
            if len({id(t) for t in b.flat_inputs}) != 1 or b.flat_inputs[0].node is not a:
                raise ValueError(f"Model '{obj.name}' is not a single chain of layers; only "
                                 "chains convert to nn.Sequential.")
        if len(obj.inputs) != 1 or len(obj.outputs) != 1:
            raise ValueError(f"Model '{obj.name}' must have one input and one output.")
        modules = [m for node in nodes for m in _layer_modules(node.layer, node.kwargs)]
        return nn.Sequential(*modules).eval()
    modules = _layer_modules(obj)
    return (modules[0] if len(modules) == 1 else nn.Sequential(*modules)).eval()

