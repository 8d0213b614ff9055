"""ONNX export of the companion layers and activations (issue 25): each in a small model with
recurrent layers; onnxruntime runs the exported graph (the reference of test_interop_onnx.py)
and its outputs equal ``predict`` at rtol 1e-5 / atol 1e-6 (float32); ``onnx.checker`` passes
with full shape inference; what has no form here is refused with the layer named."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from unrolled import activations
from unrolled.interop.onnx_export import to_onnx
from unrolled.layers import (ELU, GRU, LSTM, ActivityRegularization, AdditiveAttention,
                             Attention, AveragePooling1D, BatchNormalization, Concatenate, Conv1D,
                             Cropping1D, Dense, Dot, Dropout, Embedding, Flatten, GaussianDropout,
                             GaussianNoise, GlobalAveragePooling1D, GlobalMaxPooling1D,
                             GroupNormalization, Input, LayerNormalization, LeakyReLU, Masking,
                             MaxPooling1D, MultiHeadAttention, Permute, PReLU, ReLU,
                             SeparableConv1D, SimpleRNN, Softmax, SpatialDropout1D,
                             UnitNormalization, UpSampling1D, ZeroPadding1D)
from unrolled.models import Model, Sequential

RTOL, ATOL = 1e-5, 1e-6
pytestmark = pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`:UserWarning")
B, T, F = 3, 8, 4


def randomize(model, seed=0, scale=0.5):
    """Weights that differ per entry; variances (BatchNormalization's) kept positive."""
    rng = np.random.default_rng(seed)
    ws = []
    for layer in model.layers:
        for w in layer.weights:
            v = rng.standard_normal(w.shape) * scale
            if "variance" in w.name:
                v = np.abs(v) + 0.3
            ws.append(v.astype("float32"))
    model.set_weights(ws)
    return model


def seq(*layers, steps=T):
    return Sequential([Input((steps, F))] + list(layers))


def rs(kind=LSTM, units=5):
    return kind(units, return_sequences=True)


def run(tmp_path, model, xs, opset=None):
    path = tmp_path / "m.onnx"
    proto = to_onnx(model, path) if opset is None else to_onnx(model, path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: x for i, x in zip(sess.get_inputs(), xs)}
    return proto, sess.run(None, feeds)


def check(tmp_path, model, x=None, opset=None, seed=3):
    """onnxruntime's outputs equal predict; returns the proto's operator types."""
    x = np.random.default_rng(seed).standard_normal((B, T, F)).astype("float32") if x is None else x
    ref = model.predict(x, verbose=0)
    ref = ref if isinstance(ref, list) else [ref]
    proto, got = run(tmp_path, model, [x], opset)
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        assert a.shape == b.shape and np.isfinite(b).all()
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    return [n.op_type for n in proto.graph.node]


MODELS = {
    # Conv1D: padding valid / same / causal, strides, dilations, groups, activation
    "conv_valid": (lambda: seq(Conv1D(5, 3), LSTM(4)), "Conv"),
    "conv_same_stride": (lambda: seq(Conv1D(6, 3, strides=2, padding="same", activation="relu"),
                                     GRU(3)), "Conv"),
    "conv_same_even_kernel": (lambda: seq(Conv1D(3, 4, padding="same"), rs(SimpleRNN, 2)), "Conv"),
    "conv_causal_dilated_groups": (lambda: seq(Conv1D(4, 3, padding="causal", dilation_rate=2,
                                                      groups=2, use_bias=False), SimpleRNN(3)),
                                   "Conv"),
    "lstm_conv_gelu": (lambda: seq(rs(), Conv1D(3, 2, activation="gelu")), "Erf"),
    "separable": (lambda: seq(SeparableConv1D(5, 3, depth_multiplier=2, padding="same",
                                              activation="tanh"), LSTM(3)), "Conv"),
    "separable_valid_dilated": (lambda: seq(SeparableConv1D(2, 2, dilation_rate=2, use_bias=False),
                                            GRU(2)), "Conv"),
    # pooling
    "max_avg_pool": (lambda: seq(rs(), MaxPooling1D(2), AveragePooling1D(3, strides=1,
                                                                         padding="same"), GRU(3)),
                     "AveragePool"),
    "max_pool_same_stride": (lambda: seq(rs(), MaxPooling1D(3, strides=2, padding="same"),
                                         LSTM(2)), "MaxPool"),
    "avg_pool_valid_stride": (lambda: seq(rs(GRU), AveragePooling1D(3, strides=2), SimpleRNN(2)),
                              "AveragePool"),
    "global_max": (lambda: seq(rs(), GlobalMaxPooling1D(), Dense(2)), "ReduceMax"),
    "global_avg_keepdims": (lambda: seq(rs(GRU), GlobalAveragePooling1D(keepdims=True), Flatten()),
                            "ReduceMean"),
    # normalization
    "layer_norm": (lambda: seq(rs(), LayerNormalization(), GRU(3)), "LayerNormalization"),
    "layer_norm_two_axes": (lambda: seq(rs(), LayerNormalization(axis=[1, 2]), LSTM(2)),
                            "LayerNormalization"),
    "layer_norm_steps_axis": (lambda: seq(rs(), LayerNormalization(axis=1, center=False), LSTM(2)),
                              "ReduceMean"),
    "layer_norm_no_scale": (lambda: seq(rs(GRU), LayerNormalization(scale=False), SimpleRNN(2)),
                            "LayerNormalization"),
    "layer_norm_rms": (lambda: seq(rs(), LayerNormalization(rms_scaling=True), GRU(2)),
                       "ReduceMean"),
    "batch_norm": (lambda: seq(rs(), BatchNormalization(), GRU(3)), "Mul"),
    "batch_norm_steps_axis_no_center": (
        lambda: seq(rs(), BatchNormalization(axis=1, center=False), LSTM(2)), "Mul"),
    "batch_norm_2d_no_scale": (lambda: seq(LSTM(4), BatchNormalization(scale=False, epsilon=0.1)),
                               "Mul"),
    "group_norm": (lambda: seq(rs(LSTM, 6), GroupNormalization(groups=3), GRU(2)), "Reshape"),
    "group_norm_steps_axis": (lambda: seq(rs(), GroupNormalization(groups=2, axis=1), LSTM(2)),
                              "Reshape"),
    "instance_norm_no_center": (lambda: seq(rs(GRU, 4), GroupNormalization(groups=-1,
                                                                            center=False),
                                            SimpleRNN(2)), "Reshape"),
    "unit_norm": (lambda: seq(rs(), UnitNormalization(), GRU(2)), "ReduceSumSquare"),
    "unit_norm_two_axes": (lambda: seq(rs(), UnitNormalization(axis=[1, 2]), LSTM(2)),
                           "ReduceSumSquare"),
    # activation layers
    "relu_plain": (lambda: seq(rs(), ReLU(), GRU(2)), "Relu"),
    "relu_max_value": (lambda: seq(rs(), ReLU(max_value=0.3), GRU(2)), "Clip"),
    "relu_slope": (lambda: seq(rs(), ReLU(negative_slope=0.3), GRU(2)), "LeakyRelu"),
    "relu_threshold_slope": (lambda: seq(rs(), ReLU(negative_slope=0.1, threshold=0.2), GRU(2)),
                             "ThresholdedRelu"),
    "relu_all_three": (lambda: seq(rs(), ReLU(max_value=0.4, negative_slope=0.2, threshold=0.1),
                                   GRU(2)), "ThresholdedRelu"),
    "leaky_relu": (lambda: seq(rs(), LeakyReLU(0.1), GRU(2)), "LeakyRelu"),
    "prelu": (lambda: seq(rs(), PReLU(), GRU(2)), "PRelu"),
    "prelu_shared_steps": (lambda: seq(rs(), PReLU(shared_axes=[1]), LSTM(2)), "PRelu"),
    "elu": (lambda: seq(rs(), ELU(0.7), GRU(2)), "Elu"),
    "softmax_last": (lambda: seq(rs(), Softmax(), GRU(2)), "Softmax"),
    "softmax_steps": (lambda: seq(rs(), Softmax(axis=1), GRU(2)), "Softmax"),
    "softmax_two_axes": (lambda: seq(rs(), Softmax(axis=[1, 2]), GRU(2)), "ReduceSum"),
    # identities at inference, moving steps
    "noise_layers": (lambda: seq(rs(), GaussianNoise(0.3), GaussianDropout(0.3),
                                 SpatialDropout1D(0.3), ActivityRegularization(0.01, 0.02),
                                 Dropout(0.5), GRU(2)), "Identity"),
    "permute": (lambda: seq(rs(), Permute((2, 1)), GRU(3)), "Transpose"),
    "upsampling": (lambda: seq(rs(), UpSampling1D(3), LSTM(2)), "Tile"),
    "zero_padding": (lambda: seq(rs(), ZeroPadding1D((1, 2)), GRU(2, return_sequences=True)),
                     "Pad"),
    "cropping": (lambda: seq(rs(), Cropping1D((2, 1)), GRU(2, return_sequences=True)), "Slice"),
    "cropping_start_only": (lambda: seq(rs(), Cropping1D((1, 0)), GRU(2, return_sequences=True)),
                            "Slice"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnxruntime_matches_predict(tmp_path, name):
    build, op = MODELS[name]
    model = randomize(build())
    ops = check(tmp_path, model)
    assert op in ops                             # the form meant for this layer was used


def _attention_model(kind):
    i = Input((T, F))
    q, v, k = rs(LSTM, 3)(i), rs(GRU, 3)(i), rs(SimpleRNN, 3)(i)
    if kind == "dot":
        y = Attention()([q, v])
    elif kind == "dot_scale_key_causal":
        y = Attention(use_scale=True)([q, v, k], use_causal_mask=True)
    elif kind == "concat_scale":
        y = Attention(use_scale=True, score_mode="concat", dropout=0.3)([q, v, k])
    elif kind == "additive":
        y = AdditiveAttention()([q, v])
    else:
        y = AdditiveAttention(use_scale=False)([q, v], use_causal_mask=True)
    return Model(i, GRU(2)(y))


@pytest.mark.parametrize("kind", ["dot", "dot_scale_key_causal", "concat_scale", "additive",
                                  "additive_no_scale_causal"])
def test_attention_matches_predict(tmp_path, kind):
    model = randomize(_attention_model(kind), scale=0.8)
    for layer in model.layers:                   # scalar weights away from 1
        if type(layer).__name__ == "Attention" and layer.use_scale:
            layer.scale.assign(np.asarray(1.7, "float32"))
        if getattr(layer, "concat_score_weight", None) is not None:
            layer.concat_score_weight.assign(np.asarray(-0.6, "float32"))
    assert "Softmax" in check(tmp_path, model)


# every activation name a layer takes, through Dense and through Conv1D after an LSTM; their
# kernels are scaled so that the pre-activations span more than [-3, 3]: every branch of the
# piecewise ones (|x| < 1, |x| > 3, ...) is reached (asserted). No layer after them:
# exponential's e^8 would amplify float32 rounding beyond the tolerance.
@pytest.mark.parametrize("name", sorted(activations.names()))
def test_every_activation_matches_predict(tmp_path, name):
    i = Input((T, F))
    h = rs()(i)
    dense, conv = Dense(6, activation=name), Conv1D(3, 2, padding="causal", activation=name)
    y = Concatenate()([dense(h), conv(h)])
    model = randomize(Model(i, y))
    for layer in (dense, conv):
        layer.kernel.assign(layer.kernel.value * 8)
    x = np.random.default_rng(5).standard_normal((B, T, F)).astype("float32")
    hv = Model(i, h).predict(x, verbose=0)
    pre = [hv @ dense.kernel.value + dense.bias.value,
           conv.forward(hv)[1][1]]                 # z, before the activation
    for z in pre:
        assert z.min() < -3 and z.max() > 3 and (np.abs(z) < 1).any()
    check(tmp_path, model, x)


def test_dynamic_steps_same_padding(tmp_path):
    """With unknown steps, 'same' is ONNX's SAME_UPPER: the extra step on the right, as
    TensorFlow; the one graph serves odd and even lengths."""
    model = randomize(Sequential([
        Input((None, F)), Conv1D(4, 4, strides=3, padding="same"),
        MaxPooling1D(3, strides=2, padding="same"), rs(GRU, 3),
        AveragePooling1D(2, padding="same"), Conv1D(2, 3, padding="causal"), LSTM(2)]))
    path = tmp_path / "m.onnx"
    to_onnx(model, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for steps in (7, 8, 13):
        x = rng.standard_normal((B, steps, F)).astype("float32")
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("opset,op", [(16, "ReduceMean"), (17, "LayerNormalization"),
                                      (18, "LayerNormalization")])
def test_opsets(tmp_path, opset, op):
    """Below 17 LayerNormalization is composed; from 18 the Reduce* axes are inputs."""
    model = randomize(seq(rs(), LayerNormalization(), GlobalAveragePooling1D(keepdims=True),
                          UnitNormalization(), GlobalMaxPooling1D(), Dense(2)))
    ops = check(tmp_path, model, opset=opset)
    assert op in ops
    proto = to_onnx(model, tmp_path / "again.onnx", opset=opset)
    means = [n for n in proto.graph.node if n.op_type == "ReduceMean"]
    assert means and all((len(n.input) == 2) == (opset >= 18) for n in means)


def _dot_model(kind):
    i = Input((T, F))
    if kind == "two_d":
        return Model(i, Dot(axes=1)([LSTM(3)(i), GRU(3)(i)]))
    a, b = rs(LSTM, 3)(i), rs(GRU, 3)(i)
    if kind == "features":                     # (B, T, T): every step against every step
        return Model(i, GRU(2)(Dot(axes=2)([a, b])))
    c = rs(SimpleRNN, 5)(i)                    # (B, 3, 5): cosine over the steps
    return Model(i, LSTM(2)(Dot(axes=(1, 1), normalize=True)([a, c])))


@pytest.mark.parametrize("kind", ["two_d", "features", "steps_normalized"])
def test_dot_matches_predict(tmp_path, kind):
    assert "MatMul" in check(tmp_path, randomize(_dot_model(kind)))


def _dot_unknown_steps():
    i = Input((None, F))
    a = rs()(i)
    return Model(i, Dot(axes=2, name="dot_dyn")([a, a]))


def _many_layers():
    i = Input((T, F))
    h = Conv1D(4, 3, padding="same", activation="hard_silu")(i)
    h = LayerNormalization()(rs()(h))
    h = GroupNormalization(groups=5, axis=-1)(h)
    h = MaxPooling1D(2, padding="same")(Softmax(axis=1)(h))
    a = Attention(use_scale=True)([h, rs(GRU, 5)(h)])
    h = UnitNormalization()(BatchNormalization()(a))
    h = Dense(3, activation="mish")(GlobalAveragePooling1D()(h))
    return Model(i, [h, GlobalMaxPooling1D()(Cropping1D((1, 1))(a))])


@pytest.mark.parametrize("opset", [13, 14, 16, 17, 18, 21])
def test_many_layers_at_several_opsets(tmp_path, opset):
    ops = check(tmp_path, randomize(_many_layers()), opset=opset)
    assert ("HardSwish" in ops) == (opset >= 14)
    assert ("LayerNormalization" in ops) == (opset >= 17)


def test_opset_below_13_refused(tmp_path):
    with pytest.raises(ValueError, match="opset 12"):
        to_onnx(randomize(seq(LSTM(2))), tmp_path / "m.onnx", opset=12)


def _masked_gap():
    return seq(Masking(), rs(), GlobalAveragePooling1D())


def _embedding_softmax():
    return Sequential([Input((T,), dtype="int64"), Embedding(5, 3, mask_zero=True),
                       rs(GRU, 2), Softmax()])


def _training_call():
    i = Input((T, F))
    return Model(i, GRU(2)(BatchNormalization(name="bn_train")(rs()(i), training=True)))


def _causal_unknown_steps():
    i = Input((None, F))
    a = rs()(i)
    return Model(i, Attention(name="causal_att")([a, a], use_causal_mask=True))


def _mha():
    i = Input((T, F))
    a = rs()(i)
    return Model(i, MultiHeadAttention(2, 3, name="mha")(a, a))


def _scores():
    i = Input((T, F))
    a = rs()(i)
    return Model(i, Attention(name="att_scores")([a, a], return_attention_scores=True))


@pytest.mark.parametrize("build,match", [
    (_masked_gap, "'masking.*Masking"),                 # a mask would reach the pooling
    (_embedding_softmax, "mask_zero=True makes a mask"),
    (_training_call, "'bn_train'.*training=True"),
    (_causal_unknown_steps, "'causal_att'.*use_causal_mask"),
    (_mha, "'mha'.*MultiHeadAttention"),
    (_dot_unknown_steps, "'dot_dyn'.*must be known"),
    (_scores, "'att_scores'.*several outputs"),
    (lambda: Sequential([Input((T, F), dtype="float64"), Conv1D(2, 2, dtype="float64", name="c64"),
                         LSTM(2, dtype="float64")]), "'c64'.*float64"),
])
def test_refused_with_the_layer_named(tmp_path, build, match):
    with pytest.raises(ValueError, match=match):
        to_onnx(build(), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
