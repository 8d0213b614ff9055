"""The code ``to_numpy_code`` writes for the layers that sit next to recurrent ones.

Same contract as ``codegen_layers``: a writer takes ``(layer, fn, namer, node)`` and returns
``(source, activations, weights)``. Every number a layer contributes (kernel sizes, axes,
epsilons, slopes) enters the program through ``_lit`` as an int, float or tuple literal;
names enter only as ``repr()`` strings (the weights' keys) or as identifiers made by the
``Namer``. Each function repeats the layer's inference in the layer's own order of
operations, so the program gives the layer's float32 numbers up to rounding.

Covered: the activation layers (ReLU, LeakyReLU, ELU, PReLU, Softmax), Conv1D (groups=1),
the pooling layers, LayerNormalization, BatchNormalization (inference: the moving
statistics), UnitNormalization, the noise layers (the identity at inference), Permute,
ZeroPadding1D, Cropping1D, UpSampling1D, Attention and AdditiveAttention.
"""
import numpy as np

# Activations beyond codegen_layers.ACTIVATIONS, each as unrolled.activations computes it by
# name (default arguments). gelu is left out: its exact form needs erf, which NumPy lacks.
EXTRA_ACTIVATIONS = {
    "log_softmax": ("def log_softmax(x):\n    z = x - x.max(axis=-1, keepdims=True)\n"
                    "    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))\n"),
    "leaky_relu": "def leaky_relu(x):\n    return np.where(x > 0, x, x * 0.2)\n",
    "mish": "def mish(x):\n    return x * np.tanh(np.logaddexp(x, 0))   # x tanh(softplus(x))\n",
    "hard_silu": "def hard_silu(x):\n    return x * (np.clip(x + 3, 0, 6) / 6)   # x relu6(x + 3) / 6\n",
    "celu": "def celu(x):\n    return np.maximum(x, 0) + np.expm1(np.minimum(x, 0))   # alpha = 1\n",
    "hard_tanh": "def hard_tanh(x):\n    return np.clip(x, -1, 1)\n",
    "hard_shrink": ("def hard_shrink(x):\n"
                    "    return np.where(np.abs(x) > 0.5, x, np.zeros_like(x))\n"),
    "soft_shrink": ("def soft_shrink(x):\n    return np.where(x > 0.5, x - 0.5, "
                    "np.where(x < -0.5, x + 0.5, np.zeros_like(x)))\n"),
    "log_sigmoid": "def log_sigmoid(x):\n    return -np.logaddexp(-x, 0)   # -log(1 + e^-x)\n",
    "sparse_plus": ("def sparse_plus(x):\n    return np.where(x <= -1, np.zeros_like(x), "
                    "np.where(x < 1, 0.25 * (x + 1) ** 2, x))\n"),
    "sparse_sigmoid": ("def sparse_sigmoid(x):\n    return np.where(x <= -1, np.zeros_like(x), "
                       "np.where(x >= 1, np.ones_like(x), 0.5 * (x + 1)))\n"),
    "squareplus": "def squareplus(x):\n    return (x + np.sqrt(x * x + 4)) / 2\n",
    "tanh_shrink": "def tanh_shrink(x):\n    return x - np.tanh(x)\n",
}

_NOISE = ("GaussianNoise", "GaussianDropout", "SpatialDropout1D", "ActivityRegularization")
_ATTENTION = ("Attention", "AdditiveAttention")


def _lit(v):
    """A number, or a tuple/list of numbers, as Python literal text (never a name)."""
    if isinstance(v, (list, tuple)):
        items = [_lit(u) for u in v]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(v, (bool, np.bool_)):
        return repr(bool(v))
    if isinstance(v, (int, np.integer)):
        return repr(int(v))
    return repr(float(v))


def _w(fn, name):
    return f"W[{fn + '.' + name!r}]"


def _weights(layer, fn):
    return {f"{fn}.{w.name}": w.numpy() for w in layer.weights}


def _def(fn, doc, arg="x"):
    return f"def {fn}({arg}):\n    \"\"\"{doc}\"\"\"\n"


def companion_reason(layer, node, act_ok):
    """Why a companion layer cannot be written (a string), None if it can, or False if
    ``layer`` is not one of the layers this module writes."""
    kind = type(layer).__name__
    if kind not in COMPANION_WRITERS:
        return False
    if node is not None and node.kwargs.get("training") and (
            kind in _NOISE or kind == "BatchNormalization"):
        return "called with training=True; the code computes inference"
    if kind == "Conv1D":
        if layer.groups != 1:
            return f"groups={layer.groups}; only groups=1 has a code writer"
        if not act_ok(layer.activation):
            return f"activation {layer.activation.name!r} has no code writer"
    return None


# --- activation layers -------------------------------------------------------------------
def _relu_body(layer):
    """unrolled.activations.relu's branches, with the layer's numbers as literals."""
    slope, mv, thr = layer.negative_slope, layer.max_value, layer.threshold
    if mv is None and thr == 0:
        if slope == 0:
            return ["return np.maximum(x, 0)"]
        return [f"return np.where(x > 0, x, x * {_lit(slope)})"]
    lines = [f"y = np.where(x > {_lit(thr)}, x, np.zeros_like(x))" if thr != 0
             else "y = np.maximum(x, 0)"]
    if mv is not None:
        lines.append(f"y = np.clip(y, 0, {_lit(mv)})")
    if slope != 0:
        lines.append(f"y = y - {_lit(slope)} * np.maximum({_lit(thr)} - x, 0)")
    return lines + ["return y"]


def write_relu(layer, fn, namer=None, node=None):
    mv = "None" if layer.max_value is None else _lit(layer.max_value)
    doc = (f"ReLU(max_value={mv}, negative_slope={_lit(layer.negative_slope)}, "
           f"threshold={_lit(layer.threshold)}).")
    return _def(fn, doc) + "".join(f"    {ln}\n" for ln in _relu_body(layer)), set(), {}


def write_leaky_relu(layer, fn, namer=None, node=None):
    s = _lit(layer.negative_slope)
    return (_def(fn, f"LeakyReLU({s}): x for x > 0, else {s} x.")
            + f"    return np.where(x > 0, x, x * {s})\n"), set(), {}


def write_elu(layer, fn, namer=None, node=None):
    a = _lit(layer.alpha)
    src = _def(fn, f"ELU({a}): x for x > 0, else {a} (e^x - 1).") + \
        "    y = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))\n"
    if layer.alpha != 1:
        src += f"    y = np.where(x > 0, y, {a} * y)\n"
    return src + "    return y\n", set(), {}


def write_prelu(layer, fn, namer=None, node=None):
    return (_def(fn, "PReLU: x for x > 0, else alpha x (alpha learned, broadcast).")
            + f"    return np.maximum(x, 0) + {_w(fn, 'alpha')} * np.minimum(x, 0)\n"), \
        set(), _weights(layer, fn)


def write_softmax(layer, fn, namer=None, node=None):
    ax = _lit(layer.axis)
    return (_def(fn, f"Softmax(axis={ax}).")
            + f"    e = np.exp(x - x.max(axis={ax}, keepdims=True))\n"
            + f"    return e / e.sum(axis={ax}, keepdims=True)\n"), set(), {}


# --- convolution and pooling -------------------------------------------------------------
def _pad_lines(padding, span, stride, fill=""):
    """Lines padding ``x`` (of ``T`` steps) on the steps axis as TensorFlow does; they define
    ``left``, the steps added before the first."""
    if padding == "valid":
        return ["left = 0"]
    if padding == "causal":
        left, right = "left = " + _lit(span - 1), "right = 0"
        lines = [left, right]
    else:
        lines = [f"total = max((-(-T // {stride}) - 1) * {stride} + {span} - T, 0)"
                 "   # 'same': out = ceil(T / stride)",
                 "left, right = total // 2, total - total // 2        # the larger half right"]
    return lines + [f"x = np.pad(x, ((0, 0), (left, right), (0, 0)){fill})"]


def _window_lines(size, stride, dilation, span):
    return [f"out = (x.shape[1] - {span}) // {stride} + 1",
            f"idx = np.arange(out)[:, None] * {stride} + np.arange({size})[None, :] * {dilation}"
            "   # window t reads steps idx[t]"]


def write_conv1d(layer, fn, namer=None, node=None):
    (k,), (s,), (d,) = layer.kernel_size, layer.strides, layer.dilation_rate
    span, act = d * (k - 1) + 1, layer.activation.name
    doc = (f"Conv1D({layer.filters}, kernel_size={k}, strides={s}, padding={layer.padding!r}, "
           f"dilation_rate={d}, activation={act!r}): (N, T, C) -> (N, T', {layer.filters}).")
    lines = [f"kernel = {_w(fn, 'kernel')}                    # (kernel_size, C, filters)",
             "T = x.shape[1]"]
    lines += _pad_lines(layer.padding, span, s) + _window_lines(k, s, d, span)
    lines += ["cols = x[:, idx, :].reshape(x.shape[0], out, -1)   # (N, T', kernel_size * C)",
              "z = cols @ kernel.reshape(-1, kernel.shape[-1])"
              + (f" + {_w(fn, 'bias')}" if layer.use_bias else ""),
              f"return {'z' if act == 'linear' else f'{act}(z)'}"]
    return _def(fn, doc) + "".join(f"    {ln}\n" for ln in lines), {act}, _weights(layer, fn)


def write_pooling(layer, fn, namer=None, node=None):
    (p,), (s,) = layer.pool_size, layer.strides
    kind = type(layer).__name__
    maxpool = kind == "MaxPooling1D"
    doc = f"{kind}(pool_size={p}, strides={s}, padding={layer.padding!r})."
    lines = ["T = x.shape[1]"] + _pad_lines(layer.padding, p, s, ", constant_values=-np.inf" if maxpool else "")
    lines += _window_lines(p, s, 1, p)
    if maxpool:
        lines.append("return x[:, idx, :].max(axis=2)")
    else:
        lines += ["starts = np.arange(out) * " + _lit(s) + " - left      # first step read",
                  f"count = np.minimum(starts + {p}, T) - np.maximum(starts, 0)"
                  "   # padding not counted",
                  "return x[:, idx, :].sum(axis=2) / count.astype(x.dtype)[None, :, None]"]
    return _def(fn, doc) + "".join(f"    {ln}\n" for ln in lines), set(), {}


def write_global_pooling(layer, fn, namer=None, node=None):
    op = "max" if type(layer).__name__ == "GlobalMaxPooling1D" else "mean"
    return (_def(fn, f"{type(layer).__name__}(keepdims={layer.keepdims}): the {op} over the steps.")
            + f"    return x.{op}(axis=1, keepdims={layer.keepdims!r})\n"), set(), {}


# --- normalization -----------------------------------------------------------------------
def _affine_lines(fn, layer, gamma_shape):
    """y = x inv + (beta - mean inv), inv = gamma / sqrt(var + eps), as affine_forward."""
    lines = [f"r = 1.0 / np.sqrt(var + {_lit(layer.epsilon)})"]
    if layer.gamma is not None:
        lines.append(f"inv = r * {_w(fn, 'gamma')}.reshape({gamma_shape})")
    else:
        lines.append("inv = r")
    lines.append("res = -mean * inv")
    if layer.beta is not None:
        lines.append(f"res = res + {_w(fn, 'beta')}.reshape({gamma_shape})")
    return lines + ["return x * inv + res"]


def write_layer_norm(layer, fn, namer=None, node=None):
    axes, shape = _lit(tuple(layer.axis)), _lit(tuple(layer._broadcast))
    doc = (f"LayerNormalization(axis={axes}, epsilon={_lit(layer.epsilon)}"
           + (", rms_scaling=True" if layer.rms_scaling else "") + ").")
    lines = [f"mean = x.mean(axis={axes}, keepdims=True)",
             "xc = x - mean",
             f"var = (xc * xc).mean(axis={axes}, keepdims=True)   # biased variance"]
    if layer.rms_scaling:
        lines += [f"y = x * (1.0 / np.sqrt(var + {_lit(layer.epsilon)}))"]
        if layer.gamma is not None:
            lines.append(f"y = y * {_w(fn, 'gamma')}.reshape({shape})")
        lines.append("return y")
    else:
        lines += _affine_lines(fn, layer, shape)
    return _def(fn, doc) + "".join(f"    {ln}\n" for ln in lines), set(), _weights(layer, fn)


def write_batch_norm(layer, fn, namer=None, node=None):
    ax = _lit(layer.axis)
    doc = (f"BatchNormalization(axis={ax}, epsilon={_lit(layer.epsilon)}) at inference: "
           "the moving mean and variance.")
    lines = ["shape = [1] * x.ndim",
             f"shape[{ax}] = x.shape[{ax}]",
             f"mean = {_w(fn, 'moving_mean')}.reshape(shape)",
             f"var = {_w(fn, 'moving_variance')}.reshape(shape)"]
    lines += _affine_lines(fn, layer, "shape")
    return _def(fn, doc) + "".join(f"    {ln}\n" for ln in lines), set(), _weights(layer, fn)


def write_unit_norm(layer, fn, namer=None, node=None):
    axes = _lit(tuple(layer.axis) if isinstance(layer.axis, list) else (layer.axis,))
    return (_def(fn, f"UnitNormalization(axis={axes}): x / |x|, the factor capped at 1e12.")
            + f"    s = np.sum(x * x, axis={axes}, keepdims=True)\n"
            + "    with np.errstate(divide='ignore'):\n        inv = 1.0 / np.sqrt(s)\n"
            + "    return x * np.minimum(inv, np.asarray(1e12, x.dtype))\n"), set(), {}


# --- layers that move steps, and the identity ones ---------------------------------------
def _one_liner(doc, body):
    def write(layer, fn, namer=None, node=None):
        return _def(fn, doc(layer)) + f"    return {body(layer)}\n", set(), {}
    return write


def _identity(layer):
    return f"{type(layer).__name__}: the identity at inference (its noise is for training)."


# --- attention ---------------------------------------------------------------------------
def write_attention(layer, fn, namer=None, node=None):
    kind = type(layer).__name__
    opts = {} if node is None else node.kwargs
    causal, scores = bool(opts.get("use_causal_mask")), bool(opts.get("return_attention_scores"))
    scale = _w(fn, "scale")
    if kind == "AdditiveAttention":
        doc = "AdditiveAttention: S_ij = sum_d scale_d tanh(q_id + k_jd), y = softmax(S) v."
        score = ["z = np.tanh(q[:, :, None, :] + k[:, None, :, :])          # (N, Tq, Tv, D)",
                 f"s = (z * {scale}).sum(axis=-1)" if layer.use_scale else "s = z.sum(axis=-1)"]
    elif layer.score_mode == "dot":
        doc = f"Attention(use_scale={layer.use_scale}): S = q k^T, y = softmax(S) v."
        score = ["s = q @ np.swapaxes(k, -1, -2)                            # (N, Tq, Tv)"]
        if layer.use_scale:
            score.append(f"s = s * {scale}")
    else:
        doc = (f"Attention(score_mode='concat', use_scale={layer.use_scale}): "
               "S_ij = c sum_d tanh(scale (q_i + k_j))_d, y = softmax(S) v.")
        score = ["pre = q[:, :, None, :] + k[:, None, :, :]                # (N, Tq, Tv, D)"]
        if layer.use_scale:
            score.append(f"pre = {scale} * pre")
        score.append(f"s = {_w(fn, 'concat_score_weight')} * np.tanh(pre).sum(axis=-1)")
    lines = ["q, v = xs[0], xs[1]", "k = xs[2] if len(xs) > 2 else v        # the key defaults to the value"]
    lines += score
    if causal:
        lines += ["causal = np.arange(s.shape[1])[:, None] >= np.arange(s.shape[2])[None, :]",
                  "s = np.where(causal, s, s - np.asarray(1e9, s.dtype))   # use_causal_mask"]
    lines += ["w = softmax(s)                             # the attention weights",
              "return (w @ v, w)" if scores else "return w @ v"]
    return _def(fn, doc, "xs") + "".join(f"    {ln}\n" for ln in lines), {"softmax"}, \
        _weights(layer, fn)


COMPANION_WRITERS = {
    "ReLU": write_relu, "LeakyReLU": write_leaky_relu, "ELU": write_elu, "PReLU": write_prelu,
    "Softmax": write_softmax, "Conv1D": write_conv1d,
    "MaxPooling1D": write_pooling, "AveragePooling1D": write_pooling,
    "GlobalMaxPooling1D": write_global_pooling, "GlobalAveragePooling1D": write_global_pooling,
    "LayerNormalization": write_layer_norm, "BatchNormalization": write_batch_norm,
    "UnitNormalization": write_unit_norm,
    **{k: _one_liner(_identity, lambda l: "x") for k in _NOISE},
    "Permute": _one_liner(lambda l: f"Permute({_lit(l.dims)}): reorders the axes after the batch.",
                          lambda l: f"np.transpose(x, {_lit((0,) + tuple(l.dims))})"),
    "ZeroPadding1D": _one_liner(lambda l: f"ZeroPadding1D({_lit(l.padding)}): zero steps added.",
                                lambda l: f"np.pad(x, ((0, 0), {_lit(l.padding)}, (0, 0)))"),
    "Cropping1D": _one_liner(lambda l: f"Cropping1D({_lit(l.cropping)}): steps dropped.",
                             lambda l: f"x[:, {_lit(l.cropping[0])}:x.shape[1] - {_lit(l.cropping[1])}]"),
    "UpSampling1D": _one_liner(lambda l: f"UpSampling1D({_lit(l.size)}): every step repeated.",
                               lambda l: f"np.repeat(x, {_lit(l.size)}, axis=1)"),
    **{k: write_attention for k in _ATTENTION},
}
