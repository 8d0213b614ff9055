"""PyTorch ↔ unrolled for the companion layers (issue 25): Conv1d, pooling, padding,
BatchNorm1d, LayerNorm, activation modules, MultiheadAttention; both directions against
real PyTorch (float32: rtol 1e-5, atol 1e-6), chains with recurrent layers, refusals."""
import numpy as np
import pytest
import torch
from torch import nn

from unrolled.interop.torch import from_torch, to_torch
from unrolled.interop.torch_layers import ChannelsLast
from unrolled.layers import (LSTM, AveragePooling1D, BatchNormalization, Conv1D, Dense, ELU,
                             GroupNormalization, Input, LayerNormalization, LeakyReLU,
                             MaxPooling1D, MultiHeadAttention, PReLU, ReLU, Softmax,
                             ZeroPadding1D, Activation)
from unrolled.models import Model, Sequential

RTOL, ATOL = 1e-5, 1e-6
# torch's note that padding='same' with an even kernel copies the input (it computes the same)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
B, C, L = 3, 4, 13
X_CF = np.random.default_rng(1).standard_normal((B, C, L)).astype("float32")   # (N, C, L)
X = X_CF.transpose(0, 2, 1).copy()                                               # (N, L, C)


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)


def randomize_torch(module, seed=0):
    """Parameters that differ per entry; BatchNorm running statistics too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return module.eval()


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    ws = [(rng.standard_normal(w.shape) * 0.5).astype("float32") for w in model.get_weights()]
    for i, w in enumerate(model.weights):                # variances must stay positive
        if "variance" in w.name:
            ws[i] = np.abs(ws[i]) + 0.5
    model.set_weights(ws)
    return model


def run_torch(module, *xs):
    with torch.no_grad():
        out = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in xs))
    return (out[0] if isinstance(out, tuple) else out).numpy()


def run_ours(ours, x):
    return ours.predict(x, verbose=0) if hasattr(ours, "predict") else ours(x)


def both_ways_channels_first(module, x_cf=X_CF):
    """from_torch gives channels-last layers: ours(x^T) = torch(x)^T; to_torch of them
    takes and gives (N, L, C) again."""
    module = randomize_torch(module)
    ref = run_torch(module, x_cf)
    ref = ref.transpose(0, 2, 1) if ref.ndim == 3 else ref
    x = x_cf.transpose(0, 2, 1) if x_cf.ndim == 3 else x_cf
    ours = from_torch(module, input_shape=None if x_cf.ndim == 3 else x_cf.shape[1:])
    close(run_ours(ours, x), ref)
    close(run_torch(to_torch(ours), x), ref)
    return ours


# --- Conv1d ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [
    dict(kernel_size=3), dict(kernel_size=3, padding=1), dict(kernel_size=4, padding="same"),
    dict(kernel_size=3, padding="same", dilation=2), dict(kernel_size=2, padding=3, bias=False),
    dict(kernel_size=3, stride=2, padding=2, groups=2), dict(kernel_size=5, stride=3),
    dict(kernel_size=3, padding="valid", dilation=3, groups=4), dict(kernel_size=1, bias=False),
], ids=str)
def test_conv1d_both_ways(kw):
    ours = both_ways_channels_first(nn.Conv1d(C, 8, **kw))
    conv = ours if isinstance(ours, Conv1D) else ours.layers[-1]
    assert conv.kernel.value.shape == (kw["kernel_size"], C // kw.get("groups", 1), 8)


@pytest.mark.parametrize("kw", [
    dict(), dict(padding="same"), dict(padding="same", strides=2), dict(padding="same", strides=3),
    dict(padding="causal"), dict(padding="causal", dilation_rate=2), dict(padding="same",
    dilation_rate=2, groups=2), dict(strides=2, use_bias=False), dict(activation="relu"),
    dict(padding="causal", activation="gelu", groups=4),
], ids=str)
@pytest.mark.parametrize("k", [2, 3])
def test_conv1d_layer_to_torch_and_back(kw, k):
    layer = Conv1D(8, k, **kw)
    layer.build(X.shape)
    randomize(layer)
    ref = layer(X)
    module = to_torch(layer)
    close(run_torch(module, X), ref)
    back = from_torch(module, input_shape=(None, C))
    close(run_ours(back, X), ref)
    conv = [x for x in getattr(back, "layers", [back]) if isinstance(x, Conv1D)][0]
    assert conv.padding == layer.padding                   # causal and same fold back


# --- pooling and padding ---------------------------------------------------------------------
@pytest.mark.parametrize("module", [
    lambda: nn.MaxPool1d(2), lambda: nn.MaxPool1d(3, 2), lambda: nn.MaxPool1d(3, 1, 1),
    lambda: nn.AvgPool1d(2), lambda: nn.AvgPool1d(4, 3),
    lambda: nn.AvgPool1d(5, 1, 2, count_include_pad=False),
    lambda: nn.ConstantPad1d((2, 1), 0.0), lambda: nn.ZeroPad1d(3),
], ids=lambda f: "")
def test_pooling_and_padding_both_ways(module):
    both_ways_channels_first(module())


@pytest.mark.parametrize("cls", [MaxPooling1D, AveragePooling1D])
@pytest.mark.parametrize("kw", [dict(pool_size=2), dict(pool_size=3, strides=2),
                                dict(pool_size=3, strides=1, padding="same"),
                                dict(pool_size=2, strides=1, padding="same"),
                                dict(pool_size=3, strides=2, padding="same"),
                                dict(pool_size=4, strides=3, padding="same")], ids=str)
def test_pooling_layers_to_torch_and_back(cls, kw):
    layer = cls(**kw)
    x = -np.abs(X) - 1 if cls is MaxPooling1D else X     # padding must not win a max
    ref = layer(x)
    module = to_torch(layer)
    close(run_torch(module, x), ref)
    back = from_torch(module, input_shape=(None, C))
    close(back(x), ref)
    assert (back.padding, back.strides) == (layer.padding, layer.strides)


def test_zero_padding_layer_to_torch():
    layer = ZeroPadding1D((1, 3))
    close(run_torch(to_torch(layer), X), layer(X))


# --- BatchNorm1d -----------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(eps=1e-3, momentum=0.3), dict(affine=False)], ids=str)
@pytest.mark.parametrize("rank", [2, 3])
def test_batchnorm1d_inference_both_ways(kw, rank):
    x = X_CF if rank == 3 else X[:, 0]
    ours = both_ways_channels_first(nn.BatchNorm1d(C, **kw), x)
    assert ours.momentum == pytest.approx(1 - kw.get("momentum", 0.1))
    assert ours.epsilon == pytest.approx(kw.get("eps", 1e-5))


@pytest.mark.parametrize("kw", [dict(), dict(center=False), dict(scale=False),
                                dict(center=False, scale=False, epsilon=0.01, momentum=0.5)],
                         ids=str)
@pytest.mark.parametrize("shape", [(B, L, C), (B, C)])
def test_batchnormalization_to_torch_and_back(kw, shape):
    layer = BatchNormalization(**kw)
    layer.build(shape)
    randomize(layer, 3)
    x = X if len(shape) == 3 else X[:, 0]
    ref = layer(x)
    module = to_torch(layer)
    close(run_torch(module, x), ref)
    close(run_ours(from_torch(module, input_shape=shape[1:]), x), ref)


def test_batchnorm_training_step_and_moving_statistics():
    """One training step from the same state: outputs and moving means agree; the moving
    variances do not, because PyTorch's running_var takes the unbiased batch variance
    (n / (n - 1) times Keras's biased one). With n = B*L = 39 entries per channel, this
    difference is (1 - momentum) * var / (n - 1) per step."""
    module = randomize_torch(nn.BatchNorm1d(C, momentum=0.2))
    ours = from_torch(module)
    module.train()
    ref = module(torch.from_numpy(X_CF)).detach().numpy().transpose(0, 2, 1)
    out, _ = ours.forward(X, training=True)
    close(out, ref)
    close(ours.moving_mean.value, module.running_mean.numpy())
    n = B * L
    var_b = X.reshape(-1, C).astype("float64").var(axis=0)               # biased, over N and L
    v0 = randomize_torch(nn.BatchNorm1d(C)).running_var.numpy()         # the same seed: v0
    close(ours.moving_variance.value, 0.8 * v0 + 0.2 * var_b)
    close(module.running_var.numpy(), 0.8 * v0 + 0.2 * var_b * n / (n - 1))
    gap = np.abs(module.running_var.numpy() - ours.moving_variance.value)
    assert np.all(gap > 1e-4)


# --- LayerNorm -------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(eps=1e-3), dict(elementwise_affine=False),
                                dict(bias=False)], ids=str)
def test_layernorm_both_ways(kw):
    module = randomize_torch(nn.LayerNorm(C, **kw))
    ref = run_torch(module, X)
    ours = from_torch(module)
    close(ours(X), ref)
    close(run_torch(to_torch(ours), X), ref)
    x2 = X[:, 0]
    close(from_torch(module, input_shape=(C,))(x2), run_torch(module, x2))


@pytest.mark.parametrize("kw", [dict(), dict(center=False), dict(scale=False),
                                dict(center=False, scale=False, epsilon=0.1)], ids=str)
def test_layernormalization_to_torch_and_back(kw):
    layer = LayerNormalization(**kw)
    layer.build(X.shape)
    randomize(layer, 5)
    module = to_torch(layer)
    close(run_torch(module, X), layer(X))
    close(from_torch(module)(X), layer(X))


# --- activations -----------------------------------------------------------------------------
ACTIVATIONS = [nn.ReLU, lambda: nn.LeakyReLU(), lambda: nn.LeakyReLU(0.3), nn.ELU,
               lambda: nn.ELU(0.7), nn.GELU, nn.SiLU, nn.Mish, nn.Softplus, nn.Softsign,
               nn.SELU, nn.Tanh, nn.Sigmoid, lambda: nn.Softmax(dim=-1)]


@pytest.mark.parametrize("make", ACTIVATIONS, ids=lambda f: "")
def test_activation_modules_both_ways(make):
    module = make()
    x = X * 3                                              # both branches of each function
    ref = run_torch(module, x)
    ours = from_torch(module)
    close(ours(x), ref)
    close(run_torch(to_torch(ours), x), ref)


@pytest.mark.parametrize("num", [1, C])
@pytest.mark.parametrize("rank", [2, 3])
def test_prelu_both_ways(num, rank):
    both_ways_channels_first(nn.PReLU(num), X_CF if rank == 3 else X[:, 0])


@pytest.mark.parametrize("layer", [
    lambda: ReLU(), lambda: ReLU(negative_slope=0.1), lambda: ReLU(max_value=1.5),
    lambda: LeakyReLU(0.25), lambda: ELU(0.5), lambda: Softmax(),
    lambda: PReLU(shared_axes=[1]), lambda: PReLU(shared_axes=[1, 2]),
    lambda: Activation("gelu"), lambda: Activation("swish"), lambda: Activation("softplus"),
    lambda: Activation("selu"), lambda: Activation("mish"), lambda: Activation("leaky_relu"),
    lambda: Activation("relu6"), lambda: Dense(3, activation="softsign"),
    lambda: Dense(3, activation="elu"),
], ids=lambda f: "")
def test_activation_layers_to_torch(layer):
    layer = layer()
    layer.build(X.shape)
    if layer.weights:
        randomize(layer, 2)
    x = X * 3
    close(run_torch(to_torch(layer), x), layer(x))


# --- MultiheadAttention ----------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(bias=False), dict(kdim=5, vdim=6),
                                dict(num_heads=4, dropout=0.2)], ids=str)
def test_multihead_attention_both_ways(kw):
    rng = np.random.default_rng(3)
    heads = kw.pop("num_heads", 2)
    module = randomize_torch(nn.MultiheadAttention(8, heads, batch_first=True, **kw))
    q = rng.standard_normal((B, 6, 8)).astype("float32")
    k = rng.standard_normal((B, 9, kw.get("kdim", 8))).astype("float32")
    v = rng.standard_normal((B, 9, kw.get("vdim", 8))).astype("float32")
    ref = run_torch(module, q, k, v)                      # PyTorch: query, key, value
    ours = from_torch(module)
    assert (ours.num_heads, ours.key_dim) == (heads, 8 // heads)
    close(ours(q, v, key=k), ref)                          # Keras: query, value, key
    close(run_torch(to_torch(ours), q, v, k), ref)


def test_self_attention_chain_with_causal_mask_both_ways():
    i = Input((7, C))
    h = LSTM(8, return_sequences=True)(i)
    h = MultiHeadAttention(2, 4)(h, h, use_causal_mask=True)
    h = LayerNormalization()(h)
    model = randomize(Model(i, Dense(3)(h)), 4)
    x = X[:, :7]
    ref = model.predict(x, verbose=0)
    module = to_torch(model)
    close(run_torch(module, x), ref)
    close(from_torch(module).predict(x, verbose=0), ref)
    i = Input((7, C))                                      # without the mask: it matters
    h = LSTM(8, return_sequences=True)(i)
    h = MultiHeadAttention(2, 4)(h, h)
    plain = Model(i, Dense(3)(LayerNormalization()(h)))
    plain.set_weights(model.get_weights())
    assert np.abs(plain.predict(x, verbose=0) - ref).max() > 1e-3


# --- chains ----------------------------------------------------------------------------------
def test_cnn_lstm_model_both_ways():
    model = Sequential([Input((L, C)), Conv1D(6, 3, padding="causal", activation="relu"),
                        BatchNormalization(), MaxPooling1D(2), Conv1D(5, 2, strides=2,
                                                                      padding="same"),
                        LSTM(7, return_sequences=True), LayerNormalization(),
                        LSTM(4), Dense(2, activation="softmax")])
    randomize(model, 7)
    ref = model.predict(X, verbose=0)
    module = to_torch(model)
    close(run_torch(module, X), ref)
    again = from_torch(module)
    close(again.predict(X, verbose=0), ref)
    names = [type(x).__name__ for x in model.layers]      # activations: their own layers
    assert [type(x).__name__ for x in again.layers] == (names[:1] + ["Activation"] + names[1:]
                                                        + ["Activation"])
    assert again.layers[0].padding == "causal" and again.layers[4].padding == "same"


def test_cnn_lstm_gradients_equal_after_conversion():
    """The converted torch module trains as the unrolled model does: dLoss/dW of the mean
    squared error (inference statistics) agree, read back through the weight layouts."""
    model = Sequential([Input((L, C)), Conv1D(6, 3, padding="same", groups=2),
                        BatchNormalization(), PReLU(shared_axes=[1]), MaxPooling1D(2),
                        LSTM(5), LayerNormalization(), Dense(2)])
    randomize(model, 9)
    model.compile(loss="mse", optimizer="sgd")
    y = np.random.default_rng(4).standard_normal((B, 2)).astype("float32")
    _, grads = model.gradients(X, y)
    module = to_torch(model)
    loss = nn.functional.mse_loss(module(torch.from_numpy(X)), torch.from_numpy(y))
    loss.backward()
    conv, bn, prelu = module[0].body[0], module[1].body[0], module[2].body[0]
    lstm, ln, lin = module[4].rnn, module[5], module[6]
    close(grads[0], conv.weight.grad.numpy().transpose(2, 1, 0))      # kernel (k, C/G, F)
    close(grads[1], conv.bias.grad.numpy())
    close(grads[2], bn.weight.grad.numpy())                             # gamma, beta
    close(grads[3], bn.bias.grad.numpy())
    close(grads[6], prelu.weight.grad.numpy()[None])                    # alpha (1, C)
    close(grads[7], lstm.weight_ih_l0.grad.numpy().T)                   # kernel = W_ih^T
    close(grads[8], lstm.weight_hh_l0.grad.numpy().T)
    close(grads[9], lstm.bias_ih_l0.grad.numpy())                       # d bias = d b_ih
    close(grads[10], ln.weight.grad.numpy())
    close(grads[11], ln.bias.grad.numpy())
    close(grads[12], lin.weight.grad.numpy().T)


def test_torch_cnn_lstm_built_in_pytorch():
    """A CNN-LSTM written in PyTorch: ChannelsLast stages before a batch_first LSTM."""
    cnn = randomize_torch(ChannelsLast(nn.Conv1d(C, 6, 3, padding=1), nn.BatchNorm1d(6),
                                       nn.LeakyReLU(0.1), nn.MaxPool1d(2)), 1)
    lstm = randomize_torch(nn.LSTM(6, 5, batch_first=True), 2)
    head = randomize_torch(nn.Linear(5, 3), 3)
    with torch.no_grad():
        ref = head(lstm(cnn(torch.from_numpy(X)))[0]).numpy()
    ours = from_torch(nn.Sequential(cnn, lstm, head))
    close(ours.predict(X, verbose=0), ref)


def test_channels_first_torch_sequential_with_flatten():
    """nn.Sequential on (N, C, L): the unrolled model takes (N, L, C); PyTorch's Flatten of
    (N, C, L) becomes Permute((2, 1)) + Flatten, so the Linear after it reads the same order."""
    seq = randomize_torch(nn.Sequential(
        nn.Conv1d(C, 6, 3), nn.BatchNorm1d(6), nn.PReLU(6), nn.AvgPool1d(2), nn.Flatten(),
        nn.Linear(6 * 5, 3), nn.Tanh()))
    ours = from_torch(seq, input_shape=(L, C))
    assert [type(x).__name__ for x in ours.layers][-4:] == ["Permute", "Flatten", "Dense",
                                                            "Activation"]
    close(ours.predict(X, verbose=0), run_torch(seq, X_CF))


def test_mlp_with_batchnorm_and_prelu_both_ways():
    """(N, C) data: BatchNorm1d and PReLU(C) act on the features, as Keras's layers."""
    seq = randomize_torch(nn.Sequential(nn.Linear(C, 6), nn.BatchNorm1d(6), nn.PReLU(6),
                                        nn.Dropout(0.3), nn.Linear(6, 2), nn.SELU()))
    x = X[:, 0]
    ref = run_torch(seq, x)
    ours = from_torch(seq)
    close(ours.predict(x, verbose=0), ref)
    close(run_torch(to_torch(ours), x), ref)


# --- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize("module,message", [
    (lambda: nn.Conv1d(C, 4, 3, padding_mode="reflect"), "padding_mode='reflect'"),
    (lambda: nn.Conv1d(C, 4, 3, stride=2, dilation=2), "stride > 1 and dilation > 1"),
    (lambda: nn.MaxPool1d(2, ceil_mode=True), "ceil_mode=True"),
    (lambda: nn.MaxPool1d(3, dilation=2), "dilation > 1"),
    (lambda: nn.AvgPool1d(3, 1, 1), "count_include_pad=True"),
    (lambda: nn.MaxPool1d(4, 2, 1), "only padding 0"),
    (lambda: nn.ConstantPad1d(2, 1.5), "value=1.5"),
    (lambda: nn.BatchNorm1d(C, track_running_stats=False), "track_running_stats=False"),
    (lambda: nn.BatchNorm1d(C, momentum=None), "momentum=None"),
    (lambda: nn.LayerNorm((3, C)), "several axes"),
    (lambda: nn.GELU(approximate="tanh"), "approximate='tanh'"),
    (lambda: nn.Softplus(beta=2.0), "beta=2.0"),
    (lambda: nn.MultiheadAttention(8, 2), "batch_first=False"),
    (lambda: nn.MultiheadAttention(8, 2, add_bias_kv=True, batch_first=True), "add_bias_kv"),
    (lambda: nn.Sequential(nn.Conv1d(C, 4, 3), nn.Linear(11, 2)), "nn.Linear acts on the last"),
    (lambda: nn.Sequential(nn.Conv1d(C, 4, 3), nn.LayerNorm(11)), "nn.LayerNorm acts on"),
    (lambda: nn.Sequential(nn.LSTM(C, 4, batch_first=True), nn.Conv1d(4, 4, 3)),
     "nn.Conv1d follows modules"),
    (lambda: nn.Sequential(nn.LSTM(C, 4, batch_first=True), nn.BatchNorm1d(4)),
     "normalizes axis 1 .time."),
    (lambda: nn.Sequential(nn.LSTM(C, 4, batch_first=True), nn.PReLU(4)), "along axis 1"),
    (lambda: nn.Conv2d(C, 4, 3), "Cannot convert torch module Conv2d"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_from_torch_refusals(module, message):
    with pytest.raises(ValueError, match=message):
        from_torch(module())


def _built(layer, shape=X.shape):
    layer.build(shape)
    return layer


@pytest.mark.parametrize("layer,message", [
    (lambda: _built(LayerNormalization(rms_scaling=True, name="rms")), "rms_scaling=True"),
    (lambda: _built(LayerNormalization(axis=[1, 2])), "only the last axis"),
    (lambda: _built(BatchNormalization(axis=1)), "only the last axis"),
    (lambda: _built(BatchNormalization(), (B, 2, L, C)), "rank-4"),
    (lambda: _built(PReLU()), "alpha of shape"),
    (lambda: ReLU(max_value=2.0, negative_slope=0.1), "no single PyTorch module"),
    (lambda: Softmax(axis=1), "axis=1"),
    (lambda: _built(GroupNormalization(2)), "GroupNormalization.*does not convert"),
    (lambda: Activation("hard_sigmoid_keras2"), "no PyTorch module"),
], ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
def test_to_torch_refusals(layer, message):
    with pytest.raises((ValueError, NotImplementedError), match=message):
        to_torch(layer())


def test_to_torch_refuses_attention_it_cannot_map():
    mha = MultiHeadAttention(2, 3)                          # key_dim * heads != features
    mha.build([(None, 5, C), (None, 5, C), (None, 5, C)])
    with pytest.raises(ValueError, match="key_dim = value_dim = query features / num_heads"):
        to_torch(mha)
    mha = MultiHeadAttention(2, 2, value_dim=3)
    mha.build([(None, 5, C), (None, 5, C), (None, 5, C)])
    with pytest.raises(ValueError, match="value_dim 3"):
        to_torch(mha)
    i = Input((5, C))
    out, scores = MultiHeadAttention(2, 2)(i, i, return_attention_scores=True)
    with pytest.raises(ValueError, match="one input and one output|attention scores"):
        to_torch(Model(i, out))
