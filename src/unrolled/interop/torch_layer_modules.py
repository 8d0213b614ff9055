"""``to_torch`` for the layers beside the recurrent ones: unrolled → PyTorch modules (the
weight table and the layout rules are in ``torch_layers.py``). Channels-first PyTorch
modules are wrapped in ``ChannelsLast``, so each module takes and gives ``(N, T, C)`` as the
unrolled layer does. torch is imported inside the functions.
"""
import numpy as np

# Keras activation name -> torch module name (``to_torch`` of Dense, Conv1D, Activation)
TO_TORCH_ACTS = {"tanh": "Tanh", "relu": "ReLU", "sigmoid": "Sigmoid",
                 "hard_sigmoid": "Hardsigmoid", "swish": "SiLU", "silu": "SiLU", "mish": "Mish",
                 "softsign": "Softsign", "selu": "SELU", "elu": "ELU", "gelu": "GELU",
                 "softplus": "Softplus", "relu6": "ReLU6"}


# --- unrolled → PyTorch -----------------------------------------------------------------------
_CLASSES = {}


def torch_classes():
    """The torch modules ``to_torch`` writes around PyTorch's own (made once torch is
    imported): ``ChannelsLast``, ``SamePad1d``, ``SameAvgPool1d``, ``KerasMultiheadAttention``."""
    if _CLASSES:
        return _CLASSES
    import torch
    import torch.nn.functional as F
    from torch import nn

    def same_pads(steps, span, stride):
        out = -(-steps // stride)                 # TensorFlow's 'same': ceil(L / s) outputs
        total = max((out - 1) * stride + span - steps, 0)
        return total // 2, total - total // 2     # the extra step on the right

    class ChannelsLast(nn.Module):
        """Channels-first modules run on ``(N, T, C)``: ``body(x^T)^T``."""

        def __init__(self, *modules):
            super().__init__()
            self.body = nn.Sequential(*modules)

        def forward(self, x):
            return self.body(x.transpose(1, 2)).transpose(1, 2)

    class SamePad1d(nn.Module):
        """TensorFlow's ``same`` padding of ``(N, C, L)`` for a window spanning ``span`` steps
        at ``stride`` (it depends on L when the stride is above 1): zeros, or -inf before a
        max pooling."""

        def __init__(self, span, stride, value=0.0):
            super().__init__()
            self.span, self.stride, self.value = span, stride, value

        def forward(self, x):
            return F.pad(x, same_pads(x.shape[-1], self.span, self.stride), value=self.value)

    class SameAvgPool1d(nn.Module):
        """Keras's ``same`` average pooling: the mean of each window's real steps (the
        padding is not counted), as ``sum(window) / count(window)``."""

        def __init__(self, size, stride):
            super().__init__()
            self.size, self.stride = size, stride

        def forward(self, x):
            pads = same_pads(x.shape[-1], self.size, self.stride)
            ones = F.pad(torch.ones_like(x[:, :1]), pads)
            total = F.avg_pool1d(F.pad(x, pads), self.size, self.stride)
            return total / F.avg_pool1d(ones, self.size, self.stride)

    class KerasMultiheadAttention(nn.Module):
        """``nn.MultiheadAttention(batch_first=True)`` called in Keras's order,
        ``forward(query, value=query, key=value)``, returning the attention output only;
        ``causal`` is Keras's ``use_causal_mask=True``."""

        def __init__(self, mha, causal=False):
            super().__init__()
            self.mha, self.causal = mha, causal

        def forward(self, query, value=None, key=None):
            value = query if value is None else value
            key = value if key is None else key
            mask = None
            if self.causal:                      # True = not allowed: key j > query i
                mask = torch.ones(query.shape[1], key.shape[1], dtype=torch.bool,
                                  device=query.device).triu(1)
            return self.mha(query, key, value, need_weights=False, attn_mask=mask)[0]

    _CLASSES.update(ChannelsLast=ChannelsLast, SamePad1d=SamePad1d,
                    SameAvgPool1d=SameAvgPool1d, KerasMultiheadAttention=KerasMultiheadAttention)
    return _CLASSES


def ChannelsLast(*modules):
    """``ChannelsLast(nn.Conv1d(...), nn.ReLU(), ...)``: channels-first torch modules that
    take and give ``(N, T, C)``, as ``to_torch`` writes them; ``from_torch`` reads them."""
    return torch_classes()["ChannelsLast"](*modules)


def _assign(param, value, what):
    from .torch_modules import _assign as assign
    assign(param, value, what)


def _fixed(param, value):
    """A torch parameter Keras does not have (``center``/``scale`` off): set and frozen."""
    import torch
    with torch.no_grad():
        param.fill_(value)
    param.requires_grad_(False)


def _conv_modules(layer):
    from torch import nn
    k, cg, filters = layer.kernel.value.shape
    s, d = layer.strides[0], layer.dilation_rate[0]
    span = d * (k - 1)
    same1 = layer.padding == "same" and s == 1
    conv = nn.Conv1d(cg * layer.groups, filters, k, stride=s, dilation=d, groups=layer.groups,
                     bias=layer.use_bias, padding="same" if same1 else 0)
    _assign(conv.weight, layer.kernel.value.transpose(2, 1, 0), f"{layer.name} weight")
    if layer.use_bias:
        _assign(conv.bias, layer.bias.value, f"{layer.name} bias")
    body = [conv]
    if layer.padding == "causal":                        # d(k-1) zeros on the left
        body.insert(0, nn.ConstantPad1d((span, 0), 0.0))
    elif layer.padding == "same" and not same1:
        body.insert(0, torch_classes()["SamePad1d"](span + 1, s))
    return body


def _pool_modules(layer):
    from torch import nn
    (p,), (s,) = layer.pool_size, layer.strides
    is_max = type(layer).__name__ == "MaxPooling1D"
    if layer.padding == "valid":
        return [nn.MaxPool1d(p, s) if is_max else nn.AvgPool1d(p, s)]
    if s == 1 and p % 2:                                 # symmetric: PyTorch's own padding
        return [nn.MaxPool1d(p, 1, p // 2) if is_max else
                nn.AvgPool1d(p, 1, p // 2, count_include_pad=False)]
    if is_max:
        return [torch_classes()["SamePad1d"](p, s, float("-inf")), nn.MaxPool1d(p, s)]
    return [torch_classes()["SameAvgPool1d"](p, s)]


def _norm_module(layer, kind):
    """``nn.BatchNorm1d`` or ``nn.LayerNorm`` for a built layer (its ``_spec``: rank, axis)."""
    from torch import nn
    rank, axes = layer._spec
    axis = list(axes)
    if len(axis) != 1 or axis[0] != rank - 1:
        raise ValueError(f"Layer '{layer.name}' normalizes axis {layer.axis} of rank-{rank} "
                         f"inputs; only the last axis converts to nn.{kind}.")
    c = axes[axis[0]]
    affine = layer.center or layer.scale
    if kind == "LayerNorm":
        if layer.rms_scaling:
            raise ValueError(f"LayerNormalization '{layer.name}' has rms_scaling=True "
                             "(x / sqrt(var + eps) gamma): no PyTorch module computes it.")
        m = nn.LayerNorm(c, eps=layer.epsilon, elementwise_affine=affine,
                         bias=affine and layer.center)
    else:
        if rank not in (2, 3):
            raise ValueError(f"BatchNormalization '{layer.name}' on rank-{rank} inputs: "
                             "nn.BatchNorm1d takes (N, C) or (N, C, L).")
        m = nn.BatchNorm1d(c, eps=layer.epsilon, momentum=1.0 - layer.momentum, affine=affine)
        _assign(m.running_mean, layer.moving_mean.value, f"{layer.name} running_mean")
        _assign(m.running_var, layer.moving_variance.value, f"{layer.name} running_var")
    if layer.scale:
        _assign(m.weight, layer.gamma.value, f"{layer.name} weight")
    elif affine:
        _fixed(m.weight, 1.0)
    if layer.center:
        _assign(m.bias, layer.beta.value, f"{layer.name} bias")
    elif affine and m.bias is not None:
        _fixed(m.bias, 0.0)
    return m, rank


def _prelu_modules(layer):
    from torch import nn
    alpha = layer.alpha.value
    rank = layer._param_shape[0]
    per_channel = alpha.shape[-1] > 1 and all(d == 1 for d in alpha.shape[:-1])
    if alpha.size != 1 and not per_channel:
        raise ValueError(f"PReLU '{layer.name}' has alpha of shape {alpha.shape}; nn.PReLU "
                         "has one weight, or one per channel (shared_axes = every axis but "
                         "the last).")
    m = nn.PReLU(alpha.size)
    _assign(m.weight, alpha.reshape(-1), f"{layer.name} weight")
    if per_channel and rank == 3:
        return [ChannelsLast(m)]
    if per_channel and rank != 2:
        raise ValueError(f"PReLU '{layer.name}' on rank-{rank} inputs does not convert.")
    return [m]


def _relu_module(layer):
    from torch import nn
    slope, top, thr = layer.negative_slope, layer.max_value, layer.threshold
    if thr == 0 and top is None:
        return nn.LeakyReLU(slope) if slope else nn.ReLU()
    if thr == 0 and slope == 0:
        return nn.Hardtanh(0.0, float(top))              # min(max(x, 0), max_value)
    raise ValueError(f"ReLU '{layer.name}' (max_value={top}, negative_slope={slope}, "
                     f"threshold={thr}) has no single PyTorch module.")


def _mha_module(layer, causal):
    from torch import nn
    wq, wk, wv = (layer._dense[n][0].value for n in ("query", "key", "value"))
    e, h, hd = wq.shape
    wo = layer._dense["attention_output"][0].value
    if layer.value_dim != hd or h * hd != e or wo.shape[2:] != (e,):
        raise ValueError(f"MultiHeadAttention '{layer.name}': nn.MultiheadAttention has "
                         "key_dim = value_dim = query features / num_heads and output "
                         f"features = query features; this layer has key_dim {hd}, value_dim "
                         f"{layer.value_dim}, {h} heads, {e} query features, output "
                         f"{wo.shape[2:]}.")
    if layer.sliding_window is not None:
        raise ValueError(f"MultiHeadAttention '{layer.name}' has a sliding_window; it does not "
                         "convert to PyTorch.")
    m = nn.MultiheadAttention(e, h, dropout=layer.dropout, bias=layer.use_bias,
                              kdim=wk.shape[0], vdim=wv.shape[0], batch_first=True)
    w = [x.reshape(x.shape[0], -1).T for x in (wq, wk, wv)]       # W = kernel^T, heads joined
    if m.in_proj_weight is not None:
        _assign(m.in_proj_weight, np.concatenate(w), f"{layer.name} in_proj_weight")
    else:
        for name, value in zip("qkv", w):
            _assign(getattr(m, f"{name}_proj_weight"), value, f"{layer.name} {name}_proj")
    _assign(m.out_proj.weight, wo.reshape(h * hd, e).T, f"{layer.name} out_proj.weight")
    if layer.use_bias:
        b = [layer._dense[n][1].value.reshape(-1) for n in ("query", "key", "value")]
        _assign(m.in_proj_bias, np.concatenate(b), f"{layer.name} in_proj_bias")
        _assign(m.out_proj.bias, layer._dense["attention_output"][1].value,
                f"{layer.name} out_proj.bias")
    return torch_classes()["KerasMultiheadAttention"](m, causal)


def layer_modules(layer, activation, call_kwargs=None):
    """Torch modules for one of this file's layers, or None when it is not one.
    ``activation(layer)``: the module for a layer's ``activation`` (torch_modules)."""
    from torch import nn
    name = type(layer).__name__
    if name == "Conv1D":
        act = activation(layer)
        return [ChannelsLast(*_conv_modules(layer))] + ([act] if act is not None else [])
    if name in ("MaxPooling1D", "AveragePooling1D"):
        return [ChannelsLast(*_pool_modules(layer))]
    if name == "ZeroPadding1D":
        return [ChannelsLast(nn.ConstantPad1d(tuple(layer.padding), 0.0))]
    if name == "BatchNormalization":
        m, rank = _norm_module(layer, "BatchNorm1d")
        return [ChannelsLast(m) if rank == 3 else m]
    if name == "LayerNormalization":
        return [_norm_module(layer, "LayerNorm")[0]]
    if name == "PReLU":
        return _prelu_modules(layer)
    if name == "ReLU":
        return [_relu_module(layer)]
    if name == "LeakyReLU":
        return [nn.LeakyReLU(layer.negative_slope)]
    if name == "ELU":
        return [nn.ELU(layer.alpha)]
    if name == "Softmax":
        if layer.axis not in (-1, [-1]):
            raise ValueError(f"Softmax '{layer.name}' (axis={layer.axis}) converts with "
                             "axis=-1 only.")
        return [nn.Softmax(dim=-1)]
    if name == "MultiHeadAttention":
        kw = call_kwargs or {}
        if kw.get("return_attention_scores"):
            raise ValueError(f"MultiHeadAttention '{layer.name}' returns attention scores; "
                             "only the attention output converts.")
        return [_mha_module(layer, bool(kw.get("use_causal_mask")))]
    return None
