"""The file subcommands. Each runs ``unrolled.cli.main`` in this process
(``cli_run.in_process``: the exit code, stdout and stderr that ``python -m unrolled ...``
gives, without a fresh Python importing Keras or PyTorch for each case); ``--help``,
``--version`` and a prediction also run as a user runs them, in a subprocess."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from cli_run import in_a_process, in_process

from keras_ref import keras
from unrolled.models import load_model

L = keras.layers
X = np.random.default_rng(5).standard_normal((4, 6, 3)).astype("float32")


run = in_process


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    i = keras.Input((6, 3))
    x = L.Bidirectional(L.LSTM(4, return_sequences=True))(i)
    x = L.GRU(3)(x)
    model = keras.Model(i, L.Dense(2)(x))
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5
                       for w in model.get_weights()])
    model.save(root / "m.keras")
    keras.saving.save_model(model, root / "m.h5")
    model.save_weights(root / "m.weights.h5")
    np.save(root / "x.npy", X)
    np.savetxt(root / "x.csv", X.reshape(4, -1), delimiter=",")
    expected = model.predict(X, verbose=0)
    lstm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    torch.save(lstm.state_dict(), root / "lstm.pt")
    with torch.no_grad():
        torch_expected = lstm(torch.from_numpy(X))[0].numpy()
    return root, expected, torch_expected


def test_inspect_model_and_weight_files(files):
    root = files[0]
    code, out, err = run("inspect", "m.keras", cwd=root)
    assert code == 0, err
    assert "Total params: 381" in out
    assert "/forward_lstm" in out and "/lstm_cell/kernel" in out and "(3, 16)" in out
    for name in ("m.weights.h5", "lstm.pt"):
        code, out, err = run("inspect", name, cwd=root)
        assert code == 0, err
        assert "weights only" in out and "mean" in out
    assert "weight_ih_l1_reverse" in out and "(20, 10)" in out


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "lstm.pt"])
def test_verify(files, name):
    code, out, err = run("verify", name, "--timesteps", "7", cwd=files[0])
    assert code == 0, err + out
    assert "verified: outputs agree" in out and "per step: t0=" in out


def test_verify_reports_differences_above_tol(files):
    code, out, _ = run("verify", "m.keras", "--tol", "1e-15", cwd=files[0])
    assert code == 1 and "MISMATCH" in out and "FAILED: differences above 1e-15" in out


@pytest.mark.parametrize("out", ["c.keras", "c.h5", "c.unrolled.npz", "c.onnx", "c.pt",
                                 "c.weights.h5", "c.weights.npz"])
def test_convert_every_output(files, tmp_path, out):
    root, expected, _ = files
    code, stdout, err = run("convert", root / "m.keras", out, cwd=tmp_path)
    assert code == 0, err
    path = tmp_path / out
    if out.endswith(".onnx"):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: X})[0]
    elif out.endswith(".pt"):                # a checkpoint dict: Keras config + torch state_dict
        state = torch.load(path, weights_only=True)["state_dict"]
        assert any(k.endswith("weight_ih_l0_reverse") for k in state)
        code, stdout, err = run("predict", out, root / "x.npy", "--out", "y.npy", cwd=tmp_path)
        assert code == 0, err
        got = np.load(tmp_path / "y.npy")
    elif ".weights." in out:
        code, stdout, err = run("convert", out, "again.keras", "--model", root / "m.h5", cwd=tmp_path)
        assert code == 0, err
        got = keras.saving.load_model(tmp_path / "again.keras").predict(X, verbose=0)
    else:
        got = load_model(path).predict(X, verbose=0)
        if not out.endswith(".npz"):
            assert np.abs(keras.saving.load_model(path).predict(X, verbose=0) - expected).max() < 1e-5
    assert np.abs(got - expected).max() < 1e-5


def test_convert_torch_state_in(files, tmp_path):
    root, _, torch_expected = files
    code, _, err = run("convert", root / "lstm.pt", "t.keras", cwd=tmp_path)
    assert code == 0, err
    got = keras.saving.load_model(tmp_path / "t.keras").predict(X, verbose=0)
    assert np.abs(got - torch_expected).max() < 1e-5


def test_convert_weights_without_model_is_explained(files, tmp_path):
    code, out, err = run("convert", files[0] / "m.weights.h5", "x.keras", cwd=tmp_path)
    assert code != 0 and "--model" in out + err


@pytest.mark.parametrize("data", ["x.npy", "x.csv"])
def test_predict(files, tmp_path, data):
    root, expected, _ = files
    code, out, err = run("predict", root / "m.keras", root / data, "--out", tmp_path / "y.npy", cwd=tmp_path)
    assert code == 0, err
    assert np.abs(np.load(tmp_path / "y.npy") - expected).max() < 1e-5
    code, out, err = run("predict", root / "m.h5", root / data, "--out", tmp_path / "y.csv",
                         cwd=tmp_path)
    assert code == 0, err
    assert np.abs(np.loadtxt(tmp_path / "y.csv", delimiter=",") - expected).max() < 1e-5
    code, out, err = run("predict", root / "m.keras", root / data, cwd=tmp_path)
    assert code == 0, err
    assert f"{expected[0, 0]:.4f}"[:5] in out


def test_predict_in_a_real_process(files, tmp_path):
    """``python -m unrolled predict`` prints what the in-process run prints."""
    root, expected, _ = files
    args = ("predict", root / "m.keras", root / "x.npy")
    code, out, err = in_a_process(*args, cwd=tmp_path)
    assert code == 0, err
    assert f"{expected[0, 0]:.4f}"[:5] in out
    assert (code, out) == in_process(*args, cwd=tmp_path)[:2]


def test_errors_are_one_line_not_tracebacks(files, tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"not a zip at all")
    code, out, err = run("inspect", "junk.keras", cwd=tmp_path)
    assert code == 1 and "error:" in err and "Traceback" not in err
    code, out, err = run("predict", "missing.keras", "x.npy", cwd=tmp_path)
    assert code == 1 and "No such file" in err


@pytest.mark.parametrize("args,code,says", [
    (["explain", "--steps", "a,b"], 2, "time steps are non-negative integers"),
    (["demo", "--seed", "-1"], 2, "a seed is a non-negative integer"),
    (["example", "sine", "--seed", "x"], 2, "a seed is a non-negative integer"),
    (["bogus"], 2, "invalid choice: 'bogus'"),
    (["inspect"], 2, "the following arguments are required: file"),
    (["explain"], 2, "give a model file and --input DATA, or --demo"),
])
def test_usage_errors_are_one_line_and_exit_2(args, code, says, tmp_path):
    """issue 24.7: every error is one line on stderr; 2 for usage, 1 for a failure."""
    got, out, err = run(*args, cwd=tmp_path)
    assert got == code and says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_version_and_help_list_one_command_a_line(tmp_path):
    """In a subprocess: what ``python -m unrolled --version`` and ``--help`` print and exit."""
    from unrolled import __version__
    code, out, err = in_a_process("--version", cwd=tmp_path)
    assert code == 0 and out.strip() == f"unrolled {__version__}"
    code, out, err = in_a_process("--help", cwd=tmp_path)
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ")
              and line.split()[0] in ("demo", "example", "explain", "inspect", "verify",
                                      "convert", "predict")]
    assert code == 0 and listed == ["demo", "example", "explain", "inspect", "verify",
                                    "convert", "predict"]
