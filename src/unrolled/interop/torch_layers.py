"""PyTorch ↔ unrolled for the layers beside the recurrent ones (issue 25): Conv1d, pooling,
padding, BatchNorm1d, LayerNorm, the activation modules and MultiheadAttention.

Layouts. unrolled is channels-last, ``(N, T, C)``; PyTorch's ``Conv1d``, ``MaxPool1d``,
``AvgPool1d``, ``ConstantPad1d``/``ZeroPad1d`` and ``BatchNorm1d`` (on 3-D input) are
channels-first, ``(N, C, L)``. Each becomes the channels-last unrolled layer computing the
same numbers on the transposed data: ``ours(x.transpose(0, 2, 1)) ==
torch(x).transpose(0, 2, 1)``. ``to_torch`` wraps the channels-first modules in
``ChannelsLast`` (transpose, modules, transpose back), so the generated module takes and
gives what the unrolled layer takes and gives. ``torch.py`` tracks, in an ``nn.Sequential``,
whether PyTorch's data is channels-first at each module (``Layout``). This file converts
PyTorch → unrolled; ``torch_layer_modules.py`` writes the torch modules (unrolled → PyTorch).

Weights::

    Conv1D kernel (k, C/G, F)             Conv1d weight (F, C/G, k)          axes reversed
    BatchNormalization gamma, beta,       BatchNorm1d weight, bias,          as is
        moving_mean, moving_variance          running_mean, running_var
    LayerNormalization gamma, beta        LayerNorm weight, bias             as is
    PReLU alpha (1, C) or (C,)            PReLU weight (C,)                  reshaped
    MultiHeadAttention query/kernel       in_proj_weight rows [0, E)         W^T to (E, H, E/H)
      (E, H, E/H), key/kernel, value/kernel  [E, 2E), [2E, 3E) (or q/k/v_proj_weight)
    query/bias (H, E/H) ...               in_proj_bias, split in three       reshaped
    attention_output/kernel (H, E/H, E)   out_proj.weight (E, E)             W^T reshaped

BatchNorm1d's ``momentum`` m is Keras's ``1 - momentum``. PyTorch updates ``running_var``
with the UNBIASED batch variance (divided by n - 1), Keras (and unrolled) with the biased one
(divided by n): converted layers compute the same outputs, in training (both normalize by
the biased batch variance) and at inference, but after training steps their moving
variances differ by ``(1 - momentum) * var * (1/(n-1))`` per step.
"""
import numpy as np

from ..layers import (ELU, Activation, AveragePooling1D, BatchNormalization, Conv1D,
                      LayerNormalization, LeakyReLU, MaxPooling1D, MultiHeadAttention,
                      PReLU, ZeroPadding1D)
from .torch_layer_modules import ChannelsLast, torch_classes  # noqa: F401  (public here too)

CHANNELS_FIRST = ("Conv1d", "MaxPool1d", "AvgPool1d", "ConstantPad1d", "ZeroPad1d")
# torch activation module -> Keras activation name (an ``Activation`` layer)
NAMED = {"SiLU": "silu", "Mish": "mish", "Softsign": "softsign", "SELU": "selu"}


class Layout:
    """Where PyTorch's data stands in a module chain: ``state`` is ``"start"`` (nothing seen),
    ``"first"`` (channels-first ``(N, C, L)``: unrolled holds the transpose) or ``"last"``
    (the layouts agree); ``rank`` the data's rank (None when unknown)."""

    def __init__(self, rank=None):
        self.state, self.rank = "start", rank

    def channels_first(self, kind):
        if self.state == "last":
            raise ValueError(
                f"nn.{kind} follows modules whose output PyTorch would read as (N, C, L) though "
                "its last axis holds the features; unrolled's layers are channels-last, so this "
                "chain has no equivalent. Wrap channels-first stages in "
                "unrolled.interop.torch_layers.ChannelsLast (to_torch writes them so).")
        self.state, self.rank = "first", 3

    def last_axis(self, kind, rank=None):
        if self.state == "first":
            raise ValueError(
                f"nn.{kind} acts on the last axis, which after channels-first modules is "
                "PyTorch's length axis (N, C, L); unrolled's data there is (N, L, C), so this "
                "chain has no equivalent (flatten first, or use ChannelsLast).")
        self.state = "last"
        if rank is not None:
            self.rank = rank

    def rank_or(self, default=3):
        return self.rank if self.rank is not None else default


def _set(layer, values, what):
    from .torch import _copy
    layer.set_weights([_copy(w, v, what) for w, v in zip(layer.get_weights(), values)])
    return layer


def _single(value, what, kind):
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(value) != 1:
        raise ValueError(f"nn.{kind}: {what}={value} is not one int.")
    return int(value[0])


# --- PyTorch → unrolled -----------------------------------------------------------------------
def conv_from_torch(m, w):
    """``nn.Conv1d`` → ``[Conv1D]`` (or ``[ZeroPadding1D, Conv1D]`` for an int padding that
    is not Keras's ``same``); the layer takes ``(N, L, C)``."""
    if m.padding_mode != "zeros":
        raise ValueError(f"nn.Conv1d(padding_mode={m.padding_mode!r}) has no Keras equivalent "
                         "(Keras pads with zeros).")
    k, s, d = m.kernel_size[0], m.stride[0], m.dilation[0]
    if s > 1 and d > 1:
        raise ValueError("nn.Conv1d with stride > 1 and dilation > 1: Keras's Conv1D refuses "
                         "that combination.")
    layers, span = [], d * (k - 1)
    if m.padding == "same" or (s == 1 and tuple(m.padding) == (span // 2,) and span % 2 == 0
                               and span):
        padding = "same"          # stride 1: d(k-1) zeros, the extra one on the right, as TF
    elif m.padding == "valid" or tuple(m.padding) == (0,):
        padding = "valid"
    else:
        p = _single(m.padding, "padding", "Conv1d")
        layers.append(ZeroPadding1D((p, p)))
        padding = "valid"
    conv = Conv1D(m.out_channels, k, strides=s, padding=padding, dilation_rate=d,
                  groups=m.groups, use_bias=m.bias is not None)
    conv.build((None, None, m.in_channels))
    values = [w["weight"].transpose(2, 1, 0)]            # (F, C/G, k) -> (k, C/G, F)
    if m.bias is not None:
        values.append(w["bias"])
    return layers + [_set(conv, values, "Conv1d")]


def pool_from_torch(m):
    """``nn.MaxPool1d``/``nn.AvgPool1d`` → ``MaxPooling1D``/``AveragePooling1D`` where the
    windows are Keras's: no padding (``valid``), or stride 1 with an odd window and padding
    ``k // 2`` (``same``; AvgPool1d then needs ``count_include_pad=False``)."""
    kind = type(m).__name__
    k = _single(m.kernel_size, "kernel_size", kind)
    s = _single(m.stride if m.stride is not None else k, "stride", kind)
    p = _single(m.padding, "padding", kind)
    if m.ceil_mode:
        raise ValueError(f"nn.{kind}(ceil_mode=True) has no Keras equivalent (Keras's windows "
                         "are 'valid' or TensorFlow's 'same').")
    if kind == "MaxPool1d":
        if _single(m.dilation, "dilation", kind) != 1 or m.return_indices:
            raise ValueError("nn.MaxPool1d with dilation > 1 or return_indices=True has no "
                             "Keras equivalent.")
    elif p and m.count_include_pad:
        raise ValueError("nn.AvgPool1d(padding > 0, count_include_pad=True) counts the padded "
                         "zeros; Keras's 'same' average does not. Use count_include_pad=False.")
    if p == 0:
        padding = "valid"
    elif s == 1 and k == 2 * p + 1:
        padding = "same"
    else:
        raise ValueError(f"nn.{kind}(kernel_size={k}, stride={s}, padding={p}): only padding 0 "
                         "('valid') or stride 1 with kernel_size = 2 padding + 1 ('same') have "
                         "Keras equivalents.")
    cls = MaxPooling1D if kind == "MaxPool1d" else AveragePooling1D
    return [cls(k, strides=s, padding=padding)]


def pad_from_torch(m):
    left, right = (int(v) for v in m.padding)
    if float(getattr(m, "value", 0.0)) != 0.0:
        raise ValueError(f"nn.ConstantPad1d(value={m.value}) has no Keras equivalent "
                         "(ZeroPadding1D pads with zeros).")
    if left < 0 or right < 0:
        raise ValueError("A negative padding (cropping) does not convert; use Cropping1D.")
    return [ZeroPadding1D((left, right))]


def batchnorm_from_torch(m, w, rank):
    if not m.track_running_stats or m.running_mean is None:
        raise ValueError("nn.BatchNorm1d(track_running_stats=False) normalizes with batch "
                         "statistics at inference too; Keras's BatchNormalization has no such "
                         "mode, so it cannot be converted.")
    if m.momentum is None:
        raise ValueError("nn.BatchNorm1d(momentum=None) (a cumulative average) has no Keras "
                         "equivalent; Keras uses an exponential moving average.")
    layer = BatchNormalization(axis=-1, momentum=1.0 - m.momentum, epsilon=m.eps,
                               center=m.affine, scale=m.affine)
    c = m.num_features
    layer.build((None,) * (rank - 1) + (c,))
    values = ([w["weight"], w["bias"]] if m.affine else []) + [w["running_mean"],
                                                               w["running_var"]]
    return [_set(layer, values, "BatchNorm1d")]


def layernorm_from_torch(m, w, rank):
    if len(m.normalized_shape) != 1:
        raise ValueError(f"nn.LayerNorm(normalized_shape={tuple(m.normalized_shape)}) "
                         "normalizes over several axes; only the last axis converts "
                         "(LayerNormalization(axis=-1)).")
    has_bias = m.elementwise_affine and m.bias is not None
    layer = LayerNormalization(axis=-1, epsilon=m.eps, center=has_bias,
                               scale=m.elementwise_affine)
    layer.build((None,) * (rank - 1) + (m.normalized_shape[0],))
    values = ([w["weight"]] if m.elementwise_affine else []) + ([w["bias"]] if has_bias else [])
    return [_set(layer, values, "LayerNorm")]


def prelu_from_torch(m, w, layout):
    """``nn.PReLU(num_parameters)``: one alpha for all, or one per channel (PyTorch's axis 1:
    the channels of (N, C, L) or the features of (N, C))."""
    n, rank = m.num_parameters, layout.rank_or(3)
    if n > 1 and rank == 3 and layout.state == "last":
        raise ValueError("nn.PReLU(num_parameters > 1) on (N, T, C) data applies its weights "
                         "along axis 1 (time); convert it inside a channels-first stretch, or "
                         "with num_parameters=1.")
    shared = list(range(1, rank)) if n == 1 else list(range(1, rank - 1))
    layer = PReLU(shared_axes=shared or None)
    layer.build((None,) * (rank - 1) + (n,))
    return [_set(layer, [w["weight"].reshape(layer.alpha.shape)], "PReLU")]


def activation_from_torch(m):
    kind = type(m).__name__
    if kind in NAMED:
        return [Activation(NAMED[kind])]
    if kind == "LeakyReLU":
        return [LeakyReLU(negative_slope=float(m.negative_slope))]
    if kind == "ELU":
        return [ELU(alpha=float(m.alpha))]
    if kind == "GELU":
        if m.approximate != "none":
            raise ValueError("nn.GELU(approximate='tanh'): Keras's layers call gelu with "
                             "approximate=False (the exact erf form) and have no option for the "
                             "tanh approximation; only nn.GELU() converts.")
        return [Activation("gelu")]
    if kind == "Softplus":
        if m.beta != 1:
            raise ValueError(f"nn.Softplus(beta={m.beta}): Keras's softplus has beta 1; only "
                             "beta=1 converts (its threshold only switches to the identity "
                             "where log(1 + e^x) = x in float32).")
        return [Activation("softplus")]
    return None


def mha_from_torch(m, arrays, causal=False):
    """``nn.MultiheadAttention(batch_first=True)`` → ``MultiHeadAttention(H, E/H)``; call it
    as ``mha(query, value, key)`` (Keras's order; PyTorch's is query, key, value). ``causal``
    (a ``KerasMultiheadAttention`` of ``to_torch``) is a call option in Keras: a chain calls
    the layer with ``use_causal_mask=True``; a bare layer must be called so."""
    if not m.batch_first:
        raise ValueError("nn.MultiheadAttention(batch_first=False) takes (L, N, E); unrolled's "
                         "MultiHeadAttention is batch-major. Build it with batch_first=True "
                         "(the same weights) to convert.")
    if m.bias_k is not None or m.add_zero_attn:
        raise ValueError("nn.MultiheadAttention(add_bias_kv=True or add_zero_attn=True) "
                         "appends keys Keras's MultiHeadAttention does not have; it cannot be "
                         "converted.")
    e, h = m.embed_dim, m.num_heads
    hd = e // h
    if m.in_proj_weight is not None:
        wq, wk, wv = np.split(arrays["in_proj_weight"], 3)
    else:
        wq, wk, wv = (arrays[f"{n}_proj_weight"] for n in "qkv")
    bias = m.in_proj_bias is not None
    layer = MultiHeadAttention(h, hd, use_bias=bias, dropout=float(m.dropout))
    layer.build([(None, None, e), (None, None, m.vdim), (None, None, m.kdim)])
    values = []
    biases = np.split(arrays["in_proj_bias"], 3) if bias else [None] * 3
    for wgt, b in zip((wq, wk, wv), biases):
        values.append(wgt.T.reshape(wgt.shape[1], h, hd))   # x W^T, columns split per head
        if bias:
            values.append(b.reshape(h, hd))
    values.append(arrays["out_proj.weight"].T.reshape(h, hd, e))
    if bias:
        values.append(arrays["out_proj.bias"])
    layer._torch_causal = causal
    return [_set(layer, values, "MultiheadAttention")]


def from_module(m, arrays, layout):
    """unrolled layers for one of this file's torch modules, or None when it is not one."""
    kind = type(m).__name__
    if kind in CHANNELS_FIRST:
        layout.channels_first(kind)
        if kind == "Conv1d":
            return conv_from_torch(m, arrays())
        return pad_from_torch(m) if "Pad" in kind else pool_from_torch(m)
    if kind == "BatchNorm1d":
        if layout.state == "last" and layout.rank == 3:
            raise ValueError("nn.BatchNorm1d on (N, T, C) data normalizes axis 1 (time) in "
                             "PyTorch; Keras normalizes the features. It converts on (N, C) "
                             "or channels-first (N, C, L) data.")
        if layout.rank_or(3) == 3:
            layout.channels_first(kind)              # 3-D data: PyTorch's is (N, C, L)
        return batchnorm_from_torch(m, arrays(), layout.rank_or(3))
    if kind == "LayerNorm":
        layout.last_axis(kind)
        return layernorm_from_torch(m, arrays(), layout.rank_or(3))
    if kind == "PReLU":
        layers = prelu_from_torch(m, arrays(), layout)
        if m.num_parameters > 1 and layout.rank_or(3) == 3:
            layout.channels_first(kind)
        return layers
    if kind == "MultiheadAttention":
        layout.last_axis(kind, 3)
        return mha_from_torch(m, arrays())
    if kind == "KerasMultiheadAttention":                  # made by to_torch
        layout.last_axis(kind, 3)
        return mha_from_torch(m.mha, {k[4:]: v for k, v in arrays().items()}, m.causal)
    if kind == "ChannelsLast":                             # made by to_torch
        layout.last_axis(kind, 3)
        return _channels_last_body(list(m.body))
    return activation_from_torch(m)


def _channels_last_body(body):
    """The layers of a ``ChannelsLast``'s modules; Keras's ``same`` (stride > 1) and
    ``causal`` paddings, which ``to_torch`` writes as a padding module before the
    convolution or pooling, fold back into the layer's ``padding``."""
    from .torch import _convert_module
    inner = Layout(3)
    inner.state = "first"
    layers, i = [], 0
    while i < len(body):
        sub, nxt = body[i], body[i + 1] if i + 1 < len(body) else None
        kind, after = type(sub).__name__, type(nxt).__name__
        if kind in ("SamePad1d", "SameAvgPool1d") or (
                kind == "ConstantPad1d" and after == "Conv1d" and tuple(sub.padding) == (
                    nxt.dilation[0] * (nxt.kernel_size[0] - 1), 0) and sub.value == 0
                and tuple(nxt.padding) == (0,)):
            if kind == "SameAvgPool1d":
                layers.append(AveragePooling1D(sub.size, strides=sub.stride, padding="same"))
                i += 1
                continue
            if after not in ("Conv1d", "MaxPool1d"):
                raise ValueError(f"{kind} must be followed by nn.Conv1d or nn.MaxPool1d.")
            layer = _convert_module(nxt, inner)[-1]
            layer.padding = "same" if kind == "SamePad1d" else "causal"
            layers.append(layer)
            i += 2
            continue
        layers += _convert_module(sub, inner)
        i += 1
    if inner.state != "first":
        raise ValueError("ChannelsLast holds modules that are not channels-first.")
    return layers


__all__ = ["ChannelsLast", "Layout", "from_module", "torch_classes"]
