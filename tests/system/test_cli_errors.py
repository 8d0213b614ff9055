"""Issue 24.7: every command, given wrong inputs, says what is wrong on one line of stderr and
exits with 2 (usage: a wrong option or kind of file) or 1 (a failure: a file that cannot be
read, data of the wrong shape), never with a traceback.

The cases run ``unrolled.cli.main`` in this process (``cli_run.in_process``: the exit code,
stdout and stderr a process would give, Python's default warnings included); a usage error, a
failure and an unexpected error also run as a user runs them, ``python -m unrolled ...`` in a
subprocess, and must say the same."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from cli_run import in_a_process, in_process

import unrolled
from unrolled import cli


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_errors")
    rng = np.random.default_rng(11)
    model = unrolled.Sequential([unrolled.Input((6, 3)), unrolled.layers.LSTM(4, name="lstm"),
                                 unrolled.layers.Dense(2, name="dense")], name="m")
    model.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5
                       for w in model.get_weights()])
    model.save(root / "m.keras")
    model.save(root / "m.unrolled.npz")
    model.save_weights(root / "m.weights.npz")
    x = rng.standard_normal((4, 6, 3)).astype("float32")
    np.save(root / "x.npy", x)
    np.save(root / "short.npy", x[:, :5])
    np.save(root / "flat.npy", x[:, :, 0])
    np.savetxt(root / "wide.csv", rng.standard_normal((4, 7)), delimiter=",")
    (root / "words.csv").write_text("a,b\n1,2\n")
    np.save(root / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (root / "junk.keras").write_bytes(b"not a zip at all")
    return root, model.predict(x, verbose=0)


CASES = [
    # predict
    (["predict", "m.weights.npz", "x.npy"], 2, "holds weights only: pass --model FILE"),
    (["predict", "m.keras", "short.npy"], 1,
     "short.npy has shape (4, 5, 3); the model expects (N, 6, 3)"),
    (["predict", "m.keras", "flat.npy"], 1, "the model expects (N, 6, 3), or rows of 18 values"),
    (["predict", "m.keras", "wide.csv"], 1, "wide.csv has shape (4, 7); the model expects"),
    (["predict", "m.keras", "words.csv"], 1, "could not convert string"),
    (["predict", "m.keras", "objects.npy"], 1, "dtype object"),
    (["predict", "m.keras", "x.txt"], 2, "DATA must be a .npy or .csv file"),
    (["predict", "m.keras", "x.npy", "--batch-size", "0"], 2, "expected a positive integer"),
    (["predict", "missing.keras", "x.npy"], 1, "No such file"),
    (["predict", "x.npy", "x.npy", "--kind", "LSTM"], 2, "--kind apply to PyTorch state files"),
    (["predict", "m.keras"], 2, "the following arguments are required: data"),
    (["predict", "m.keras", "x.npy", "--model", "m.unrolled.npz"], 2,
     "--model applies to weights-only files (.weights.h5, .weights.npz); m.keras is not one"),
    (["predict", "m.keras", "x.npy", "--nonlinearity", "sigmoid"], 2, "invalid choice: 'sigmoid'"),
    # convert, inspect, verify
    (["convert", "m.weights.npz", "out.keras"], 2, "pass --model FILE"),
    (["convert", "m.keras", "out.txt"], 2, "Cannot write out.txt"),
    (["convert", "m.weights.npz", "out.keras", "--model", "x.npy"], 1,
     "'x.npy' is not a model file: expected a .keras or .unrolled.npz zip archive or an HDF5 "
     ".h5 file; it starts with b'\\x93NUMPY"),
    (["inspect", "junk.keras"], 1, "not a zip archive"),
    (["inspect", "x.npy"], 1, "is not an HDF5 file"),
    (["verify", "x.npy"], 2, "verify compares a .keras/.h5 file"),
    (["verify", "m.keras", "--tol", "-1"], 2, "a tolerance is a non-negative number"),
    (["verify", "m.keras", "--timesteps", "0"], 2, "expected a positive integer"),
    (["verify", "m.keras", "--kind", "LSTM"], 2, "--kind apply to PyTorch state files"),
    # explain, example, demo, the command itself
    (["explain", "m.keras", "--input", "short.npy"], 1, "expected shape=(None, 6, 3)"),
    (["explain", "m.keras", "--input", "x.txt"], 1, "expected a .npy file"),
    (["example", "nosuch"], 2, "unknown example 'nosuch'; the examples are sine"),
    (["demo", "--seed", "x"], 2, "a seed is a non-negative integer"),
    (["predict", "m.keras", "x.npy", "--bogus"], 2, "unrecognized arguments: --bogus"),
]


def _says_it_on_one_line(args, code, says, result):
    got, out, err = result
    assert "Traceback" not in err + out
    assert got == code, err
    assert len(err.strip().splitlines()) == 1, err
    assert says in err
    assert re.match(f"unrolled( {args[0]})?: error: ", err), err


@pytest.mark.parametrize("args,code,says", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_wrong_inputs_give_one_line_and_the_exit_code(args, code, says, folder):
    _says_it_on_one_line(args, code, says, in_process(*args, cwd=folder[0]))


@pytest.mark.parametrize("args,code,says", [CASES[-1], CASES[1]], ids=["usage", "failure"])
def test_a_real_process_says_the_same(args, code, says, folder):
    """``python -m unrolled``: a usage error (argparse's exit) and a failure, in a subprocess,
    give the exit code and the one line of stderr that the in-process run gives."""
    real = in_a_process(*args, cwd=folder[0], timeout=120)
    _says_it_on_one_line(args, code, says, real)
    assert real == in_process(*args, cwd=folder[0])


@pytest.mark.parametrize("command", ["predict", "convert"])
def test_the_weights_only_hint_names_an_option_that_exists(command, folder):
    root, expected = folder
    args = ["m.weights.npz", "x.npy"] if command == "predict" else ["m.weights.npz", "o.keras"]
    code, _, err = in_process(command, *args, cwd=root)
    options = re.findall(r"--[a-z][a-z-]*", err)
    assert code == 2 and options == ["--model"]
    code, usage, _ = in_process(command, "--help", cwd=root)
    assert code == 0 and re.search(r"^\s+--model MODEL\b", usage, re.M), usage
    code, _, err = in_process(command, *args, "--model", "m.unrolled.npz",
                              *(["--out", "y.npy"] if command == "predict" else []), cwd=root)
    assert code == 0, err
    if command == "predict":                           # the weights file's model, run
        np.testing.assert_allclose(np.load(root / "y.npy"), expected, rtol=1e-6, atol=1e-7)
    else:
        again = unrolled.models.load_model(root / "o.keras")
        np.testing.assert_allclose(again.predict(np.load(root / "x.npy"), verbose=0), expected,
                                   rtol=1e-6, atol=1e-7)


def test_a_csv_of_the_right_width_is_read_one_sample_a_row(folder):
    root, expected = folder
    np.savetxt(root / "x.csv", np.load(root / "x.npy").reshape(4, -1), delimiter=",")
    code, _, err = in_process("predict", "m.keras", "x.csv", "--out", "y.csv", cwd=root)
    assert code == 0, err
    np.testing.assert_allclose(np.loadtxt(root / "y.csv", delimiter=","), expected,
                               rtol=1e-6, atol=1e-7)


def test_an_unexpected_error_is_one_line_too(monkeypatch, capsys):
    """A bug (an exception no command expects) is reported on one line with its type;
    UNROLLED_TRACEBACK=1 lets it through; Ctrl-C exits with 130."""
    from unrolled.interop import commands

    def broken(path):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(commands, "inspect", broken)
    monkeypatch.delenv("UNROLLED_TRACEBACK", raising=False)
    assert cli.main(["inspect", "m.keras"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "unrolled inspect: internal error: ZeroDivisionError: division by zero (set "
        "UNROLLED_TRACEBACK=1 to see where)"]
    monkeypatch.setenv("UNROLLED_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        cli.main(["inspect", "m.keras"])

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "inspect", interrupted)
    assert cli.main(["inspect", "m.keras"]) == 130
    assert capsys.readouterr().err.strip() == "unrolled inspect: interrupted"


def test_an_unexpected_error_in_a_real_process(folder):
    """The same bug in ``python -m unrolled``: one line and exit code 1; with
    UNROLLED_TRACEBACK=1 the exception goes through to Python, which prints its traceback
    (and exits with 1)."""
    code = ("import runpy, sys\n"
            "from unrolled.interop import commands\n"
            "def broken(path):\n"
            "    raise ZeroDivisionError('division by zero')\n"
            "commands.inspect = broken\n"
            "sys.argv = ['unrolled', 'inspect', 'm.keras']\n"
            "runpy.run_module('unrolled', run_name='__main__', alter_sys=True)\n")
    for traceback in ("", "1"):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "UNROLLED_TRACEBACK": traceback}
        proc = subprocess.run([sys.executable, "-c", code], cwd=folder[0], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        if traceback:
            assert proc.stderr.startswith("Traceback") and \
                proc.stderr.strip().splitlines()[-1] == "ZeroDivisionError: division by zero"
        else:
            assert proc.stderr.strip().splitlines() == [
                "unrolled inspect: internal error: ZeroDivisionError: division by zero (set "
                "UNROLLED_TRACEBACK=1 to see where)"], proc.stderr
