"""PyTorch ↔ unrolled: every module type and option, both directions, and state_dict files."""
import numpy as np
import pytest
import torch
from torch import nn

from unrolled.interop.torch import from_torch, from_torch_state, load_torch_state, to_torch
from unrolled.io.safety import ModelFileError
from unrolled.layers import (GRU, LSTM, RNN, Bidirectional, Dense, Embedding, Input, SimpleRNN,
                             TimeDistributed, Activation, Add, Dropout, LSTMCell)
from unrolled.models import Model, Sequential

TOL = 1e-5
B, T, F = 3, 7, 4


def randomize_torch(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return module.eval()


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype("float32")
                       for w in model.get_weights()])
    return model


def torch_out(module, x):
    with torch.no_grad():
        out = module(torch.from_numpy(x))
    return (out[0] if isinstance(out, tuple) else out).numpy()


def ours_out(layer, x):
    return layer.predict(x, verbose=0) if hasattr(layer, "predict") else layer(x)


X = np.random.default_rng(1).standard_normal((B, T, F)).astype("float32")
RECURRENT = [
    (nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"}), (nn.RNN, {"bias": False}),
    (nn.LSTM, {}), (nn.LSTM, {"bias": False}), (nn.GRU, {}), (nn.GRU, {"bias": False}),
]
SHAPES = [{"num_layers": 1, "bidirectional": False}, {"num_layers": 2, "bidirectional": False},
          {"num_layers": 1, "bidirectional": True}, {"num_layers": 3, "bidirectional": True}]


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"L{s['num_layers']}{'bi' if s['bidirectional'] else ''}")
@pytest.mark.parametrize("cls,opts", RECURRENT, ids=lambda v: getattr(v, "__name__", str(v)))
def test_recurrent_from_torch_and_back(cls, opts, shape, batch_first):
    module = randomize_torch(cls(F, 5, batch_first=batch_first, **opts, **shape))
    x_torch = X if batch_first else X.transpose(1, 0, 2)
    ref = torch_out(module, x_torch)
    ref = ref if batch_first else ref.transpose(1, 0, 2)
    ours = from_torch(module)
    assert np.abs(ours_out(ours, X) - ref).max() < TOL
    back = to_torch(ours)                                    # batch-major torch again
    assert np.abs(torch_out(back, X) - ref).max() < TOL


@pytest.mark.parametrize("layer", [
    lambda: SimpleRNN(4), lambda: SimpleRNN(4, activation="relu", go_backwards=True),
    lambda: LSTM(4, return_sequences=True, go_backwards=True), lambda: LSTM(3, use_bias=False),
    lambda: GRU(4), lambda: GRU(4, return_sequences=True, use_bias=False),
    lambda: RNN(LSTMCell(3), return_sequences=True),
    lambda: Bidirectional(LSTM(3)), lambda: Bidirectional(GRU(3, return_sequences=True), "sum"),
    lambda: Bidirectional(SimpleRNN(3, return_sequences=True), "ave"),
    lambda: Bidirectional(LSTM(2), "mul"),
    lambda: Dense(3, activation="tanh"), lambda: TimeDistributed(Dense(2, activation="softmax")),
    lambda: Dense(2, activation="hard_sigmoid", use_bias=False),
], ids=lambda f: "")
def test_layers_to_torch_and_back(layer):
    layer = layer()
    layer.build(X.shape)
    randomize(layer)
    ref = layer(X)
    module = to_torch(layer)
    assert np.abs(torch_out(module, X) - ref).max() < TOL


def test_sequential_model_both_ways():
    model = Sequential([Input((None,), dtype="int64"), Embedding(11, 4),
                        LSTM(5, return_sequences=True), Bidirectional(GRU(3)), Dropout(0.5),
                        Dense(6, activation="relu"), Activation("sigmoid"), Dense(2)])
    randomize(model)
    ids = np.random.default_rng(2).integers(0, 11, size=(B, T))
    ref = model.predict(ids, verbose=0)
    module = to_torch(model)
    assert np.abs(torch_out(module, ids) - ref).max() < TOL
    again = from_torch(module)
    assert np.abs(again.predict(ids, verbose=0) - ref).max() < TOL


def test_torch_sequential_of_modules():
    seq = randomize_torch(nn.Sequential(nn.Linear(F, 6), nn.Tanh(), nn.Linear(6, 2), nn.Softmax(-1)))
    x2 = X[:, 0]
    ours = from_torch(seq)
    assert np.abs(ours.predict(x2, verbose=0) - torch_out(seq, x2)).max() < TOL
    flat = randomize_torch(nn.Sequential(nn.Flatten(), nn.Linear(T * F, 3), nn.ReLU(), nn.Identity()))
    ours = from_torch(flat, input_shape=(T, F))
    assert np.abs(ours.predict(X, verbose=0) - torch_out(flat, X)).max() < TOL


def test_recurrent_inside_torch_sequential_passes_output_on():
    lstm, lin = randomize_torch(nn.LSTM(F, 4, batch_first=True)), randomize_torch(nn.Linear(4, 2))
    ours = from_torch(nn.Sequential(lstm, lin))
    with torch.no_grad():
        ref = lin(lstm(torch.from_numpy(X))[0]).numpy()
    assert np.abs(ours.predict(X, verbose=0) - ref).max() < TOL


def test_embedding_and_linear():
    emb = randomize_torch(nn.Embedding(10, 3))
    ids = np.array([[1, 2, 9], [0, 4, 4]])
    assert np.abs(from_torch(emb)(ids) - torch_out(emb, ids)).max() == 0
    lin = randomize_torch(nn.Linear(F, 2, bias=False))
    assert np.abs(from_torch(lin)(X) - torch_out(lin, X)).max() < TOL


def test_refusals():
    with pytest.raises(ValueError, match="reset_after=False.*no equivalent"):
        layer = GRU(3, reset_after=False)
        layer.build(X.shape)
        to_torch(layer)
    with pytest.raises(ValueError, match="proj_size"):
        from_torch(nn.LSTM(F, 4, proj_size=2))
    with pytest.warns(UserWarning, match="training only"):
        from_torch(nn.GRU(F, 4, num_layers=2, dropout=0.3))
    with pytest.raises(ValueError, match="max_norm"):
        from_torch(nn.Embedding(5, 2, max_norm=1.0))
    with pytest.raises(ValueError, match="Cannot convert torch module Conv2d"):
        from_torch(nn.Conv2d(3, 3, 2))
    i = Input((T, F))
    model = Model(i, Add()([Dense(2)(i), Dense(2)(i)]))
    with pytest.raises(ValueError, match="single chain"):
        to_torch(model)


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_state_dict_files(tmp_path, cls):
    module = randomize_torch(cls(F, 5, num_layers=2, bidirectional=True, batch_first=True))
    torch.save(module.state_dict(), tmp_path / "m.pt")
    state = load_torch_state(tmp_path / "m.pt")
    ours = from_torch_state(state)
    assert np.abs(ours.predict(X, verbose=0) - torch_out(module, X)).max() < TOL
    wrapped = {"rnn." + k: torch.from_numpy(v) for k, v in state.items()}   # a prefix is stripped
    torch.save({"state_dict": wrapped}, tmp_path / "w.pt")
    ours = from_torch_state(load_torch_state(tmp_path / "w.pt"), kind=cls.__name__)
    assert np.abs(ours.predict(X, verbose=0) - torch_out(module, X)).max() < TOL


def test_state_dict_linear_embedding_and_bad_files(tmp_path):
    lin = randomize_torch(nn.Linear(F, 3))
    torch.save(lin.state_dict(), tmp_path / "lin.pt")
    assert np.abs(from_torch_state(load_torch_state(tmp_path / "lin.pt"))(X) - torch_out(lin, X)).max() < TOL
    emb = randomize_torch(nn.Embedding(6, 2))
    torch.save(emb.state_dict(), tmp_path / "emb.pt")
    layer = from_torch_state(load_torch_state(tmp_path / "emb.pt"), kind="Embedding")
    assert np.array_equal(layer(np.array([[1, 5]])), torch_out(emb, np.array([[1, 5]])))
    (tmp_path / "junk.pt").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ModelFileError):
        load_torch_state(tmp_path / "junk.pt")
    torch.save(nn.Linear(2, 2), tmp_path / "module.pt")          # a pickled module: refused
    with pytest.raises(ModelFileError, match="weights_only"):
        load_torch_state(tmp_path / "module.pt")
    with pytest.raises(FileNotFoundError):
        load_torch_state(tmp_path / "missing.pt")


def test_state_loader_refuses_without_torch(tmp_path):
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None\n"
            "from unrolled.interop.torch import load_torch_state\n"
            "try:\n    load_torch_state('x.pt')\nexcept ImportError as e:\n    print('REFUSED', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "REFUSED" in out.stdout and "weights_only=True" in out.stdout


def _lstm_state(dtype=torch.float32):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True)
    return lstm, {k: v.to(dtype) for k, v in lstm.state_dict().items()}


def test_a_bfloat16_or_float16_state_loads_as_float32(tmp_path):
    """issue 26.9: NumPy has no bfloat16; the weights are widened exactly (every bfloat16
    and float16 value is a float32), and the layer computes what PyTorch computes on them."""
    for dtype in (torch.bfloat16, torch.float16):
        lstm, state = _lstm_state(dtype)
        torch.save(state, tmp_path / "half.pt")
        ours = from_torch_state(load_torch_state(tmp_path / "half.pt"))
        lstm.load_state_dict({k: v.float() for k, v in state.items()})
        x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
        want = lstm(torch.from_numpy(x))[0].detach().numpy()
        np.testing.assert_allclose(ours(x), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("odd", ["sparse", "complex", "quantized"])
def test_tensors_unrolled_cannot_read_are_refused_by_name(tmp_path, odd):
    _, state = _lstm_state()
    w = state["weight_hh_l0"]
    state["weight_hh_l0"] = {"sparse": lambda: w.to_sparse(),
                             "complex": lambda: w.to(torch.complex64),
                             "quantized": lambda: torch.quantize_per_tensor(w, 0.1, 0, torch.qint8),
                             }[odd]()
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(ModelFileError, match=f"'weight_hh_l0' is {odd}"):
        load_torch_state(tmp_path / "odd.pt")


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.update(weight_ih_l0=s["weight_ih_l0"][0]), "not the .G.H, F. and"),
    (lambda s: s.update(weight_hh_l0=s["weight_hh_l0"][:, :3]), "not the .G.H, F. and"),
    (lambda s: s.update(weight_ih_l0=s["weight_ih_l0"][:8], weight_hh_l0=s["weight_hh_l0"][:8, :4]),
     "2 gate blocks"),
    (lambda s: s.pop("bias_hh_l0"), r"lacks \['bias_hh_l0'\]"),
    (lambda s: s.update(bias_ih_l0=s["bias_ih_l0"][None]), "wrong number of dimensions"),
])
def test_oddly_shaped_states_get_a_clear_error(edit, message):
    _, state = _lstm_state()
    state = {k: v.numpy() for k, v in state.items()}
    edit(state)
    with pytest.raises(ValueError, match=message):
        from_torch_state(state)


def test_a_wrong_shape_in_a_deeper_layer_is_a_value_error():
    lstm = nn.LSTM(3, 4, num_layers=2)
    state = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    state["weight_hh_l1"] = state["weight_hh_l1"][:, :3]
    with pytest.raises(ValueError, match="expected a weight of shape"):
        from_torch_state(state)
