"""Conv1D on ``(batch, steps, channels)`` inputs (channels_last), forward with backward beside.

A 1D convolution is a matrix product once every output step's window is gathered:
``cols[b, t, j, c] = xpad[b, t*s + j*d, c]`` (``s`` the stride, ``d`` the dilation, ``j``
the kernel tap), then ``z = cols.reshape(B*T', k*C) @ kernel.reshape(k*C, F) + bias``.
Backward is the same bookkeeping undone: ``dkernel = cols^T dz``, ``dcols = dz kernel^T``,
and every column entry adds its gradient back to the input step it was read from
(a scatter-add, one strided slice per kernel tap).

The window helpers here (``standardize_tuple``, ``pad_amounts``, ``gather_windows``,
``scatter_windows``) are shared with ``pooling.py``.
"""
import numpy as np

from .. import activations, initializers
from .base import Layer


# --- argument checks, as keras.src.utils.argument_validation ---------------------------------
def standardize_tuple(value, n, name, allow_zero=False):
    """An int or a list/tuple of ``n`` ints, as a tuple of ``n`` ints (> 0, or >= 0)."""
    msg = f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(msg) from None
        if len(values) != n or not all(isinstance(v, (int, np.integer))
                                       and not isinstance(v, bool) for v in values):
            raise ValueError(msg)
        values = tuple(int(v) for v in values)
    bad = {v for v in values if (v < 0 if allow_zero else v <= 0)}
    if bad:
        raise ValueError(f"{msg}, including values {bad} that do not satisfy "
                         f"`value {'>= 0' if allow_zero else '> 0'}`")
    return values


def check_data_format(data_format, class_name):
    """``'channels_last'``; ``channels_first`` is refused by name (not implemented)."""
    fmt = "channels_last" if data_format is None else str(data_format).lower()
    if fmt == "channels_first":
        raise NotImplementedError(
            f"{class_name}(data_format='channels_first') is not implemented in unrolled; "
            "only 'channels_last' inputs (batch, steps, channels) are.")
    if fmt != "channels_last":
        raise ValueError("The `data_format` argument must be one of {'channels_first', "
                         f"'channels_last'}}. Received: data_format={data_format}")
    return fmt


def check_padding(padding, allowed):
    value = padding.lower() if isinstance(padding, str) else padding
    if value not in allowed:
        raise ValueError(f"The `padding` argument must be one of {set(allowed)}. "
                         f"Received: {padding}")
    return value


# --- windows over the steps axis ---------------------------------------------------------------
def pad_amounts(steps, span, stride, padding):
    """``(left, right, out_steps)`` for a window spanning ``span`` input steps.

    ``valid``: no padding, ``out = (T - span) // s + 1``. ``same`` as TensorFlow:
    ``out = ceil(T / s)``, ``total = max((out - 1) s + span - T, 0)``, the larger half on the
    right. ``causal``: ``span - 1`` steps on the left, then valid (``out = ceil(T / s)``)."""
    if padding == "causal":
        left, right = span - 1, 0
    elif padding == "same":
        out = -(-steps // stride)
        total = max((out - 1) * stride + span - steps, 0)
        left, right = total // 2, total - total // 2
    else:
        left = right = 0
    out = (steps + left + right - span) // stride + 1
    if out <= 0:
        raise ValueError(f"The input has {steps} steps, fewer than the window's {span} "
                         f"(padding='{padding}'): the output would have {out} steps.")
    return left, right, out


def gather_windows(xp, size, stride, dilation, out):
    """``(B, T', size, C)``: ``w[:, t, j] = xp[:, t*stride + j*dilation]``."""
    idx = np.arange(out)[:, None] * stride + np.arange(size)[None, :] * dilation
    return xp[:, idx, :]


def scatter_windows(dw, padded_steps, stride, dilation):
    """The adjoint of ``gather_windows``: ``(B, Tp, C)`` where each window entry adds its
    gradient to the step it was read from (one strided slice per tap; within a tap the
    steps are distinct, so ``+=`` is exact)."""
    batch, out, size, channels = dw.shape
    dxp = np.zeros((batch, padded_steps, channels), dw.dtype)
    for j in range(size):
        start = j * dilation
        dxp[:, start:start + (out - 1) * stride + 1:stride] += dw[:, :, j]
    return dxp


def conv1d(x, kernel, stride, dilation, padding, groups):
    """``z (B, T', F)`` of a grouped 1D convolution of ``x (B, T, C)`` by ``kernel
    (k, C/G, F)``, and the cache ``conv1d_backward`` takes. Per group ``g``: one
    ``(B*T', k*C/G) @ (k*C/G, F/G)`` product, batched over the groups."""
    k, cg, filters = kernel.shape
    batch, steps, channels = x.shape
    G, fg = groups, filters // groups
    left, right, out = pad_amounts(steps, dilation * (k - 1) + 1, stride, padding)
    xp = np.pad(x, ((0, 0), (left, right), (0, 0))) if left or right else x
    cols = gather_windows(xp, k, stride, dilation, out)               # (B, T', k, C)
    a = cols.reshape(batch * out, k, G, cg).transpose(2, 0, 1, 3).reshape(G, -1, k * cg)
    w = kernel.reshape(k, cg, G, fg).transpose(2, 0, 1, 3).reshape(G, k * cg, fg)
    z = np.matmul(a, w).transpose(1, 0, 2).reshape(batch, out, filters)
    return z, (a, w, kernel.shape, (batch, steps, channels, left, xp.shape[1], out),
               stride, dilation)


def conv1d_backward(cache, dz):
    """``(dx, dkernel)`` of ``conv1d`` for the gradient ``dz`` of its output."""
    a, w, (k, cg, filters), (batch, steps, channels, left, padded, out), stride, dilation = cache
    G = channels // cg
    fg = filters // G
    dzg = dz.reshape(batch * out, G, fg).transpose(1, 0, 2)           # (G, B*T', F/G)
    dw = np.matmul(a.transpose(0, 2, 1), dzg)             # z = a w  =>  dw = a^T dz
    da = np.matmul(dzg, w.transpose(0, 2, 1))             #              da = dz w^T
    dkernel = dw.reshape(G, k, cg, fg).transpose(1, 2, 0, 3).reshape(k, cg, filters)
    dcols = da.reshape(G, batch, out, k, cg).transpose(1, 2, 3, 0, 4).reshape(
        batch, out, k, channels)
    dxp = scatter_windows(dcols, padded, stride, dilation)  # each column back to its step
    return dxp[:, left:left + steps], dkernel


class Conv1D(Layer):
    """``z[b, t, f] = sum_{j, c} xpad[b, t*s + j*d, c] kernel[j, c, f] + bias[f]``,
    ``y = activation(z)``.

    Weights: ``kernel (kernel_size, channels // groups, filters)``, ``bias (filters,)``.
    ``groups`` splits channels and filters into that many independent convolutions
    (group ``g`` reads channels ``g*C/G ...`` and writes filters ``g*F/G ...``).
    ``padding``: ``valid``, ``same`` (TensorFlow's: the extra step on the right) or
    ``causal`` (``d*(k-1)`` zeros on the left). Keras's Conv1D does not support masks: a mask
    reaching it is dropped with a warning (by the model, as Keras does).
    """

    weight_rules = ("kernel", "bias")
    input_ndim = 3

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        for key in ("lora_rank", "lora_alpha"):
            if kwargs.get(key) is not None:
                raise NotImplementedError(f"Conv1D({key}=...) (LoRA) is not implemented in "
                                          "unrolled.")
            kwargs.pop(key, None)
        super().__init__(**kwargs)
        if (not isinstance(filters, (int, np.integer)) or isinstance(filters, bool)
                or filters <= 0):
            raise ValueError("Invalid value for argument `filters`. Expected a strictly "
                             f"positive value. Received filters={filters}.")
        if (not isinstance(groups, (int, np.integer)) or isinstance(groups, bool)
                or groups <= 0):
            raise ValueError("The number of groups must be a positive integer. "
                             f"Received: groups={groups}.")
        if filters % groups:
            raise ValueError("The number of filters must be evenly divisible by the number "
                             f"of groups. Received: groups={groups}, filters={filters}.")
        self.filters, self.groups = int(filters), int(groups)
        self.kernel_size = standardize_tuple(kernel_size, 1, "kernel_size")
        self.strides = standardize_tuple(strides, 1, "strides")
        self.dilation_rate = standardize_tuple(dilation_rate, 1, "dilation_rate")
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError("`strides > 1` not supported in conjunction with "
                             f"`dilation_rate > 1`. Received: strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self.padding = check_padding(padding, ("valid", "same", "causal"))
        self.data_format = check_data_format(data_format, "Conv1D")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"Layer '{self.name}' needs a known number of input channels; "
                             f"received input shape {tuple(input_shape)}.")
        if channels % self.groups:
            raise ValueError(
                "The number of input channels must be evenly divisible by the number of "
                f"groups. Received groups={self.groups}, but the input has {channels} "
                f"channels (full input shape is {tuple(input_shape)}).")
        self._feature_size = channels
        self.kernel = self.add_weight(
            "kernel", self.kernel_size + (channels // self.groups, self.filters),
            self.kernel_initializer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer)
                     if self.use_bias else None)
        self.built = True

    def _span(self):
        return self.dilation_rate[0] * (self.kernel_size[0] - 1) + 1

    def compute_output_shape(self, input_shape):
        steps = input_shape[1]
        if steps is not None:
            steps = pad_amounts(steps, self._span(), self.strides[0], self.padding)[2]
        return (input_shape[0], steps, self.filters)

    def forward(self, x, *, training=False, mask=None):
        z, conv = conv1d(x, self.kernel.value, self.strides[0], self.dilation_rate[0],
                         self.padding, self.groups)
        if self.use_bias:
            z += self.bias.value
        y = self.activation(z)
        return y, (conv, z, y)

    def backward(self, cache, dy):
        conv, z, y = cache
        dz = self.activation.backward(z, y, dy)                       # through the activation
        dx, dkernel = conv1d_backward(conv, dz)
        grads = [dkernel]
        if self.use_bias:
            grads.append(dz.sum(axis=(0, 1)))             # z = ... + b  =>  db = sum dz
        return [dx], grads

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate, "groups": self.groups,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias}


class SeparableConv1D(Layer):
    """A depthwise convolution, then a pointwise one (a 1x1 convolution), then the bias:
    ``u[b, t, c*M + m] = sum_j xpad[b, t*s + j*d, c] depthwise_kernel[j, c, m]``,
    ``y = activation(u @ pointwise_kernel[0] + bias)``.

    Weights: ``depthwise_kernel (kernel_size, C, depth_multiplier)``, ``pointwise_kernel
    (1, C*depth_multiplier, filters)``, ``bias (filters,)``. The depthwise step is a grouped
    convolution with one group per channel (``conv1d`` with ``groups=C``). ``padding``:
    ``valid`` or ``same`` (Keras refuses ``causal`` here). No mask support, as Keras.
    """

    weight_rules = ("depthwise", "pointwise", "bias")
    input_ndim = 3

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        for key, value in (("depth_multiplier", depth_multiplier), ("filters", filters)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Invalid value for argument `{key}`. Expected a strictly "
                                 f"positive value. Received {key}={value}.")
        self.filters, self.depth_multiplier = int(filters), int(depth_multiplier)
        self.kernel_size = standardize_tuple(kernel_size, 1, "kernel_size")
        self.strides = standardize_tuple(strides, 1, "strides")
        self.dilation_rate = standardize_tuple(dilation_rate, 1, "dilation_rate")
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise NotImplementedError(
                "SeparableConv1D with both `strides > 1` and `dilation_rate > 1` is not "
                f"implemented in unrolled. Received: strides={self.strides} and "
                f"dilation_rate={self.dilation_rate}")
        self.padding = check_padding(padding, ("valid", "same"))
        self.data_format = check_data_format(data_format, "SeparableConv1D")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"Layer '{self.name}' needs a known number of input channels; "
                             f"received input shape {tuple(input_shape)}.")
        self._feature_size = channels
        dm = self.depth_multiplier
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", self.kernel_size + (channels, dm), self.depthwise_initializer,
            regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1, channels * dm, self.filters), self.pointwise_initializer,
            regularizer=self.pointwise_regularizer, constraint=self.pointwise_constraint)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer)
                     if self.use_bias else None)
        self.built = True

    def compute_output_shape(self, input_shape):
        steps = input_shape[1]
        if steps is not None:
            span = self.dilation_rate[0] * (self.kernel_size[0] - 1) + 1
            steps = pad_amounts(steps, span, self.strides[0], self.padding)[2]
        return (input_shape[0], steps, self.filters)

    def forward(self, x, *, training=False, mask=None):
        k, channels, dm = self.depthwise_kernel.shape
        # (k, C, M) -> (k, 1, C*M): group c makes the outputs c*M ... c*M + M - 1
        u, depthwise = conv1d(x, self.depthwise_kernel.value.reshape(k, 1, channels * dm),
                              self.strides[0], self.dilation_rate[0], self.padding, channels)
        pw = self.pointwise_kernel.value[0]                           # (C*M, F)
        z = u @ pw
        if self.use_bias:
            z += self.bias.value
        y = self.activation(z)
        return y, (depthwise, u, z, y)

    def backward(self, cache, dy):
        depthwise, u, z, y = cache
        dz = self.activation.backward(z, y, dy)
        du = dz @ self.pointwise_kernel.value[0].T            # z = u P + b  =>  du = dz P^T
        dpw = (u.reshape(-1, u.shape[-1]).T @ dz.reshape(-1, self.filters))[None]  # u^T dz
        dx, ddw = conv1d_backward(depthwise, du)
        grads = [ddw.reshape(self.depthwise_kernel.shape), dpw]
        if self.use_bias:
            grads.append(dz.sum(axis=(0, 1)))                 #                 db = sum dz
        return [dx], grads

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "data_format": self.data_format, "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias}


__all__ = ["Conv1D", "SeparableConv1D"]
# class name: (unrolled class, Keras snake-case name, options in the config): saving/serialize.py
# reads and writes these layers through this table.
KERAS_LAYERS = {
    "Conv1D": (Conv1D, "conv1d", ("filters", "kernel_size", "strides", "padding",
                                  "data_format", "dilation_rate", "groups", "activation",
                                  "use_bias", "kernel_initializer", "bias_initializer")),
    "SeparableConv1D": (SeparableConv1D, "separable_conv1d", (
        "depth_multiplier", "filters", "kernel_size", "strides", "padding", "data_format",
        "dilation_rate", "activation", "use_bias", "depthwise_initializer",
        "pointwise_initializer", "bias_initializer")),
}
