"""ONNX forms of the activations and of the layers next to the recurrent ones (``to_onnx``).

Inference only (moving statistics, no noise). Every form is an ONNX operator where ONNX has
one, else a short composition of them:

    Conv1D / SeparableConv1D   Transpose (B,T,C)->(B,C,T), Conv (W = kernel.T: (F, C/G, k),
                               pads valid [0,0], causal [d(k-1), 0], same as TensorFlow: the
                               extra step on the right; SAME_UPPER when T is unknown), Transpose
                               back; SeparableConv1D: depthwise Conv (group=C), then MatMul
    Max/AveragePooling1D       MaxPool / AveragePool (count_include_pad=0) in NCW
    GlobalMax/Average          ReduceMax / ReduceMean over the steps
    LayerNormalization         LayerNormalization (opset >= 17, trailing axes) or
                               mean/variance/rsqrt composed (other axes, rms_scaling)
    BatchNormalization         x * inv + (beta - moving_mean * inv), inv = gamma / sqrt(var+eps)
    UnitNormalization          x * min(1 / sqrt(ReduceSumSquare(x)), 1e12)
    GroupNormalization         Reshape to (..., groups, C / groups), moments composed, back
    ReLU, LeakyReLU, PReLU,    Relu, LeakyRelu, ThresholdedRelu, Clip composed; PRelu (alpha
    ELU, Softmax               broadcast); Elu; Softmax (several axes: exp / ReduceSum)
    noise layers, ActivityRegularization: Identity; Permute: Transpose; UpSampling1D:
    Unsqueeze+Tile+Reshape; ZeroPadding1D: Pad; Cropping1D: Slice; Dot: Transpose, Reshape,
    MatMul (normalize: x * min(1 / ||x||, 1e7) first; sizes but the batch known)
    Attention, AdditiveAttention   MatMul / Tanh of broadcast sums, Softmax, MatMul
                               (causal mask: a constant -1e9 added; needs known steps)

Masks never reach these forms: the layers that make masks (Masking, Embedding with
``mask_zero``) are refused, so a masked GlobalAveragePooling1D or Softmax cannot be exported.
"""
import numpy as np

from ..layers.convolutional import pad_amounts

INT64_MAX = 2 ** 63 - 1


def refuse(layer, why):
    raise ValueError(f"to_onnx: layer '{layer.name}' ({type(layer).__name__}) cannot be exported: "
                     f"{why}.")


def _i64(g, values):
    return g.const(np.array(values, np.int64), "ints")


def _f32(g, value, base="const"):
    return g.const(np.asarray(value, np.float32), base)


def reduce(g, op, x, axes, keepdims=1):
    """``op`` over ``axes``: the axes are an input from opset 18 (ReduceSum: 13), an
    attribute before."""
    if g.opset >= (13 if op == "ReduceSum" else 18):
        return g.op(op, [x, _i64(g, list(axes))], keepdims=keepdims)
    return g.op(op, [x], axes=list(axes), keepdims=keepdims)


# --- activations (by name: the defaults of Keras's function) ---------------------------------
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
_SIMPLE = {"tanh": ("Tanh", {}), "sigmoid": ("Sigmoid", {}), "relu": ("Relu", {}),
           "softmax": ("Softmax", {"axis": -1}), "log_softmax": ("LogSoftmax", {"axis": -1}),
           "elu": ("Elu", {"alpha": 1.0}), "softplus": ("Softplus", {}),
           "softsign": ("Softsign", {}), "exponential": ("Exp", {}),
           "leaky_relu": ("LeakyRelu", {"alpha": 0.2}), "celu": ("Celu", {"alpha": 1.0}),
           "hard_silu": ("HardSwish", {}), "hard_swish": ("HardSwish", {}),
           "selu": ("Selu", {"alpha": _SELU_ALPHA, "gamma": _SELU_SCALE}),
           # Keras 3: clip(x / 6 + 1/2, 0, 1); Keras 2 (hard_sigmoid_keras2): slope 0.2
           "hard_sigmoid": ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),
           "hard_sigmoid_keras2": ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}),
           "hard_shrink": ("Shrink", {"bias": 0.0, "lambd": 0.5}),   # |x| > 1/2 ? x : 0
           "soft_shrink": ("Shrink", {"bias": 0.5, "lambd": 0.5})}   # x -+ 1/2 outside


def _clip(g, x, lo, hi):
    return g.op("Clip", [x, _f32(g, lo), _f32(g, hi)])


def activation(g, name, x):
    """``name``'s function of ``x`` (Keras's defaults), as ONNX nodes."""
    if name == "linear":
        return x
    if name in ("hard_silu", "hard_swish") and g.opset < 14:      # x clip(x / 6 + 1/2, 0, 1)
        return g.op("Mul", [x, g.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)])
    if name in _SIMPLE:
        op, attrs = _SIMPLE[name]
        return g.op(op, [x], **attrs)
    if name in ("swish", "silu"):                                   # x sigmoid(x)
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    if name == "relu6":
        return _clip(g, x, 0.0, 6.0)
    if name == "hard_tanh":
        return _clip(g, x, -1.0, 1.0)
    if name == "sparse_sigmoid":                                    # clip((x + 1) / 2, 0, 1)
        return _clip(g, g.op("Mul", [g.op("Add", [x, _f32(g, 1.0)]), _f32(g, 0.5)]), 0.0, 1.0)
    if name == "gelu":                                              # x/2 (1 + erf(x / sqrt 2))
        e = g.op("Erf", [g.op("Div", [x, _f32(g, np.sqrt(2.0))])])
        return g.op("Mul", [g.op("Mul", [x, _f32(g, 0.5)]), g.op("Add", [e, _f32(g, 1.0)])])
    if name == "mish":                                              # x tanh(softplus(x))
        return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])])
    if name == "log_sigmoid":                                       # -softplus(-x)
        return g.op("Neg", [g.op("Softplus", [g.op("Neg", [x])])])
    if name == "tanh_shrink":
        return g.op("Sub", [x, g.op("Tanh", [x])])
    if name == "squareplus":                                        # (x + sqrt(x^2 + 4)) / 2
        root = g.op("Sqrt", [g.op("Add", [g.op("Mul", [x, x]), _f32(g, 4.0)])])
        return g.op("Div", [g.op("Add", [x, root]), _f32(g, 2.0)])
    if name == "sparse_plus":              # 0 (x <= -1), (x + 1)^2 / 4 (|x| < 1), x (x >= 1)
        x1 = g.op("Add", [x, _f32(g, 1.0)])
        quad = g.op("Mul", [_f32(g, 0.25), g.op("Mul", [x1, x1])])
        mid = g.op("Where", [g.op("Less", [x, _f32(g, 1.0)]), quad, x])
        return g.op("Where", [g.op("LessOrEqual", [x, _f32(g, -1.0)]), _f32(g, 0.0), mid])
    raise ValueError(f"to_onnx: activation {name!r} has no ONNX form here.")


def relu_general(g, x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's relu with arguments, branch for branch as ``activation_formulas.relu``."""
    if max_value is None and threshold == 0:
        return g.op("Relu", [x]) if negative_slope == 0 else \
            g.op("LeakyRelu", [x], alpha=float(negative_slope))
    # x > threshold ? x : 0, then clipped to [0, max_value], then - slope relu(threshold - x)
    y = g.op("ThresholdedRelu", [x], alpha=float(threshold)) if threshold != 0 \
        else g.op("Relu", [x])
    if max_value is not None:
        y = _clip(g, y, 0.0, float(max_value))
    if negative_slope != 0:
        below = g.op("Relu", [g.op("Sub", [_f32(g, threshold), x])])
        y = g.op("Sub", [y, g.op("Mul", [_f32(g, negative_slope), below])])
    return y


# --- convolution and pooling in NCW ------------------------------------------------------------
def _window_pads(padding, steps, span, stride):
    if padding == "valid":
        return {"pads": [0, 0]}
    if padding == "causal":
        return {"pads": [span - 1, 0]}
    if steps is None:                          # TensorFlow's 'same': the extra step on the right
        return {"auto_pad": "SAME_UPPER"}
    left, right, _ = pad_amounts(steps, span, stride, "same")
    return {"pads": [left, right]}


def _ncw(g, x):
    return g.op("Transpose", [x], perm=[0, 2, 1])


def _conv(g, x, steps, w_oik, bias, k, stride, dilation, padding, group):
    """``(B, T', F)`` of ONNX Conv on ``x (B, T, C)`` with the weight ``(F, C/G, k)``."""
    attrs = _window_pads(padding, steps, dilation * (k - 1) + 1, stride)
    ins = [_ncw(g, x), g.const(np.ascontiguousarray(w_oik), "kernel")]
    if bias is not None:
        ins.append(g.const(bias, "bias"))
    y = g.op("Conv", ins, kernel_shape=[k], strides=[stride], dilations=[dilation],
             group=group, **attrs)
    return _ncw(g, y)


def _conv1d(g, layer, x, shape):
    kernel = layer.kernel.value                                     # (k, C/G, F)
    bias = layer.bias.value if layer.use_bias else None
    y = _conv(g, x, shape[1], kernel.transpose(2, 1, 0), bias, layer.kernel_size[0],
              layer.strides[0], layer.dilation_rate[0], layer.padding, layer.groups)
    return activation(g, layer.activation.name, y)


def _separable_conv1d(g, layer, x, shape):
    k, channels, dm = layer.depthwise_kernel.shape
    depthwise = layer.depthwise_kernel.value.reshape(k, 1, channels * dm)
    u = _conv(g, x, shape[1], depthwise.transpose(2, 1, 0), None, k, layer.strides[0],
              layer.dilation_rate[0], layer.padding, channels)      # group c: outputs c*M...
    z = g.op("MatMul", [u, g.const(layer.pointwise_kernel.value[0], "pointwise")])
    if layer.use_bias:
        z = g.op("Add", [z, g.const(layer.bias.value, "bias")])
    return activation(g, layer.activation.name, z)


def _pooling(g, layer, x, shape, op):
    (p,), (s,) = layer.pool_size, layer.strides
    attrs = _window_pads(layer.padding, shape[1], p, s)
    if op == "AveragePool":
        attrs["count_include_pad"] = 0                              # 'same': real steps only
    return _ncw(g, g.op(op, [_ncw(g, x)], kernel_shape=[p], strides=[s], **attrs))


# --- normalization -------------------------------------------------------------------------------
def _layer_norm(g, layer, x, shape):
    ndim = len(shape)
    axes = sorted(a % ndim for a in layer.axis)
    gamma, beta = layer._b(layer.gamma), layer._b(layer.beta)       # broadcast shapes or None
    if g.opset >= 17 and not layer.rms_scaling and axes == list(range(axes[0], ndim)):
        norm = tuple(shape[axes[0]:])
        scale = np.ones(norm, np.float32) if gamma is None else gamma.reshape(norm)
        ins = [x, g.const(scale, "gamma")] + ([] if beta is None else
                                              [g.const(beta.reshape(norm), "beta")])
        return g.op("LayerNormalization", ins, axis=axes[0], epsilon=layer.epsilon)
    mean = reduce(g, "ReduceMean", x, axes)
    xc = g.op("Sub", [x, mean])
    var = reduce(g, "ReduceMean", g.op("Mul", [xc, xc]), axes)     # biased variance
    r = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [var, _f32(g, layer.epsilon)])])])
    y = g.op("Mul", [x if layer.rms_scaling else xc, r])            # rms_scaling: not centred
    if gamma is not None:
        y = g.op("Mul", [y, g.const(gamma, "gamma")])
    if beta is not None:
        y = g.op("Add", [y, g.const(beta, "beta")])
    return y


def _batch_norm(g, layer, x, shape):
    """Moving statistics folded into one Mul and one Add, computed as the layer does."""
    b_shape = [1] * len(shape)
    b_shape[layer.axis] = shape[layer.axis]
    r = 1.0 / np.sqrt(layer.moving_variance.value.reshape(b_shape) + layer.epsilon)
    inv = r if layer.gamma is None else r * layer.gamma.value.reshape(b_shape)
    res = -layer.moving_mean.value.reshape(b_shape) * inv
    if layer.beta is not None:
        res = res + layer.beta.value.reshape(b_shape)
    return g.op("Add", [g.op("Mul", [x, g.const(inv, "inv")]), g.const(res, "shift")])


def _unit_norm(g, layer, x, shape):
    axes = layer._axes(len(shape))
    s = reduce(g, "ReduceSumSquare", x, [a % len(shape) for a in axes])
    inv = g.op("Min", [g.op("Reciprocal", [g.op("Sqrt", [s])]), _f32(g, layer.CAP)])
    return g.op("Mul", [x, inv])


def _group_norm(g, layer, x, shape):
    """Channels split into (groups, C / groups), moments over all but batch and group."""
    g_shape, a, axes = layer._grouped(tuple(shape))
    target = [0] * a + [-1 if d is None else d for d in g_shape[a:]]   # 0: copy that axis
    if target.count(-1) > 1:
        refuse(layer, f"the input shape {tuple(shape)} has more than one unknown size after "
                      "the channel axis")
    xg = g.op("Reshape", [x, _i64(g, target)])
    mean = reduce(g, "ReduceMean", xg, axes)
    xc = g.op("Sub", [xg, mean])
    var = reduce(g, "ReduceMean", g.op("Mul", [xc, xc]), axes)
    inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [var, _f32(g, layer.epsilon)])])])
    b_shape = [1] * len(g_shape)
    b_shape[a], b_shape[a + 1] = g_shape[a], g_shape[a + 1]
    if layer.gamma is not None:                     # inv = gamma / sqrt(var + eps)
        inv = g.op("Mul", [inv, g.const(layer.gamma.value.reshape(b_shape), "gamma")])
    y = g.op("Mul", [xc, inv])
    if layer.beta is not None:
        y = g.op("Add", [y, g.const(layer.beta.value.reshape(b_shape), "beta")])
    return g.op("Reshape", [y, g.op("Shape", [x])])


def _l2_normalize(g, x, axis):
    """Keras's ``normalize``: ``x * min(1 / ||x||, 1e7)`` along ``axis``."""
    r = g.op("Reciprocal", [g.op("Sqrt", [reduce(g, "ReduceSumSquare", x, [axis])])])
    return g.op("Mul", [x, g.op("Min", [r, _f32(g, 1e7)])])


def _dot(g, node, ins, shapes):
    """Moves the summed axis last in ``a`` and first (after the batch) in ``b``, one batched
    MatMul ``(B, I, K) @ (B, K, J)``, then the output's shape."""
    layer = node.layer
    out = node.outputs[0].shape
    if None in out[1:] or any(None in s[1:] for s in shapes):
        refuse(layer, "its inputs' and output's sizes (but the batch) must be known")
    a0, a1 = layer._resolved_axes(list(shapes))
    a, b = ins
    if layer.normalize:
        a, b = _l2_normalize(g, a, a0), _l2_normalize(g, b, a1)
    ra, rb = len(shapes[0]), len(shapes[1])
    k = shapes[0][a0]
    am = g.op("Transpose", [a], perm=[i for i in range(ra) if i != a0] + [a0])
    bm = g.op("Transpose", [b], perm=[0, a1] + [i for i in range(1, rb) if i != a1])
    y = g.op("MatMul", [g.op("Reshape", [am, _i64(g, [0, -1, k])]),
                        g.op("Reshape", [bm, _i64(g, [0, k, -1])])])
    return g.op("Reshape", [y, _i64(g, [0] + list(out[1:]))])


def _softmax_layer(g, layer, x, shape):
    if not isinstance(layer.axis, list):
        return g.op("Softmax", [x], axis=layer.axis)
    axes = sorted({a % len(shape) for a in layer.axis})             # one softmax over them all
    e = g.op("Exp", [g.op("Sub", [x, reduce(g, "ReduceMax", x, axes)])])
    return g.op("Div", [e, reduce(g, "ReduceSum", e, axes)])


# --- moving steps -------------------------------------------------------------------------------
def _upsampling(g, layer, x, shape):
    if shape[2] is None:
        refuse(layer, "its number of channels is unknown")
    tiled = g.op("Tile", [g.op("Unsqueeze", [x, _i64(g, [2])]), _i64(g, [1, 1, layer.size, 1])])
    return g.op("Reshape", [tiled, _i64(g, [0, -1, shape[2]])])     # y[:, t*size + r] = x[:, t]


def _cropping(g, layer, x, shape):
    start, end = layer.cropping
    return g.op("Slice", [x, _i64(g, [start]), _i64(g, [-end if end else INT64_MAX]),
                          _i64(g, [1])])


# --- attention ----------------------------------------------------------------------------------
def _attention(g, node, ins, shapes):
    layer = node.layer
    q, v = ins[0], ins[1]
    k, k_shape = (ins[2], shapes[2]) if len(ins) > 2 else (v, shapes[1])
    additive = type(layer).__name__ == "AdditiveAttention"
    scale = None if layer.scale is None else layer.scale.value
    if not additive and layer.score_mode == "dot":                  # S = q k^T (* scale)
        s = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 2, 1])])
        if scale is not None:
            s = g.op("Mul", [s, _f32(g, scale, "scale")])
    else:                                   # pre = q_i + k_j  (B, Tq, Tv, D)
        pre = g.op("Add", [g.op("Unsqueeze", [q, _i64(g, [2])]),
                           g.op("Unsqueeze", [k, _i64(g, [1])])])
        if additive:                        # S = sum_d scale_d tanh(pre)
            z = g.op("Tanh", [pre])
            if scale is not None:
                z = g.op("Mul", [z, _f32(g, scale, "scale")])
            s = reduce(g, "ReduceSum", z, [3], keepdims=0)
        else:                               # S = c sum_d tanh(scale pre)
            if scale is not None:
                pre = g.op("Mul", [_f32(g, scale, "scale"), pre])
            s = reduce(g, "ReduceSum", g.op("Tanh", [pre]), [3], keepdims=0)
            s = g.op("Mul", [_f32(g, layer.concat_score_weight.value, "c"), s])
    if node.kwargs.get("use_causal_mask"):
        tq, tv = shapes[0][1], k_shape[1]
        if tq is None or tv is None:
            refuse(layer, "use_causal_mask needs the query's and key's numbers of steps known")
        allowed = np.arange(tq)[:, None] >= np.arange(tv)[None, :]
        s = g.op("Add", [s, _f32(g, np.where(allowed, 0.0, -1e9)[None], "causal")])
    return g.op("MatMul", [g.op("Softmax", [s], axis=-1), v])


IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout",
            "ActivityRegularization")
SUPPORTED = ("Conv1D", "SeparableConv1D", "MaxPooling1D", "AveragePooling1D",
             "GlobalMaxPooling1D", "GlobalAveragePooling1D", "LayerNormalization",
             "BatchNormalization", "UnitNormalization", "ReLU", "LeakyReLU", "PReLU", "ELU",
             "Softmax", "Permute", "UpSampling1D", "ZeroPadding1D", "Cropping1D", "Attention",
             "AdditiveAttention", "GroupNormalization", "Dot") + IDENTITY


def emit(g, node, ins, shapes):
    """The output name of ``node``'s layer as ONNX nodes, or None when not one of these."""
    layer = node.layer
    name = type(layer).__name__
    x, shape = ins[0], shapes[0]
    if name in IDENTITY:
        return g.op("Identity", [x])
    if name == "Conv1D":
        return _conv1d(g, layer, x, shape)
    if name == "SeparableConv1D":
        return _separable_conv1d(g, layer, x, shape)
    if name in ("MaxPooling1D", "AveragePooling1D"):
        return _pooling(g, layer, x, shape, "MaxPool" if name[0] == "M" else "AveragePool")
    if name in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
        op = "ReduceMax" if name.startswith("GlobalMax") else "ReduceMean"
        return reduce(g, op, x, [1], keepdims=int(layer.keepdims))
    if name == "LayerNormalization":
        return _layer_norm(g, layer, x, shape)
    if name == "BatchNormalization":
        return _batch_norm(g, layer, x, shape)
    if name == "UnitNormalization":
        return _unit_norm(g, layer, x, shape)
    if name == "GroupNormalization":
        return _group_norm(g, layer, x, shape)
    if name == "Dot":
        return _dot(g, node, ins, shapes)
    if name == "ReLU":
        return relu_general(g, x, layer.negative_slope, layer.max_value, layer.threshold)
    if name == "LeakyReLU":
        return g.op("LeakyRelu", [x], alpha=float(layer.negative_slope))
    if name == "PReLU":                                  # alpha (shape[1:]) broadcasts
        return g.op("PRelu", [x, g.const(layer.alpha.value, "alpha")])
    if name == "ELU":
        return g.op("Elu", [x], alpha=float(layer.alpha))
    if name == "Softmax":
        return _softmax_layer(g, layer, x, shape)
    if name == "Permute":
        return g.op("Transpose", [x], perm=[0] + list(layer.dims))
    if name == "UpSampling1D":
        return _upsampling(g, layer, x, shape)
    if name == "ZeroPadding1D":
        left, right = layer.padding
        return g.op("Pad", [x, _i64(g, [0, left, 0, 0, right, 0])])
    if name == "Cropping1D":
        return _cropping(g, layer, x, shape)
    if name in ("Attention", "AdditiveAttention"):
        return _attention(g, node, ins, shapes)
    if name == "MultiHeadAttention":
        refuse(layer, "MultiHeadAttention (per-head einsum projections) has no ONNX form here; "
                      "Attention and AdditiveAttention export")
    return None
