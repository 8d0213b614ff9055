"""``unrolled convert m.keras m.pt`` writes a file that predict, verify, inspect and convert
read back to the same predictions, that ``torch.load(weights_only=True)`` loads, and whose
state_dict runs in ``to_torch(model)``; what PyTorch modules cannot hold is refused."""
import json

import numpy as np
import pytest
import torch

from keras_ref import keras
from unrolled.interop.commands import convert, load_any
from unrolled.interop.torch import to_torch
from unrolled.interop.torch_checkpoint import load_torch_model
from unrolled.io.safety import ModelFileError, UnsafeModelError

L = keras.layers
X = np.random.default_rng(3).standard_normal((5, 7, 3)).astype("float32")
IDS = np.random.default_rng(4).integers(0, 12, size=(5, 7))


def _models():
    """Keras 3 models, their weights drawn so that every entry differs."""
    rnn = keras.Sequential([keras.Input((None, 3)), L.SimpleRNN(5, activation="relu", name="r"),
                            L.Dense(2, activation="tanh", name="d")], name="simple_rnn")
    stacked = keras.Sequential([keras.Input((7, 3)), L.LSTM(4, return_sequences=True, name="l1"),
                                L.LSTM(3, name="l2"), L.Dense(3, activation="softmax", name="d")],
                               name="stacked_lstm")
    gru = keras.Sequential([keras.Input((None, 3)), L.GRU(4, go_backwards=True, name="g"),
                            L.Dense(1, activation="sigmoid", name="d")], name="gru")
    i = keras.Input((None, 3))
    x = L.Bidirectional(L.LSTM(4, return_sequences=True, name="fl"), merge_mode="sum",
                        name="b1")(i)
    x = L.Bidirectional(L.GRU(3, name="bg"), name="b2")(x)
    bidi = keras.Model(i, L.Dense(2, activation="relu", name="d")(x), name="bidirectional")
    text = keras.Sequential([keras.Input((None,), dtype="int32"), L.Embedding(12, 4, name="e"),
                             L.LSTM(5, name="l"), L.Dense(3, activation="softmax", name="d")],
                            name="embedding_front")
    tagger = keras.Sequential([keras.Input((None, 3)), L.GRU(4, return_sequences=True, name="g"),
                               L.Dense(2, name="d")], name="sequence_out")
    rng = np.random.default_rng(0)
    for m in (rnn, stacked, gru, bidi, text, tagger):
        m.set_weights([(rng.standard_normal(w.shape) * 0.5).astype("float32")
                       for w in m.get_weights()])
    return {m.name: (m, IDS if m is text else X) for m in (rnn, stacked, gru, bidi, text, tagger)}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Each model as .keras, converted to .pt and back to .keras, with Keras's predictions."""
    root = tmp_path_factory.mktemp("pt")
    out = {}
    for name, (model, x) in _models().items():
        model.save(root / f"{name}.keras")
        convert(root / f"{name}.keras", root / f"{name}.pt")
        convert(root / f"{name}.pt", root / f"{name}_back.keras")
        out[name] = (root, x, model.predict(x, verbose=0))
    return out


def close(ours, want):
    np.testing.assert_allclose(ours, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


NAMES = ["simple_rnn", "stacked_lstm", "gru", "bidirectional", "embedding_front", "sequence_out"]


@pytest.mark.parametrize("name", NAMES)
def test_keras_to_pt_predicts_what_keras_predicts(converted, name):
    root, x, want = converted[name]
    close(load_any(root / f"{name}.pt").predict(x, verbose=0), want)


@pytest.mark.parametrize("name", NAMES)
def test_pt_back_to_keras_predicts_the_same_in_keras(converted, name):
    root, x, want = converted[name]
    back = keras.saving.load_model(root / f"{name}_back.keras")
    close(back.predict(x, verbose=0), want)


@pytest.mark.parametrize("name", NAMES)
def test_pytorch_users_load_it_with_weights_only(converted, name):
    """The file is a plain dict of strings and tensors; its state_dict runs in the torch
    modules of the model (``to_torch``) and computes Keras's predictions."""
    root, x, want = converted[name]
    ckpt = torch.load(root / f"{name}.pt", weights_only=True)
    assert json.loads(ckpt["config"])["config"]["name"] == name
    module = to_torch(load_any(root / f"{name}_back.keras"))
    module.load_state_dict(ckpt["state_dict"], strict=True)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    close(got, want)


def test_a_state_changed_in_pytorch_is_what_the_model_computes(converted, tmp_path):
    """A PyTorch user fine-tunes the tensors (here: a non-zero bias_hh, which unrolled never
    writes) and saves the dict again: the model computes what torch computes with them."""
    root, x, _ = converted["stacked_lstm"]
    ckpt = torch.load(root / "stacked_lstm.pt", weights_only=True)
    g = torch.Generator().manual_seed(1)
    for key in ckpt["state_dict"]:
        if "bias_hh" in key:
            ckpt["state_dict"][key] = torch.randn(ckpt["state_dict"][key].shape, generator=g)
    torch.save(ckpt, tmp_path / "tuned.pt")
    module = to_torch(load_any(root / "stacked_lstm_back.keras"))
    module.load_state_dict(ckpt["state_dict"])
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert np.abs(want - converted["stacked_lstm"][2]).max() > 1e-3      # really other numbers
    close(load_torch_model(tmp_path / "tuned.pt").predict(x, verbose=0), want)


def test_verify_and_inspect_read_it(converted, capsys, monkeypatch):
    from unrolled.cli import main

    root, _, _ = converted["bidirectional"]
    monkeypatch.chdir(root)
    assert main(["verify", "bidirectional.pt"]) == 0
    out = capsys.readouterr().out
    assert "unrolled model as torch modules" in out and "verified: outputs agree" in out
    assert main(["inspect", "bidirectional.pt"]) == 0
    out = capsys.readouterr().out
    assert "Model 'bidirectional'" in out and "b1/forward_fl/lstm_cell/kernel" in out
    assert main(["predict", "bidirectional.pt", "x.npy", "--head-on", "final"]) == 1
    assert "apply to PyTorch state dicts only" in capsys.readouterr().err


@pytest.mark.parametrize("build,says", [
    (lambda i: keras.Model(i, L.Add()([L.LSTM(2)(i), L.GRU(2)(i)])), "not a single chain"),
    (lambda i: keras.Model(i, L.LSTM(2, recurrent_activation="hard_sigmoid", name="hs")(i)),
     "Layer 'hs': PyTorch's LSTM has fixed activations"),
    (lambda i: keras.Model(i, L.GRU(2, reset_after=False, name="ra")(i)),
     "GRU 'ra' has reset_after=False"),
])
def test_what_pytorch_modules_cannot_hold_is_refused(tmp_path, build, says):
    build(keras.Input((None, 3))).save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match=says) as err:
        convert(tmp_path / "m.keras", tmp_path / "m.pt")
    assert "save it as .keras" in str(err.value)
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("edit,error,says", [
    (lambda c: c.update(epoch=3), ModelFileError, r"has \['epoch'\] besides"),
    (lambda c: c.update(format_version=2), ModelFileError, "format_version 2"),
    (lambda c: c["state_dict"].pop("0.rnn.bias_hh_l0"), ModelFileError,
     "does not fit the model its config describes"),
    (lambda c: c.update(config=c["config"].replace('"class_name": "LSTM"',
                                                   '"class_name": "Lambda"')),
     UnsafeModelError, "Lambda"),
])
def test_a_damaged_file_is_refused(converted, tmp_path, edit, error, says):
    root, _, _ = converted["stacked_lstm"]
    ckpt = torch.load(root / "stacked_lstm.pt", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(error, match=says):
        load_torch_model(tmp_path / "bad.pt")
