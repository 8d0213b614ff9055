"""Issue 21.11: whole-model PyTorch state dicts (embedding, recurrent module, Linear head), as
people write the modules and save them, become Sequential models computing what the module
computes; what the state cannot tell is refused, naming the keys."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.serialization as serialization
from torch import nn

from unrolled.interop import load_torch_state
from unrolled.interop.torch import from_torch_state
from unrolled.io.safety import ModelFileError

X = np.random.default_rng(7).standard_normal((4, 6, 3)).astype("float32")
IDS = np.random.default_rng(8).integers(0, 11, size=(4, 6))


def randomized(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return module.eval()


def run_torch(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def close(ours, want):
    np.testing.assert_allclose(ours, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


# --- the modules, written as tutorials and repositories write them ---------------------------
class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class BiGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 5, num_layers=2, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(10, 3)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.linear(out[:, -1, :])


class TextLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(11, 3)
        self.rnn = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
        self.head = nn.Linear(8, 2)

    def forward(self, ids):
        out, _ = self.rnn(self.embedding(ids))
        return self.head(out[:, -1])


class ReluRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 3)
        self.rnn = nn.RNN(3, 4, nonlinearity="relu", batch_first=True, bias=False)
        self.out = nn.Linear(4, 1, bias=False)

    def forward(self, ids):
        out, _ = self.rnn(self.emb(ids))
        return self.out(out[:, -1])


class FinalStates(nn.Module):                      # the head on h_n of both directions
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.fc(torch.cat([h[-2], h[-1]], dim=1))


class Tagger(nn.Module):                           # the head on every step
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out)


CASES = [(LSTMClassifier, X, None), (BiGRU, X, None), (TextLSTM, IDS, None),
         (ReluRNN, IDS, None), (FinalStates, X, "final"), (Tagger, X, "sequence")]


@pytest.mark.parametrize("cls,x,head_on", CASES, ids=[c[0].__name__ for c in CASES])
def test_saved_state_dicts_predict_what_the_module_does(tmp_path, cls, x, head_on):
    module = randomized(cls())
    torch.save(module.state_dict(), tmp_path / "m.pt")
    nonlinearity = "relu" if cls is ReluRNN else "tanh"
    model = from_torch_state(load_torch_state(tmp_path / "m.pt"), nonlinearity=nonlinearity,
                             head_on=head_on)
    close(model.predict(x, verbose=0), run_torch(module, x))


def test_the_last_step_reading_differs_from_the_final_states_when_bidirectional():
    """out[:, -1] holds the backward direction's FIRST step: reading the head as 'final'
    gives other numbers, so the two readings are really different models."""
    module = randomized(FinalStates())
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    last = from_torch_state(state).predict(X, verbose=0)
    assert np.abs(last - run_torch(module, X)).max() > 1e-3
    close(from_torch_state(state, head_on="final").predict(X, verbose=0), run_torch(module, X))


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = LSTMClassifier()

    def forward(self, x):
        return self.model(x)


def test_checkpoints_prefixes_and_half_precision(tmp_path):
    """A training checkpoint (model and optimizer state, epoch), a module wrapped in another
    (``model.`` prefix) and a state in float16 all read as the model."""
    module = randomized(Wrapper())
    opt = torch.optim.Adam(module.parameters())
    module(torch.from_numpy(X)).sum().backward()
    opt.step()
    module.eval()
    torch.save({"epoch": 3, "model_state_dict": module.state_dict(),
                "optimizer_state_dict": opt.state_dict(), "loss": 0.5}, tmp_path / "ckpt.pth")
    model = from_torch_state(load_torch_state(tmp_path / "ckpt.pth"))
    close(model.predict(X, verbose=0), run_torch(module, X))
    half = {k: v.half() for k, v in module.state_dict().items()}
    torch.save(half, tmp_path / "half.pt")
    module.load_state_dict({k: v.float() for k, v in half.items()})
    model = from_torch_state(load_torch_state(tmp_path / "half.pt"))
    close(model.predict(X, verbose=0), run_torch(module, X))


def test_a_state_saved_from_the_gpu_loads_on_the_cpu(tmp_path):
    """Storages tagged ``cuda:0``, as ``torch.save`` writes them on a GPU machine (tagged here
    with torch's own location registry): plain ``torch.load`` fails on this CPU-only torch,
    ``load_torch_state`` maps them to the CPU."""
    module = randomized(LSTMClassifier())

    def on_gpu(obj):
        return "cuda:0" if getattr(obj, "device", None) is not None and obj.device.type == "cpu" \
            else None

    serialization.register_package(0, on_gpu, lambda obj, location: None)
    entry = next(e for e in serialization._package_registry if e[1] is on_gpu)
    try:
        torch.save(module.state_dict(), tmp_path / "gpu.pt")
    finally:
        serialization._package_registry.remove(entry)
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(tmp_path / "gpu.pt", weights_only=True)
    close(from_torch_state(load_torch_state(tmp_path / "gpu.pt")).predict(X, verbose=0),
          run_torch(module, X))


def _state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


class EncoderDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.LSTM(3, 4, batch_first=True)
        self.decoder = nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.encoder(x)
        return self.decoder(out[:, -1])


def test_unknown_names_are_refused_and_the_kind_hint_works():
    module = randomized(EncoderDecoder())
    state = _state(module)
    with pytest.raises(ValueError, match=r"'decoder' \['bias', 'weight'\]") as err:
        from_torch_state(state)
    assert "kind={'encoder': 'LSTM', 'decoder': '...'}" in str(err.value)
    model = from_torch_state(state, kind={"decoder": "Linear"})
    close(model.predict(X, verbose=0), run_torch(module, X))
    with pytest.raises(ValueError, match="kind='LSTM' names one module's kind: pass kind="):
        from_torch_state(state, kind="LSTM")
    with pytest.raises(ValueError, match="do not name submodules"):
        from_torch_state(state, kind={"decodr": "Linear"})


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)


class TwoLSTMs(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm1 = nn.LSTM(3, 4, batch_first=True)
        self.lstm2 = nn.LSTM(4, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)


class WithInitialState(nn.Module):
    def __init__(self):
        super().__init__()
        self.h0 = nn.Parameter(torch.zeros(1, 1, 4))
        self.rnn = nn.GRU(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)


class WithNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 2)


class Mismatched(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(4, 2)


@pytest.mark.parametrize("cls,message", [
    (TwoHeads, r"2 heads \('fc', 'out'\)"),
    (TwoLSTMs, r"2 recurrent modules \('lstm1', 'lstm2'\)"),
    (WithInitialState, r"belong to no submodule: \['h0'\]"),
    (WithNorm, r"'norm' \['bias', 'weight'\]"),
    (Mismatched, r"'lstm' \(LSTM\) gives 8 features but 'fc' \(Linear\) has in_features 4"),
])
def test_what_the_state_cannot_tell_is_refused_by_name(cls, message):
    with pytest.raises(ValueError, match=message):
        from_torch_state(_state(cls()))


def test_extra_keys_in_a_recurrent_module_and_misused_options():
    state = _state(LSTMClassifier())
    state["lstm.weight_ih_l2"] = state["lstm.weight_ih_l1"]      # a layer without its partners
    with pytest.raises(ValueError, match="lacks"):
        from_torch_state(state)
    state = _state(LSTMClassifier())
    state["lstm.scale"] = state["fc.bias"]
    with pytest.raises(ValueError, match=r"does not have these keys: \['scale'\]"):
        from_torch_state(state)
    lone = _state(nn.LSTM(3, 4))
    with pytest.raises(ValueError, match="head_on='final' says what a Linear head"):
        from_torch_state(lone, head_on="final")
    with pytest.raises(ValueError, match="head_on='first'"):
        from_torch_state(_state(LSTMClassifier()), head_on="first")
    with pytest.raises(ValueError, match="nonlinearity='relu' is nn.RNN's"):
        from_torch_state(lone, nonlinearity="relu")
    weight = np.arange(6, dtype=np.float32).reshape(3, 2)
    with pytest.raises(ValueError, match=r"pass kind='Linear' \(no bias\) or kind='Embedding'"):
        from_torch_state({"weight": weight})
    np.testing.assert_array_equal(from_torch_state({"weight": weight}, kind="Linear").kernel.value,
                                  weight.T)                      # the hint works as it says
    np.testing.assert_array_equal(
        from_torch_state({"weight": weight}, kind="Embedding").embeddings.value, weight)


def test_an_unrolled_checkpoint_is_not_read_as_a_state(tmp_path):
    torch.save({"format": "unrolled.keras_model", "state_dict": {}}, tmp_path / "u.pt")
    with pytest.raises(ModelFileError, match="load_torch_model"):
        load_torch_state(tmp_path / "u.pt")


def run(*args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "unrolled", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_command_line_on_whole_model_states(tmp_path):
    """``unrolled predict file.pt x.npy`` as a user runs it (a subprocess)."""
    module = randomized(TextLSTM())
    torch.save(module.state_dict(), tmp_path / "text.pt")
    np.save(tmp_path / "ids.npy", IDS)
    code, out, err = run("predict", "text.pt", "ids.npy", "--out", "y.npy", cwd=tmp_path)
    assert code == 0, err
    close(np.load(tmp_path / "y.npy"), run_torch(module, IDS))


def test_verify_inspect_and_the_kind_option(tmp_path, capsys, monkeypatch):
    """The other file commands, through ``unrolled.cli.main`` in this process."""
    from unrolled.cli import main

    monkeypatch.chdir(tmp_path)
    torch.save(randomized(TextLSTM()).state_dict(), "text.pt")
    assert main(["verify", "text.pt"]) == 0
    assert "verified: outputs agree" in capsys.readouterr().out
    assert main(["inspect", "text.pt"]) == 0
    assert "as a model: embedding: Embedding (11, 3) -> rnn: LSTM 3 -> 4 (1 layer(s), " \
        "bidirectional) -> head: Linear (2, 8)" in capsys.readouterr().out
    module = randomized(EncoderDecoder())
    torch.save(module.state_dict(), "ed.pt")
    np.save("x.npy", X)
    assert main(["predict", "ed.pt", "x.npy"]) == 1
    assert "'decoder' ['bias', 'weight']" in capsys.readouterr().err
    assert main(["predict", "ed.pt", "x.npy", "--kind", "decoder=Linear", "--out", "y.npy"]) == 0
    close(np.load("y.npy"), run_torch(module, X))
    assert main(["verify", "ed.pt", "--kind", "decoder=Linear", "--head-on", "final"]) == 0
    assert main(["predict", "x.npy", "x.npy", "--kind", "LSTM"]) == 2   # not silently ignored
    assert "--kind apply to PyTorch state files" in capsys.readouterr().err


def test_a_bidirectional_state_converts_to_a_keras_file_keras_3_reads(tmp_path):
    """``.pt`` state -> ``.keras``: Keras 3 loads the model, ``last_step`` layer included, and
    predicts what the torch module does. Back to ``.pt`` it is refused by name (PyTorch's
    RNN has no linear activation), not written wrong."""
    from keras_ref import keras
    from unrolled.interop.commands import convert

    module = randomized(TextLSTM())
    torch.save(module.state_dict(), tmp_path / "text.pt")
    convert(tmp_path / "text.pt", tmp_path / "text.keras")
    theirs = keras.saving.load_model(tmp_path / "text.keras")
    close(theirs.predict(IDS, verbose=0), run_torch(module, IDS))
    with pytest.raises(ValueError, match="Layer 'last_step': PyTorch's RNN has fixed activations"):
        convert(tmp_path / "text.keras", tmp_path / "again.pt")
