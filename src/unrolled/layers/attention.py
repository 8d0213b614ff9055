"""Attention over a sequence: Attention (Luong) and AdditiveAttention (Bahdanau).

Both are called on a list ``[query, value]`` or ``[query, value, key]`` (the key defaults
to the value), ``query`` of shape ``(B, Tq, D)``, ``value``/``key`` of shape ``(B, Tv, D)``:

    S = score(query, key)                      (B, Tq, Tv)
    S = where(allowed, S, S - 1e9)             value mask and causal mask, as Keras 3
    W = softmax(S, axis=-1)                    (dropout on W in training)
    out = W value                              (B, Tq, D), zero where the query is masked

The masks are ``[query_mask, value_mask]`` (eager ``mask=``; in a graph they come from
``Embedding(mask_zero=True)`` or ``Masking`` upstream); the output mask is the query mask.
The masked scores are *lowered* by 1e9 (not replaced), in the layer's dtype, as Keras 3
does, so a row with every key masked still gets a softmax of its rounded scores.
``return_attention_scores=True`` also returns ``W`` (after dropout, as Keras).
"""
import numpy as np

from .. import utils
from .base import Layer, _Unbuilt

_CALL_OPTIONS = ("return_attention_scores", "use_causal_mask")


def softmax_backward(w, dw):
    """w = softmax(s)  =>  ds = w * (dw - sum(dw * w))  (along the last axis)."""
    return w * (dw - np.sum(dw * w, axis=-1, keepdims=True))


def causal_mask(tq, tv):
    """(1, Tq, Tv): query i may look at keys j <= i."""
    return (np.arange(tq)[:, None] >= np.arange(tv)[None, :])[None]


def dropout_scale(layer, shape, dtype):
    """A keep/drop draw as inverted dropout: 0 or 1 / (1 - rate), per entry of ``shape``;
    from the layer's seeded generator, or ``unrolled.utils.rng()`` without a seed."""
    if layer.dropout >= 1:
        return np.zeros(shape, dtype)
    gen = layer._generator or utils.rng()
    keep = gen.random(shape) >= layer.dropout
    return (keep / (1.0 - layer.dropout)).astype(dtype)


def check_dropout(rate):
    if not isinstance(rate, (int, float, np.floating, np.integer)) or isinstance(rate, bool) \
            or not 0 <= rate <= 1:
        raise ValueError(f"Invalid value received for argument `dropout`. Expected a float "
                         f"value between 0 and 1. Received: dropout={rate!r}")
    return float(rate)


class Attention(Layer):
    """Dot-product (Luong) attention, as ``keras.layers.Attention``.

    ``score_mode="dot"``: ``S = q k^T`` (times the scalar weight ``scale`` with
    ``use_scale``). ``score_mode="concat"``: ``S = c * sum_d tanh(scale * (q_i + k_j))``
    with the scalar weights ``concat_score_weight`` ``c`` (and ``scale`` with
    ``use_scale``). Weights: ``scale`` then ``concat_score_weight``, both ``()``, ones.
    """

    supports_masking = True
    call_options = _CALL_OPTIONS
    scale = _Unbuilt()                      # the weights build creates (None when unused)
    concat_score_weight = _Unbuilt()

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError("Invalid value for argument score_mode. Expected one of "
                             f"{{'dot', 'concat'}}. Received: score_mode={score_mode}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = check_dropout(dropout)
        self.seed = seed
        self._generator = np.random.default_rng(seed) if seed is not None else None

    # --- shapes -------------------------------------------------------------------------
    def _validate(self, inputs, mask=None):
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or (inputs and not isinstance(
                inputs[0], (list, tuple, np.ndarray)) and not hasattr(inputs[0], "shape")):
            raise ValueError(f"{name} layer must be called on a list of inputs, namely "
                             f"[query, value] or [query, value, key]. Received: inputs={inputs}.")
        if not 2 <= len(inputs) <= 3:
            raise ValueError(f"{name} layer accepts inputs list of length 2 or 3, namely "
                             f"[query, value] or [query, value, key]. Received length: "
                             f"{len(inputs)}.")
        if mask is not None:
            if not isinstance(mask, (list, tuple)):
                raise ValueError(f"{name} layer mask must be a list, namely [query_mask, "
                                 f"value_mask]. Received: mask={mask}.")
            if not 2 <= len(mask) <= 3:
                raise ValueError(f"{name} layer accepts mask list of length 2 or 3. "
                                 f"Received: mask={mask}.")

    def _check_input_shape(self, shape, index=0):
        if len(tuple(shape)) != 3:
            raise ValueError(f"Input {index} of layer '{self.name}' must have shape (batch, "
                             f"timesteps, features); received {tuple(shape)}.")

    def build(self, input_shape):
        self._validate(input_shape)
        shapes = [tuple(s) for s in input_shape]
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) > 2 else v
        if q[-1] != k[-1]:
            raise ValueError(f"Layer '{self.name}': query and key need the same last "
                             f"dimension; received query {q} and key {k}.")
        if v[1] is not None and k[1] is not None and v[1] != k[1]:
            raise ValueError(f"Layer '{self.name}': value and key need the same number of "
                             f"timesteps; received value {v} and key {k}.")
        self._build_scores(q)
        self.built = True

    def _build_scores(self, query_shape):
        self.scale = self.add_weight("scale", (), "ones") if self.use_scale else None
        self.concat_score_weight = (self.add_weight("concat_score_weight", (), "ones")
                                    if self.score_mode == "concat" else None)

    def compute_output_shape(self, input_shape, return_attention_scores=False, **_):
        self._validate(input_shape)
        q, v = tuple(input_shape[0]), tuple(input_shape[1])
        k = tuple(input_shape[2]) if len(input_shape) > 2 else v
        out = q[:-1] + (v[-1],)
        return [out, q[:-1] + (k[-2],)] if return_attention_scores else out

    def compute_mask(self, inputs, mask=None):
        self._validate(inputs, mask)
        if mask is None or mask[0] is None:
            return None
        return np.asarray(mask[0], bool)

    # --- scores: S = score(q, k) and its backward -----------------------------------------
    def _scores(self, q, k):
        if self.score_mode == "dot":
            raw = q @ np.swapaxes(k, -1, -2)                        # (B, Tq, Tv)
            if self.scale is None:
                return raw, raw
            return raw * self.scale.value, raw
        pre = q[:, :, None, :] + k[:, None, :, :]                   # (B, Tq, Tv, D)
        if self.scale is not None:
            pre = self.scale.value * pre
        z = np.tanh(pre)
        zsum = z.sum(axis=-1)
        return self.concat_score_weight.value * zsum, (q, k, z, zsum)

    def _scores_backward(self, cache, q, k, ds):
        """dq, dk and the weight gradients ([dscale?, dconcat?]) from dS."""
        if self.score_mode == "dot":
            raw = cache
            scale = 1.0 if self.scale is None else self.scale.value
            # S = scale * q k^T  =>  dq = scale dS k,  dk = scale dS^T q,  dscale = sum(dS * q k^T)
            dq = (ds @ k) * scale
            dk = (np.swapaxes(ds, -1, -2) @ q) * scale
            dw = [] if self.scale is None else [np.sum(ds * raw, dtype=ds.dtype)]
            return dq, dk, dw
        _, _, z, zsum = cache
        c = self.concat_score_weight.value
        # S = c * sum_d z,  z = tanh(pre)  =>  dc = sum(dS * sum_d z),  dpre = c dS (1 - z^2)
        dc = np.sum(ds * zsum, dtype=ds.dtype)
        dpre = (c * ds)[..., None] * (1.0 - z * z)
        dw = []
        if self.scale is not None:
            # pre = scale * (q_i + k_j)  =>  dscale = sum(dpre * (q_i + k_j)),
            #                                d(q_i + k_j) = scale dpre
            summed = q[:, :, None, :] + k[:, None, :, :]
            dw.append(np.sum(dpre * summed, dtype=ds.dtype))
            dpre = dpre * self.scale.value
        dw.append(dc)
        return dpre.sum(axis=2), dpre.sum(axis=1), dw

    # --- forward and backward -------------------------------------------------------------
    def forward(self, inputs, *, training=False, mask=None, return_attention_scores=False,
                use_causal_mask=False):
        self._validate(inputs, mask)
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        q_mask = None if mask is None or mask[0] is None else np.asarray(mask[0], bool)
        v_mask = None if mask is None or mask[1] is None else np.asarray(mask[1], bool)
        s, score_cache = self._scores(q, k)
        allowed = None if v_mask is None else v_mask[:, None, :]          # (B, 1, Tv)
        if use_causal_mask:
            causal = causal_mask(s.shape[-2], s.shape[-1])
            allowed = causal if allowed is None else allowed & causal
        if allowed is not None:                    # Keras 3: masked scores are lowered by 1e9
            s = np.where(allowed, s, s - np.asarray(1e9, s.dtype))
        w = np.exp(s - s.max(axis=-1, keepdims=True))
        w /= w.sum(axis=-1, keepdims=True)
        drop = None
        if training and self.dropout > 0:
            drop = dropout_scale(self, w.shape, w.dtype)
            w_used = w * drop
        else:
            w_used = w
        out = w_used @ v                                                    # (B, Tq, D)
        if q_mask is not None:
            out = out * q_mask[..., None]
        cache = (inputs, q, v, k, score_cache, w, drop, w_used, q_mask, return_attention_scores)
        return ([out, w_used] if return_attention_scores else out), cache

    def backward(self, cache, doutputs):
        inputs, q, v, k, score_cache, w, drop, w_used, q_mask, with_scores = cache
        if with_scores:
            dout, dscores = doutputs
        else:
            dout, dscores = doutputs, None
        dw_used = np.zeros_like(w_used) if dscores is None else np.array(dscores, w.dtype)
        dv = np.zeros_like(v)
        if dout is not None:
            if q_mask is not None:                     # out = where(q_mask, W v, 0)
                dout = dout * q_mask[..., None]
            # out = W v  =>  dW = dout v^T,  dv = W^T dout
            dw_used = dw_used + dout @ np.swapaxes(v, -1, -2)
            dv = np.swapaxes(w_used, -1, -2) @ dout
        dw = dw_used if drop is None else dw_used * drop      # W_used = W * drop
        ds = softmax_backward(w, dw)           # the masked scores' offset has derivative 1
        dq, dk, dweights = self._scores_backward(score_cache, q, k, ds)
        if len(inputs) > 2:
            return [dq, dv, dk], dweights
        return [dq, dv + dk], dweights                                    # key = value

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention, as ``keras.layers.AdditiveAttention``:
    ``S_ij = sum_d scale_d * tanh(q_id + k_jd)``, with the weight ``scale`` of shape
    ``(D,)`` (glorot uniform) when ``use_scale``, else 1."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        if "score_mode" in kwargs:
            raise TypeError("Unrecognized keyword arguments passed to AdditiveAttention: "
                            "{'score_mode': ...}")
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def _build_scores(self, query_shape):
        self.concat_score_weight = None
        self.scale = (self.add_weight("scale", (query_shape[-1],), "glorot_uniform")
                      if self.use_scale else None)

    def _scores(self, q, k):
        z = np.tanh(q[:, :, None, :] + k[:, None, :, :])                 # (B, Tq, Tv, D)
        return (z if self.scale is None else z * self.scale.value).sum(axis=-1), z

    def _scores_backward(self, z, q, k, ds):
        scale = 1.0 if self.scale is None else self.scale.value
        # S = sum_d scale_d z,  z = tanh(q_i + k_j)
        #   =>  dscale = sum(dS z),  dpre = dS scale (1 - z^2)
        dw = [] if self.scale is None else [np.einsum("bqv,bqvd->d", ds, z)]
        dpre = ds[..., None] * scale * (1.0 - z * z)
        return dpre.sum(axis=2), dpre.sum(axis=1), dw

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config


__all__ = ["Attention", "AdditiveAttention"]
KERAS_LAYERS = {
    "Attention": (Attention, "attention", ("use_scale", "score_mode", "dropout", "seed")),
    "AdditiveAttention": (AdditiveAttention, "additive_attention",
                          ("use_scale", "dropout", "seed")),
}
