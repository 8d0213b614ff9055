"""Attention and AdditiveAttention (issue 25): outputs, attention scores and gradients
against Keras 3 (tf.GradientTape) with query/value masks, the causal mask and a separate
key, float64 finite differences, dropout by its properties, models with recurrent layers
trained side by side with Keras, and files both ways."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from gradcheck import numeric_grad

import unrolled

B, TQ, TV, D = 3, 4, 6, 5
CASES = [  # (class, constructor arguments)
    ("Attention", {}),
    ("Attention", {"use_scale": True}),
    ("Attention", {"score_mode": "concat"}),
    ("Attention", {"score_mode": "concat", "use_scale": True}),
    ("AdditiveAttention", {}),
    ("AdditiveAttention", {"use_scale": False}),
]
CALLS = [  # (with key, with masks, use_causal_mask, return_attention_scores)
    (False, False, False, False),
    (True, True, False, True),
    (False, True, True, True),
    (True, False, True, False),
]



def _paths(layer):
    """Weight paths below the layer's name: automatic names count per process, and Keras
    and unrolled count different layers."""
    return [w.path.split("/", 1)[1] for w in layer.weights]

def _data(rng, dtype="float32", key=True, masks=True):
    q = (rng.standard_normal((B, TQ, D)) * 0.8).astype(dtype)
    v = (rng.standard_normal((B, TV, D)) * 0.8).astype(dtype)
    k = (rng.standard_normal((B, TV, D)) * 0.8).astype(dtype) if key else None
    mask = None
    if masks:
        qm = np.ones((B, TQ), bool)
        qm[0, 3:] = False
        qm[2, 1] = False
        vm = np.ones((B, TV), bool)
        vm[0, 4:] = False
        vm[1, 0] = False                   # with the causal mask, query 0 of sample 1 sees no key
        vm[2, :] = False                   # every key masked: scores lowered by 1e9 alike
        mask = [qm, vm]
    return [q, v] + ([k] if key else []), mask


def _pair(name, kwargs, rng, dtype="float32"):
    """The same layer in Keras and unrolled, built, with non-trivial weights."""
    theirs = getattr(keras.layers, name)(**kwargs, dtype=dtype)
    ours = getattr(unrolled.layers, name)(**kwargs, dtype=dtype)
    shapes = [(B, TQ, D), (B, TV, D)]
    theirs.build(shapes)
    ours.build(shapes)
    weights = [np.asarray(0.5 + rng.uniform(0.2, 1.0, np.shape(w)), dtype)
               for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours


@pytest.mark.parametrize("name,kwargs", CASES)
@pytest.mark.parametrize("key,masks,causal,scores", CALLS)
def test_outputs_and_gradients_equal_keras(name, kwargs, key, masks, causal, scores, rng):
    theirs, ours = _pair(name, kwargs, rng)
    assert _paths(theirs) == _paths(ours)
    xs, mask = _data(rng, key=key, masks=masks)
    call = dict(use_causal_mask=causal, return_attention_scores=scores)
    out, cache = ours.forward(xs, mask=mask, **call)
    tx = [tf.constant(x) for x in xs]
    with tf.GradientTape() as tape:
        tape.watch(tx)
        ref = theirs(tx, mask=None if mask is None else [tf.constant(m) for m in mask], **call)
        refs = list(ref) if scores else [ref]
        douts = [rng.standard_normal(r.shape).astype("float32") for r in refs]
        loss = sum(tf.reduce_sum(r * d) for r, d in zip(refs, douts))
    want_dx, want_dw = tape.gradient(loss, [tx, theirs.trainable_weights])
    for got, want in zip(out if scores else [out], refs):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=2e-6)
    dxs, dws = ours.backward(cache, douts if scores else douts[0])
    for got, want in zip(dxs, want_dx):
        np.testing.assert_allclose(got, want.numpy(), rtol=5e-5, atol=5e-6)
    assert len(dws) == len(want_dw)
    for got, want in zip(dws, want_dw):
        np.testing.assert_allclose(got, want.numpy(), rtol=5e-5, atol=5e-6)
    if masks:                                           # output zero where the query is masked
        assert np.all((out[0] if scores else out)[~mask[0]] == 0)
        np.testing.assert_array_equal(ours.compute_mask(xs, mask), mask[0])


@pytest.mark.parametrize("name,kwargs", CASES)
@pytest.mark.parametrize("key,causal", [(False, False), (True, True)])
def test_float64_gradients_match_finite_differences(name, kwargs, key, causal, rng):
    layer = getattr(unrolled.layers, name)(**kwargs, dtype="float64")
    layer.build([(B, TQ, D), (B, TV, D)])
    layer.set_weights([0.5 + rng.uniform(0.2, 1.0, np.shape(w)) for w in layer.get_weights()])
    xs, mask = _data(rng, "float64", key=key)
    mask[1][2, :3] = True                  # (no row whose every key is masked: at 1e9 the
    mask[1][1, 0] = True                   #  finite differences lose their digits)
    douts = [rng.standard_normal((B, TQ, D)), rng.standard_normal((B, TQ, TV))]
    call = dict(mask=mask, use_causal_mask=causal, return_attention_scores=True)

    def loss():
        out, scores = layer.forward(xs, **call)[0]
        return float(np.sum(out * douts[0]) + np.sum(scores * douts[1]))

    _, cache = layer.forward(xs, **call)
    dxs, dws = layer.backward(cache, douts)
    for x, g in zip(xs, dxs):
        np.testing.assert_allclose(g, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    for w, g in zip(layer.weights, dws):
        np.testing.assert_allclose(g, numeric_grad(loss, w.value), rtol=1e-6, atol=1e-8)


# --- MultiHeadAttention ----------------------------------------------------------------------
DQ, DV = 5, 3
MHA_CASES = [
    dict(num_heads=2, key_dim=3),
    dict(num_heads=3, key_dim=2, value_dim=4, use_bias=False),
    dict(num_heads=2, key_dim=4, output_shape=6),
    dict(num_heads=1, key_dim=3, output_shape=(2, 3)),
    dict(num_heads=2, key_dim=2, sliding_window=2),
]
MHA_CALLS = [  # (key, masks, attention_mask, causal, scores): scores take Keras's other path
    (False, False, False, False, False),
    (True, True, False, False, False),
    (False, True, True, True, False),
    (True, True, False, True, True),
    (False, True, True, False, True),
]


def _mha_data(rng, dtype="float32", key=True, masks=True, attention_mask=False):
    q = (rng.standard_normal((B, TQ, DQ)) * 0.8).astype(dtype)
    v = (rng.standard_normal((B, TV, DV)) * 0.8).astype(dtype)
    k = (rng.standard_normal((B, TV, 2)) * 0.8).astype(dtype) if key else None
    qm = vm = km = am = None
    if masks:
        _, (qm, vm) = _data(rng)                  # a masked query row: every key masked
        vm[2, :2] = True
        if key:
            km = np.ones((B, TV), bool)
            km[1, 5] = False
    if attention_mask:
        am = rng.uniform(size=(B, TQ, TV)) > 0.3
        am[:, :, 0] = True
        am[1, 2, :] = False                       # a row with no key at all
    return q, v, k, dict(query_mask=qm, value_mask=vm, key_mask=km), am


def _mha_pair(kwargs, rng, key, dtype="float32"):
    theirs = keras.layers.MultiHeadAttention(**kwargs, dtype=dtype)
    ours = unrolled.layers.MultiHeadAttention(**kwargs, dtype=dtype)
    shapes = [(B, TQ, DQ), (B, TV, DV), (B, TV, 2 if key else DV)]
    theirs.build(*shapes)
    ours.build(shapes)
    weights = [(rng.standard_normal(np.shape(w)) * 0.6).astype(dtype)
               for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours


@pytest.mark.parametrize("kwargs", MHA_CASES)
@pytest.mark.parametrize("key,masks,attention_mask,causal,scores", MHA_CALLS)
def test_mha_outputs_and_gradients_equal_keras(kwargs, key, masks, attention_mask, causal,
                                               scores, rng):
    from keras.src.backend import set_keras_mask
    theirs, ours = _mha_pair(kwargs, rng, key)
    assert _paths(theirs) == _paths(ours)
    q, v, k, m, am = _mha_data(rng, key=key, masks=masks, attention_mask=attention_mask)
    call = dict(use_causal_mask=causal, return_attention_scores=scores)
    out, cache = ours.forward([q, v, v if k is None else k] + ([am] if am is not None else []),
                              mask=[m["query_mask"], m["value_mask"], m["key_mask"]], **call)
    tq, tv = tf.constant(q), tf.constant(v)
    tk = None if k is None else tf.constant(k)
    with tf.GradientTape() as tape:
        tape.watch([t for t in (tq, tv, tk) if t is not None])
        for t, name in ((tq, "query_mask"), (tv, "value_mask"), (tk, "key_mask")):
            if t is not None and m[name] is not None:
                set_keras_mask(t, tf.constant(m[name]))
        ref = theirs(tq, tv, key=tk, attention_mask=None if am is None else tf.constant(am),
                     **call)
        refs = list(ref) if scores else [ref]
        douts = [rng.standard_normal(r.shape).astype("float32") for r in refs]
        loss = sum(tf.reduce_sum(r * d) for r, d in zip(refs, douts))
    sources = [t for t in (tq, tv, tk) if t is not None]
    want_dx, want_dw = tape.gradient(loss, [sources, theirs.trainable_weights])
    for got, want in zip(out if scores else [out], refs):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=2e-6)
    dxs, dws = ours.backward(cache, douts if scores else douts[0])
    got_dx = [dxs[0], dxs[1] + (dxs[2] if k is None else 0)] + ([dxs[2]] if k is not None else [])
    for got, want in zip(got_dx, want_dx):
        np.testing.assert_allclose(got, want.numpy(), rtol=5e-5, atol=5e-6)
    assert len(dws) == len(want_dw)
    for got, want in zip(dws, want_dw):
        np.testing.assert_allclose(got, want.numpy(), rtol=5e-5, atol=5e-6)


@pytest.mark.parametrize("kwargs", MHA_CASES[:3])
@pytest.mark.parametrize("scores", [False, True])
def test_mha_float64_gradients_match_finite_differences(kwargs, scores, rng):
    layer = unrolled.layers.MultiHeadAttention(**kwargs, dtype="float64")
    layer.build([(B, TQ, DQ), (B, TV, DV), (B, TV, 2)])
    layer.set_weights([rng.standard_normal(np.shape(w)) * 0.6 for w in layer.get_weights()])
    q, v, k, m, am = _mha_data(rng, "float64", attention_mask=True)
    xs = [q, v, k, am]
    mask = [m["query_mask"], m["value_mask"], m["key_mask"]]
    out_shape = layer.compute_output_shape([q.shape, v.shape], return_attention_scores=True)
    douts = [rng.standard_normal(s) for s in out_shape]
    call = dict(mask=mask, use_causal_mask=True, return_attention_scores=scores)

    def loss():
        outs = layer.forward(xs, **call)[0]
        outs = outs if scores else [outs]
        return float(sum(np.sum(o * d) for o, d in zip(outs, douts)))

    _, cache = layer.forward(xs, **call)
    dxs, dws = layer.backward(cache, douts if scores else douts[0])
    assert dxs[3] is None                                   # the attention mask: no gradient
    for x, g in zip(xs[:3], dxs):
        np.testing.assert_allclose(g, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    for w, g in zip(layer.weights, dws):
        np.testing.assert_allclose(g, numeric_grad(loss, w.value), rtol=1e-6, atol=1e-8)


# --- models with recurrent layers: training side by side with Keras, files both ways ---------
VOCAB, T = 7, 6


def _bilstm_attention(mod):
    """A BiLSTM encoder attending to itself (masks from Embedding(mask_zero))."""
    x = mod.Input((T,), dtype="int32")
    e = mod.layers.Embedding(VOCAB, 4, mask_zero=True)(x)
    q = mod.layers.Bidirectional(mod.layers.LSTM(3, return_sequences=True))(e)
    a = mod.layers.Attention(use_scale=True)([q, q])
    h = mod.layers.LSTM(4)(a)
    return mod.Model(x, mod.layers.Dense(1)(h))


def _seq2seq(mod):
    """Encoder LSTM outputs as values, decoder LSTM outputs as queries, AdditiveAttention."""
    src, tgt = mod.Input((T,), dtype="int32"), mod.Input((T - 1,), dtype="int32")
    enc = mod.layers.LSTM(4, return_sequences=True)(
        mod.layers.Embedding(VOCAB, 3, mask_zero=True)(src))
    dec = mod.layers.LSTM(4, return_sequences=True)(
        mod.layers.Embedding(VOCAB, 3, mask_zero=True)(tgt))
    ctx = mod.layers.AdditiveAttention()([dec, enc])
    both = mod.layers.Concatenate()([dec, ctx])
    out = mod.layers.TimeDistributed(mod.layers.Dense(VOCAB, activation="softmax"))(both)
    return mod.Model([src, tgt], out)


def _lstm_mha(mod):
    """LSTM outputs through causal multi-head self-attention, then an LSTM reads them."""
    x = mod.Input((T,), dtype="int32")
    e = mod.layers.Embedding(VOCAB, 4, mask_zero=True)(x)
    q = mod.layers.LSTM(5, return_sequences=True)(e)
    a = mod.layers.MultiHeadAttention(2, 3)(q, q, use_causal_mask=True)
    h = mod.layers.LSTM(3)(a)
    return mod.Model(x, mod.layers.Dense(1)(h))


def _scores_out(mod):
    """Attention scores as a second output; attention with a key and a concat score."""
    x = mod.Input((T,), dtype="int32")
    e = mod.layers.Embedding(VOCAB, 4, mask_zero=True)(x)
    q = mod.layers.LSTM(4, return_sequences=True)(e)
    a, s = mod.layers.Attention(score_mode="concat", use_scale=True)(
        [q, e, q], return_attention_scores=True, use_causal_mask=True)
    b, s2 = mod.layers.MultiHeadAttention(2, 2, value_dim=3, output_shape=3)(
        q, e, key=q, return_attention_scores=True)
    return mod.Model(x, [mod.layers.Flatten()(a), s, b, s2])


def _mha_attention_mask(mod):
    """An attention mask as a second model input; dropout (identity in inference)."""
    x, am = mod.Input((T,), dtype="int32"), mod.Input((T, T), dtype="bool")
    q = mod.layers.LSTM(4, return_sequences=True)(
        mod.layers.Embedding(VOCAB, 4, mask_zero=True)(x))
    a = mod.layers.MultiHeadAttention(2, 3, dropout=0.2)(q, q, attention_mask=am)
    return mod.Model([x, am], mod.layers.Dense(1)(mod.layers.LSTM(3)(a)))


def _mha_keywords(mod):
    """Every tensor by keyword (Keras writes them in the node's kwargs); float inputs."""
    x = mod.Input((T, 4))
    q = mod.layers.LSTM(3, return_sequences=True)(mod.layers.Masking()(x))
    return mod.Model(x, mod.layers.MultiHeadAttention(2, 2)(query=q, value=x, key=q))


MODELS = {"bilstm-attention": _bilstm_attention, "seq2seq": _seq2seq, "lstm-mha": _lstm_mha,
          "scores": _scores_out, "mha-attention-mask": _mha_attention_mask,
          "mha-keywords": _mha_keywords}


def _tokens(rng, n, t):
    ids = rng.integers(1, VOCAB, (n, t))
    for row, length in zip(ids, rng.integers(2, t + 1, n)):
        row[length:] = 0                                   # padding at the end
    return ids.astype("int32")


def _xy(kind, rng, n=16):
    if kind == "seq2seq":
        x = [_tokens(rng, n, T), _tokens(rng, n, T - 1)]
        return x, rng.integers(0, VOCAB, (n, T - 1))
    if kind == "mha-attention-mask":
        return [_tokens(rng, n, T), rng.uniform(size=(n, T, T)) > 0.3], None
    if kind == "mha-keywords":
        x = rng.standard_normal((n, T, 4)).astype("float32")
        x[0, 4:] = 0                                            # masked steps
        return x, None
    return _tokens(rng, n, T), rng.standard_normal((n, 1)).astype("float32")


def _varied_weights(model, rng):
    return [(rng.standard_normal(w.shape) * 0.5 + (1.0 if w.ndim == 0 else 0)).astype("float32")
            for w in model.get_weights()]


@pytest.mark.parametrize("kind", ["bilstm-attention", "seq2seq", "lstm-mha"])
def test_fit_equals_keras(kind, rng):
    theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
    theirs.set_weights(_varied_weights(theirs, rng))
    ours.set_weights(theirs.get_weights())
    initial = theirs.get_weights()
    x, y = _xy(kind, rng)
    loss = "sparse_categorical_crossentropy" if kind == "seq2seq" else "mse"
    for mod, model in ((keras, theirs), (unrolled, ours)):
        model.compile(optimizer=mod.optimizers.Adam(0.02), loss=loss)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    kw = dict(epochs=3, batch_size=8, shuffle=False, verbose=0)
    want = theirs.fit(x, y, **kw).history["loss"]
    got = ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for var, a, b, start in zip(theirs.weights, ours.get_weights(), theirs.get_weights(),
                                initial):
        if var.path.endswith("key/bias"):
            # Adding the key bias adds q . b_k to every score of a query: softmax does not
            # change, so its gradient is 0 in exact arithmetic and Adam moves it by rounding
            # noise alone (Keras's own eager and graph runs differ by 1e-5 here). Both stay
            # put, within Adam's noise-normalized steps (6 steps of at most lr * 0.1 here).
            np.testing.assert_allclose(a, start, atol=6 * 0.02 * 0.1)
            np.testing.assert_allclose(b, start, atol=6 * 0.02 * 0.1)
            continue
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_files_both_ways(kind, ext, tmp_path, rng, shared):
    if ("files", kind) not in shared:           # one Keras model and run for both formats
        theirs = MODELS[kind](keras)
        theirs.set_weights(_varied_weights(theirs, rng))
        x, _ = _xy(kind, rng, n=5)
        shared["files", kind] = theirs, x, theirs.predict(x, verbose=0)
    theirs, x, want = shared["files", kind]
    theirs.save(tmp_path / f"k{ext}")
    ours = unrolled.models.load_model(tmp_path / f"k{ext}")
    got = ours.predict(x, verbose=0)
    for a, b in zip(unrolled.utils.to_list(got), keras.tree.flatten(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ours.save(tmp_path / f"u{ext}")
    back = keras.models.load_model(tmp_path / f"u{ext}")
    for a, b in zip(keras.tree.flatten(back.predict(x, verbose=0)), keras.tree.flatten(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [w.shape for w in back.weights] == [w.shape for w in theirs.weights]


def test_tf_keras_h5_loads_and_multi_head_attention_is_refused_by_name(tmp_path, rng):
    import tf_keras as k2
    x = k2.Input((5, 4))
    e = k2.layers.Masking()(x)
    q = k2.layers.LSTM(4, return_sequences=True)(e)
    a, s = k2.layers.Attention(use_scale=True, score_mode="concat")(
        [q, e], return_attention_scores=True, use_causal_mask=True)
    b = k2.layers.AdditiveAttention()([q, e])
    model = k2.Model(x, [k2.layers.Concatenate()([a, b]), s])
    model.set_weights(_varied_weights(model, rng))
    xs = rng.standard_normal((3, 5, 4)).astype("float32")
    xs[0, 3:] = 0
    xs[1, 0] = 0                                          # masked steps (Masking)
    model.save(tmp_path / "k2.h5")
    got = unrolled.models.load_model(tmp_path / "k2.h5").predict(xs, verbose=0)
    for g, w in zip(got, model.predict(xs, verbose=0)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    m2 = k2.Model(x, k2.layers.MultiHeadAttention(2, 3)(q, e))
    m2.save(tmp_path / "mha.h5")
    with pytest.raises(unrolled.io.safety.UnsupportedModelError, match="MultiHeadAttention"):
        unrolled.models.load_model(tmp_path / "mha.h5")


@pytest.mark.parametrize("make", [
    lambda x: unrolled.layers.Attention()([x, x]),
    lambda x: unrolled.layers.AdditiveAttention()([x, x]),
    lambda x: unrolled.layers.MultiHeadAttention(2, 2)(x, x)])
def test_code_and_exports_refuse_naming_the_layer(make, tmp_path):
    x = unrolled.Input((4, 3))
    y = make(x)
    name = y.node.layer.name
    model = unrolled.Model(x, unrolled.layers.Dense(1)(y))
    if isinstance(y.node.layer, unrolled.layers.MultiHeadAttention):  # the others export:
        with pytest.raises(ValueError, match=f"'{name}'"):     # test_interop_onnx_layers.py,
            unrolled.interop.to_onnx(model, tmp_path / "m.onnx")       # test_explain_layers.py
        with pytest.raises(ValueError, match=f"'{name}'"):
            unrolled.explain.to_numpy_code(model)
    if not isinstance(y.node.layer, unrolled.layers.MultiHeadAttention):  # it converts
        with pytest.raises(ValueError, match=f"'{name}'"):                  # (test_interop_
            unrolled.interop.to_torch(model)                                # torch_layers)


# --- dropout on the attention weights: properties (Keras's draws cannot be matched) ----------
@pytest.mark.parametrize("name", ["Attention", "AdditiveAttention"])
def test_attention_dropout_properties(name, rng):
    q = rng.standard_normal((8, 20, 5)).astype("float32")
    v = rng.standard_normal((8, 30, 5)).astype("float32")
    fresh = getattr(unrolled.layers, name)(dropout=0.3, seed=11)
    fresh.forward([q, v])                     # an unbuilt layer's forward builds it (24.12)
    assert fresh.built
    layer = getattr(unrolled.layers, name)(dropout=0.3, seed=11)
    layer.build([q.shape, v.shape])
    (out, w), _ = layer.forward([q, v], return_attention_scores=True)       # inference
    keras_layer = getattr(keras.layers, name)(dropout=0.3)
    keras_layer.build([q.shape, v.shape])
    keras_layer.set_weights(layer.get_weights())
    np.testing.assert_allclose(out, keras_layer([q, v], training=False).numpy(), rtol=1e-6,
                               atol=1e-6)
    (out_t, w_t), cache = layer.forward([q, v, v], training=True,   # (key given: dv alone)
                                        return_attention_scores=True)
    dropped = w_t == 0
    assert abs(dropped.mean() - 0.3) < 0.03                  # 4800 draws: 4.5 sigma
    np.testing.assert_allclose(w_t[~dropped], w[~dropped] / 0.7, rtol=1e-6)
    np.testing.assert_allclose(out_t, w_t @ v, rtol=1e-5, atol=1e-6)
    again = getattr(unrolled.layers, name)(dropout=0.3, seed=11)
    again.build([q.shape, v.shape])
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(again.forward([q, v], training=True)[0], out_t)  # same seed
    assert not np.array_equal(layer.forward([q, v], training=True)[0], out_t)   # next draw
    dout = rng.standard_normal(out.shape).astype("float32")
    dxs, _ = layer.backward(cache, [dout, None])               # backward reuses the draw
    np.testing.assert_allclose(dxs[1] - np.swapaxes(w_t, 1, 2) @ dout, 0, atol=1e-5)


@pytest.mark.parametrize("name", ["Attention", "AdditiveAttention", "MultiHeadAttention"])
def test_dropout_backward_matches_finite_differences_of_the_same_draw(name, rng):
    if name == "MultiHeadAttention":
        layer = unrolled.layers.MultiHeadAttention(2, 3, dropout=0.4, dtype="float64")
        xs = [rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3))]
        xs.append(xs[1])
    else:
        layer = getattr(unrolled.layers, name)(dropout=0.4, dtype="float64")
        xs = [rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3))]
    layer.build([x.shape for x in xs])
    dout = rng.standard_normal((2, 4, 3))

    def run():
        layer._generator = np.random.default_rng(5)            # the same draw every time
        return layer.forward(xs, training=True)

    def loss():
        return float(np.sum(run()[0] * dout))

    y, cache = run()
    assert not np.allclose(y, layer.forward(xs)[0])            # dropout did act
    dxs, dws = layer.backward(cache, dout)
    for x, g in zip(xs[:2], dxs):
        np.testing.assert_allclose(g if name != "MultiHeadAttention" or x is not xs[1]
                                   else dxs[1] + dxs[2], numeric_grad(loss, x), rtol=1e-6,
                                   atol=1e-8)
    for w, g in zip(layer.weights, dws):
        np.testing.assert_allclose(g, numeric_grad(loss, w.value), rtol=1e-6, atol=1e-8)


def test_mha_dropout_inference_equals_keras_and_seed_repeats(rng):
    theirs, ours = _mha_pair(dict(num_heads=2, key_dim=3, dropout=0.5, seed=3), rng, key=False)
    q, v, _, m, _ = _mha_data(rng, key=False)
    from keras.src.backend import set_keras_mask
    tq = tf.constant(q)
    set_keras_mask(tq, tf.constant(m["query_mask"]))           # Keras's unfused path: zeros
    want = theirs(tq, tf.constant(v), training=False).numpy()   # for rows with no key
    got = ours(q, v, query_mask=m["query_mask"], training=False)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=2e-6)
    other = unrolled.layers.MultiHeadAttention(2, 3, dropout=0.5, seed=3)
    other.build([q.shape, v.shape, v.shape])
    other.set_weights(ours.get_weights())
    np.testing.assert_array_equal(other(q, v, training=True), ours(q, v, training=True))
    assert not np.allclose(ours(q, v, training=True), ours(q, v))


# --- arguments, as Keras validates them; what is not implemented is refused by name -----------
def test_arguments_validated_and_unimplemented_ones_refused():
    with pytest.raises(ValueError, match="score_mode"):
        unrolled.layers.Attention(score_mode="general")
    with pytest.raises(ValueError, match="dropout"):
        unrolled.layers.AdditiveAttention(dropout=1.5)
    with pytest.raises(ValueError, match="num_heads"):
        unrolled.layers.MultiHeadAttention(0, 2)
    with pytest.raises(ValueError, match="key_dim"):
        unrolled.layers.MultiHeadAttention(2, "4")
    for kwargs, word in [(dict(attention_axes=(1, 2)), "attention_axes"),
                         (dict(use_gate=True), "use_gate"),
                         (dict(flash_attention=True), "flash_attention")]:
        with pytest.raises(NotImplementedError, match=word):
            unrolled.layers.MultiHeadAttention(2, 2, **kwargs)
    layer = unrolled.layers.Attention()
    x = np.zeros((2, 3, 4), "float32")
    with pytest.raises(ValueError, match="list of inputs"):
        layer(x)
    with pytest.raises(ValueError, match="length 2 or 3"):
        layer([x])
    with pytest.raises(TypeError, match="unexpected call argument 'causal'"):
        layer([x, x], causal=True)
    t = unrolled.Input((3, 4))
    with pytest.raises(TypeError, match="unexpected call argument 'causal'"):
        unrolled.layers.Attention()([t, t], causal=True)
    with pytest.raises(TypeError, match="needs a query and a value"):
        unrolled.layers.MultiHeadAttention(2, 2)(x)
    with pytest.raises(NotImplementedError, match="attention_mask"):
        unrolled.layers.MultiHeadAttention(2, 2)(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4, 5)))


def test_mha_regularizers_and_constraints_equal_keras(tmp_path, rng):
    def make(mod):
        x = mod.Input((T, 4))
        y = mod.layers.MultiHeadAttention(
            2, 3, kernel_regularizer=mod.regularizers.L2(0.01),
            bias_regularizer=mod.regularizers.L1(0.02),
            kernel_constraint=mod.constraints.MaxNorm(0.5))(x, x)
        return mod.Model(x, mod.layers.Dense(1)(mod.layers.Flatten()(y)))

    theirs, ours = make(keras), make(unrolled)
    theirs.set_weights(_varied_weights(theirs, rng))
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(sum(ours.losses), sum(float(v) for v in theirs.losses),
                               rtol=1e-5)
    x = rng.standard_normal((8, T, 4)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    for mod, model in ((keras, theirs), (unrolled, ours)):
        model.compile(optimizer=mod.optimizers.SGD(0.1), loss="mse")
    kw = dict(epochs=2, batch_size=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(ours.fit(x, y, **kw).history["loss"],
                               theirs.fit(x, y, **kw).history["loss"], rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    ours.save(tmp_path / "r.keras")
    back = keras.models.load_model(tmp_path / "r.keras")
    np.testing.assert_allclose(sum(float(v) for v in back.losses), sum(ours.losses), rtol=1e-5)


def test_mha_default_kernels_drawn_with_keras_einsum_fans():
    ours = unrolled.layers.MultiHeadAttention(4, 16, output_shape=48)
    ours.build([(None, 5, 64)] * 3)
    theirs = keras.layers.MultiHeadAttention(4, 16, output_shape=48)
    theirs.build((None, 5, 64), (None, 5, 64))
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert a.shape == b.shape
        if a.ndim == 3:             # query/key/value: fans 64 and 64; output: 64 and 48
            assert abs(a.std() / b.std() - 1) < 0.06, (a.std(), b.std())
            assert abs(a).max() <= abs(b).max() * 1.01
        else:
            assert not a.any() and not b.any()                 # zeros
