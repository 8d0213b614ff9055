"""MultiHeadAttention, as ``keras.layers.MultiHeadAttention`` (attention over axis 1).

Called as ``mha(query, value, key=None, attention_mask=None, return_attention_scores=False,
training=None, use_causal_mask=False)`` on ``(B, T, Dq)``, ``(B, S, Dv)``, ``(B, S, Dk)``:

    Q = query Wq + bq    (B, T, H, K)     Wq (Dq, H, K): Keras's EinsumDense "query"
    K = key Wk + bk      (B, S, H, K)     Wk (Dk, H, K)  "key"   (key defaults to value)
    V = value Wv + bv    (B, S, H, V)     Wv (Dv, H, V)  "value"
    L = (Q / sqrt(K)) K^T per head       (B, H, T, S)
    P = softmax(where(M, L, -big))        M: attention_mask & query/value/key masks & causal
    O = P V              (B, T, H, V)     (dropout on P in training)
    Y = O Wo + bo        (B, T, *output_shape)   Wo (H, V, *output_shape) "attention_output"

Rows whose every key is masked (a masked query position, a full ``False`` row): Keras 3 on
TensorFlow gives them a uniform ``P`` when it takes its fused path (no dropout, no
attention scores returned) and zeros otherwise (its masked ``Softmax``); so does this layer.
The output mask is the query's mask.
"""
import numpy as np

from .. import initializers
from .attention import causal_mask, check_dropout, dropout_scale, softmax_backward
from .base import Layer, _Unbuilt
from .symbolic import KerasTensor, symbolic_call

_FUSED_NEGATIVE = -0.7 * 3.38953e38         # TensorFlow's fused path: where(mask, L, this)
_SOFTMAX_NEGATIVE = -1e9                    # keras.layers.Softmax with a mask


class _EinsumFans(initializers.Initializer):
    """Keras's EinsumDense gives a fan-based initializer (Glorot, He, Lecun, VarianceScaling)
    the kernel's einsum axes: fan_in = the product of the first ``split`` axes (contracted
    with the input), fan_out = the product of the rest. Drawing the 2-D matrix of those fans
    and reshaping gives the same distribution; other initializers see the kernel's shape."""

    _FAN_BASED = tuple(getattr(initializers, n) for n in (
        "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform",
        "LecunNormal", "VarianceScaling"))

    def __init__(self, inner, split):
        self.inner, self.split = inner, split

    def __call__(self, shape, dtype=None):
        if not isinstance(self.inner, self._FAN_BASED):
            return self.inner(shape, dtype)
        flat = (int(np.prod(shape[:self.split])), int(np.prod(shape[self.split:])))
        return np.reshape(self.inner(flat, dtype), shape)


def _positive_int(value, what, allow_none=False):
    if allow_none and value is None:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"Received an invalid value for argument `{what}`, expected a "
                         f"positive integer{' or `None`' if allow_none else ''}. Received: "
                         f"{what}={value!r}")
    return int(value)


class MultiHeadAttention(Layer):
    """Multi-head dot-product attention. Weights, in Keras's order: ``query/kernel``,
    ``query/bias``, ``key/kernel``, ``key/bias``, ``value/kernel``, ``value/bias``,
    ``attention_output/kernel``, ``attention_output/bias`` (biases with ``use_bias``)."""

    supports_masking = True
    call_options = ("return_attention_scores", "use_causal_mask")
    weight_rules = ("kernel", "bias")
    _SUBLAYERS = ("query", "key", "value", "attention_output")
    _dense = _Unbuilt()                     # {sublayer: (kernel, bias)}, made by build

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, sliding_window=None,
                 flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", use_gate=False, seed=None, **kwargs):
        self.num_heads = _positive_int(num_heads, "num_heads")
        self.key_dim = _positive_int(key_dim, "key_dim")
        self.value_dim = _positive_int(value_dim, "value_dim", allow_none=True) or self.key_dim
        super().__init__(**kwargs)
        self.dropout = check_dropout(dropout)
        self.use_bias = bool(use_bias)
        if output_shape is not None and output_shape != ():
            output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
            for d in output_shape:
                _positive_int(d, "output_shape")
        self.output_shape = output_shape or None
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        if attention_axes is not None and tuple(attention_axes) not in ((1,), (-2,)):
            raise NotImplementedError(
                f"MultiHeadAttention(attention_axes={attention_axes!r}) is not implemented in "
                "unrolled: attention runs over the time axis of (batch, time, features) inputs "
                "(attention_axes=None, or [1] as Keras writes it).")
        self.attention_axes = None if attention_axes is None else (1,)
        self.sliding_window = _positive_int(sliding_window, "sliding_window", allow_none=True)
        if flash_attention:
            raise NotImplementedError("MultiHeadAttention(flash_attention=True) is not "
                                      "implemented in unrolled.")
        if use_gate:
            raise NotImplementedError("MultiHeadAttention(use_gate=True) is not implemented in "
                                      "unrolled; it would be ignored.")
        self.use_gate = False
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.seed = seed
        self._generator = np.random.default_rng(seed) if seed is not None else None

    # --- calling: query and value positional, key and attention_mask by name --------------
    def __call__(self, query, value=None, key=None, attention_mask=None, **kwargs):
        """``mha(query, value, key=None, attention_mask=None, ...)``; eager calls also take
        ``query_mask=``, ``value_mask=``, ``key_mask=`` (a graph's masks travel with the
        tensors). The inputs become one list ``[query, value, key(, attention_mask)]``."""
        if value is None:
            raise TypeError(f"Layer '{self.name}' (MultiHeadAttention) needs a query and a "
                            "value: mha(query, value).")
        inputs = [query, value, value if key is None else key]
        if attention_mask is not None:
            inputs.append(attention_mask)
        if any(isinstance(t, KerasTensor) for t in inputs):
            for m in ("query_mask", "value_mask", "key_mask", "mask"):
                if kwargs.get(m) is not None:
                    raise TypeError(f"Layer '{self.name}': in the functional API masks travel "
                                    f"with the tensors; {m}= is for eager calls.")
            return symbolic_call(self, inputs, kwargs)
        masks = [kwargs.pop(m, None) for m in ("query_mask", "value_mask", "key_mask")]
        if kwargs.get("mask") is not None:
            raise TypeError(f"Layer '{self.name}': pass query_mask=, value_mask=, key_mask=.")
        kwargs.pop("mask", None)
        masks += [None] * (len(inputs) - 3)
        return self._eager_call(inputs, mask=masks if any(m is not None for m in masks)
                                else None, **kwargs)

    def keras_node_args(self, inputs, refs):
        """A graph node as Keras writes it: ``args [query, value]``, ``key=`` when it is a
        tensor other than the value, ``attention_mask=``."""
        named = {}
        if inputs[2] is not inputs[1]:
            named["key"] = refs[2]
        if len(refs) > 3:
            named["attention_mask"] = refs[3]
        return refs[:2], named

    @staticmethod
    def tensor_arguments(args, kwargs, refs):
        """(argument names, tensor refs) of a Keras node: query, value, key, attention_mask."""
        names, out = [], []
        for i, name in enumerate(("query", "value", "key", "attention_mask")):
            value = args[i] if i < len(args) else kwargs.get(name)
            if value is not None:
                names.append(name)
                out += refs(value)[:1]
        return names, out

    # --- shapes ---------------------------------------------------------------------------
    def _check_input_shape(self, shape, index=0):
        if len(tuple(shape)) != 3:
            raise NotImplementedError(
                f"Input {index} of layer '{self.name}' has shape {tuple(shape)}: unrolled's "
                "MultiHeadAttention takes (batch, time, features) inputs (and a (batch, T, S) "
                "attention_mask).")

    def build(self, input_shape):
        q, v, k = (tuple(s) for s in input_shape[:3])
        if v[1:-1] != k[1:-1]:
            raise ValueError("All dimensions of `value` and `key`, except the last one, must be "
                             f"equal. Received: value_shape={v} and key_shape={k}")
        out = self.output_shape or (q[-1],)
        h = self.num_heads
        shapes = {"query": ((q[-1], h, self.key_dim), (h, self.key_dim)),
                  "key": ((k[-1], h, self.key_dim), (h, self.key_dim)),
                  "value": ((v[-1], h, self.value_dim), (h, self.value_dim)),
                  "attention_output": ((h, self.value_dim) + tuple(out), tuple(out))}
        self._dense = {}
        for name in self._SUBLAYERS:
            kernel_shape, bias_shape = shapes[name]
            split = 2 if name == "attention_output" else 1          # the contracted axes
            kernel = self.add_weight(f"{name}/kernel", kernel_shape,
                                     _EinsumFans(self.kernel_initializer, split),
                                     regularizer=self.kernel_regularizer,
                                     constraint=self.kernel_constraint)
            bias = self.add_weight(f"{name}/bias", bias_shape, self.bias_initializer,
                                   regularizer=self.bias_regularizer,
                                   constraint=self.bias_constraint) if self.use_bias else None
            self._dense[name] = (kernel, bias)
        self.attention_axes = (1,)                  # what Keras's config says once built
        self.built = True

    def compute_output_shape(self, input_shape, return_attention_scores=False, **_):
        q, v = tuple(input_shape[0]), tuple(input_shape[1])
        out = q[:-1] + (self.output_shape or (q[-1],))
        if return_attention_scores:
            return [out, (q[0], self.num_heads, q[1], v[1])]
        return out

    def compute_mask(self, inputs, mask=None):
        if mask is None or mask[0] is None:
            return None
        return np.asarray(mask[0], bool)

    # --- forward and backward -------------------------------------------------------------
    def _project(self, name, x):
        kernel, bias = self._dense[name]
        y = np.einsum("btd,dhk->bthk", x, kernel.value)
        return y if bias is None else y + bias.value

    def _allowed(self, inputs, mask, use_causal_mask):
        """The (B or 1, T, S) boolean mask of allowed (query, key) pairs, or None."""
        (q, v), allowed = inputs[:2], None
        masks = list(mask or []) + [None] * 4
        if masks[0] is not None:
            allowed = np.asarray(masks[0], bool)[:, :, None]
        for m in masks[1:3]:                                  # value mask, key mask
            if m is not None:
                m = np.asarray(m, bool)[:, None, :]
                allowed = m if allowed is None else allowed & m
        if use_causal_mask:
            c = causal_mask(q.shape[1], v.shape[1])
            allowed = c if allowed is None else allowed & c
        if self.sliding_window is not None:
            band = np.abs(np.arange(q.shape[1])[:, None] - np.arange(v.shape[1])[None]) \
                < self.sliding_window
            allowed = band[None] if allowed is None else allowed & band
        if len(inputs) > 3:
            given = np.asarray(inputs[3])
            given = given > 0.5 if given.dtype != bool else given
            allowed = given if allowed is None else given & allowed
        return allowed

    def forward(self, inputs, *, training=False, mask=None, return_attention_scores=False,
                use_causal_mask=False):
        q, v, k = inputs[:3]
        Q, K, V = self._project("query", q), self._project("key", k), self._project("value", v)
        scale = np.asarray(1.0 / np.sqrt(float(self.key_dim)), q.dtype)
        Qs = Q * scale
        L = np.einsum("bshk,bthk->bhts", K, Qs)                          # (B, H, T, S)
        allowed = self._allowed(inputs, mask, use_causal_mask)
        fused = not (self.dropout > 0 or return_attention_scores)     # Keras's two paths
        M = None if allowed is None else allowed[:, None]               # (B, 1, T, S)
        if M is not None:
            L = np.where(M, L, np.asarray(_FUSED_NEGATIVE if fused else _SOFTMAX_NEGATIVE,
                                          L.dtype))
        P = np.exp(L - L.max(axis=-1, keepdims=True))
        P /= P.sum(axis=-1, keepdims=True)
        if M is not None and not fused:
            P = np.where(M, P, 0)                   # masked Softmax: masked entries are zeros
        drop = dropout_scale(self, P.shape, P.dtype) if training and self.dropout > 0 else None
        Pd = P if drop is None else P * drop
        O = np.einsum("bhts,bshv->bthv", Pd, V)                         # (B, T, H, V)
        Wo, bo = self._dense["attention_output"]
        Wo2 = Wo.value.reshape(self.num_heads, self.value_dim, -1)
        Y = np.einsum("bthv,hvo->bto", O, Wo2)
        if bo is not None:
            Y = Y + bo.value.reshape(-1)
        Y = Y.reshape(Y.shape[:2] + tuple(Wo.value.shape[2:]))
        cache = (inputs, Q, K, V, Qs, scale, M, fused, P, drop, Pd, O, return_attention_scores)
        return ([Y, P] if return_attention_scores else Y), cache

    def backward(self, cache, doutputs):
        inputs, Q, K, V, Qs, scale, M, fused, P, drop, Pd, O, with_scores = cache
        dY, dP = (doutputs if with_scores else (doutputs, None))
        q, v, k = inputs[:3]
        B, T = q.shape[:2]
        Wo, bo = self._dense["attention_output"]
        Wo2 = Wo.value.reshape(self.num_heads, self.value_dim, -1)
        dY = np.zeros((B, T, Wo2.shape[-1]), q.dtype) if dY is None else dY.reshape(B, T, -1)
        # Y = O Wo + bo  =>  dWo = O^T dY,  dbo = sum dY,  dO = dY Wo^T
        dWo = np.einsum("bthv,bto->hvo", O, dY).reshape(Wo.value.shape)
        dO = np.einsum("bto,hvo->bthv", dY, Wo2)
        # O = Pd V  =>  dPd = dO V^T,  dV = Pd^T dO;  Pd = P * drop
        dPd = np.einsum("bthv,bshv->bhts", dO, V)
        dV = np.einsum("bhts,bthv->bshv", Pd, dO)
        dP = (dPd if drop is None else dPd * drop) + (0 if dP is None else dP)
        if M is not None and not fused:
            dP = np.where(M, dP, 0)
        dL = softmax_backward(P, dP)
        if M is not None:                           # L = where(M, L, const)
            dL = np.where(M, dL, 0)
        # L = K Qs^T per head  =>  dQs = dL K,  dK = dL^T Qs;  Qs = Q * scale
        dQ = np.einsum("bhts,bshk->bthk", dL, K) * scale
        dK = np.einsum("bhts,bthk->bshk", dL, Qs)
        grads, dx = {}, {}
        for name, x, dproj in (("query", q, dQ), ("key", k, dK), ("value", v, dV)):
            kernel, bias = self._dense[name]
            # P = x W + b  =>  dW = x^T dP,  db = sum dP,  dx = dP W^T
            grads[name] = [np.einsum("btd,bthk->dhk", x, dproj)] + \
                ([] if bias is None else [dproj.sum(axis=(0, 1))])
            dx[name] = np.einsum("bthk,dhk->btd", dproj, kernel.value)
        grads["attention_output"] = [dWo] + ([] if bo is None else
                                             [dY.sum(axis=(0, 1)).reshape(bo.value.shape)])
        dweights = [g for name in self._SUBLAYERS for g in grads[name]]
        dinputs = [dx["query"], dx["value"], dx["key"]] + [None] * (len(inputs) - 3)
        return dinputs, dweights

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "use_gate": self.use_gate, "output_shape": self.output_shape,
                "attention_axes": self.attention_axes, "sliding_window": self.sliding_window,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "seed": self.seed}


__all__ = ["MultiHeadAttention"]
KERAS_LAYERS = {
    "MultiHeadAttention": (MultiHeadAttention, "multi_head_attention", (
        "num_heads", "key_dim", "value_dim", "dropout", "use_bias", "use_gate", "output_shape",
        "attention_axes", "sliding_window", "kernel_initializer", "bias_initializer", "seed")),
}
