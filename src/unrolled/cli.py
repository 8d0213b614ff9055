"""The ``unrolled`` command line. ``unrolled demo`` tells the seed notebook's story.

File commands (formats and what each needs: ``unrolled.interop.commands``)::

    unrolled inspect FILE            summary and weight table (name, shape, dtype, min/max/mean)
    unrolled verify FILE             FILE in Keras (or torch) and in unrolled, compared per layer
    unrolled convert IN OUT          between .keras, .h5, .unrolled.npz, .weights.h5/.npz, .pt;
                                     .onnx as output
    unrolled predict FILE DATA       predictions for DATA (.npy or .csv), printed or --out;
                                     --model M for a weights-only FILE

    unrolled explain FILE --input DATA --out report.html   (or --demo): one HTML page with
                                     the equations, values and gradient flow step by step
"""
import argparse
import importlib.util
import sys

import numpy as np

from .optional import require


def _section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def _keras_available():
    return importlib.util.find_spec("keras") is not None and \
        importlib.util.find_spec("tensorflow") is not None


def demo(seed=0):
    """Build Input -> SimpleRNN(5) -> Dense(2), predict, and recompute it by hand."""
    from .layers import Dense, Input, SimpleRNN
    from .models import Model
    from .optimizers import Adam
    from .utils import set_random_seed

    set_random_seed(seed)
    N, T, D, M, K = 1, 10, 3, 5, 2
    _section("1. The data: N=1 sequence of T=10 steps with D=3 features")
    x = np.random.default_rng(seed).standard_normal((N, T, D))
    print(f"x.shape = {x.shape}, dtype {x.dtype}")

    _section("2. The model, exactly as the notebook builds it")
    print("i = Input(shape=(T, D))\nout = SimpleRNN(M, activation='tanh')(i)\n"
          "out = Dense(K)(out)\nmodel = Model(i, out)\n"
          "model.compile(loss='mse', optimizer=Adam(learning_rate=0.1))\n")
    i = Input(shape=(T, D))
    out = SimpleRNN(M, activation="tanh")(i)
    out = Dense(K)(out)
    model = Model(i, out)
    model.compile(loss="mse", optimizer=Adam(learning_rate=0.1))
    model.summary()

    _section("3. model.predict(x)")
    y = model.predict(x)
    print(f"{y!r}")

    _section("4. The weights: input->hidden, hidden->hidden, bias; then the Dense layer")
    Wx, Wh, bh = model.layers[1].get_weights()
    Wo, bo = model.layers[2].get_weights()
    for name, w in (("Wx", Wx), ("Wh", Wh), ("bh", bh), ("Wo", Wo), ("bo", bo)):
        print(f"{name} {str(w.shape):8s} {np.array2string(w.ravel()[:5], precision=4)}{' ...' if w.size > 5 else ''}")

    _section("5. The same prediction by hand: the notebook's loop")
    print("h = zeros(M)\nfor t in range(T):\n    h = tanh(x[t] @ Wx + h @ Wh + bh)\ny = h @ Wo + bo\n")
    h = np.zeros(M)
    for t in range(T):
        h = np.tanh(x[0, t].dot(Wx) + h.dot(Wh) + bh)
        if t in (0, 1, T - 1):
            print(f"t={t}: h = {np.array2string(h, precision=5)}")
        elif t == 2:
            print("...")
    y_hand = h.dot(Wo) + bo
    diff = np.abs(y_hand - y[0]).max()
    print(f"\nby hand:  {y_hand}\npredict:  {y[0]}\nmax |difference| = {diff:.2e}"
          f"  ({'matches' if diff < 1e-6 else 'DOES NOT match'} to 1e-6)")

    _section(f"6. One step written out: the last one, t={T - 1}, with its numbers")
    from .explain import equations, to_numpy_code

    print(equations(model.layers[1], x, t=T - 1))
    print("\n(explain.trace(model, x) holds these values for every step; "
          "`unrolled explain --demo` draws them.)")

    _section("7. The same loop as a standalone NumPy program")
    code_diff = _run_generated_code(to_numpy_code(model), x, y)
    diff = max(diff, code_diff)

    _section("8. Side by side with Keras")
    if not _keras_available():
        print("TensorFlow/Keras is not installed here, so the Keras comparison is skipped; "
              "everything above ran on NumPy alone. (`make test` installs Keras.)")
        return 0 if diff < 1e-6 else 1
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from .optional import import_quietly
    keras = import_quietly("keras")

    ki = keras.Input(shape=(T, D))
    kmodel = keras.Model(ki, keras.layers.Dense(K)(keras.layers.SimpleRNN(M)(ki)))
    kmodel.set_weights(model.get_weights())
    ky = kmodel.predict(x, verbose=0)
    kdiff = np.abs(ky - y).max()
    print(f"keras:    {ky[0]}\nunrolled: {y[0]}\nmax |difference| = {kdiff:.2e}")
    return 0 if diff < 1e-6 and kdiff < 1e-6 else 1


def _run_generated_code(source, x, y):
    """Save the program to_numpy_code wrote, run it in a fresh Python, compare with predict."""
    import os
    import re
    import subprocess
    import tempfile

    loop = re.search(r'def \w+\(x\):\n    """SimpleRNN.*?(?=\n\n)', source, re.S).group(0)
    print("explain.to_numpy_code(model) writes the model as a program that needs NumPy alone;"
          "\nits recurrent layer is the notebook's loop:\n")
    print(loop)
    with tempfile.TemporaryDirectory() as tmp:
        prog, x_file, y_file = (os.path.join(tmp, n) for n in ("model.py", "x.npy", "y.npy"))
        with open(prog, "w") as f:
            f.write(source)
        np.save(x_file, x)
        subprocess.run([sys.executable, prog, x_file, "--out", y_file], check=True,
                       capture_output=True, timeout=120)
        y_code = np.load(y_file, allow_pickle=False)
    code_diff = float(np.abs(y_code - y).max())
    print(f"\npython model.py x.npy: {y_code[0]}\npredict:              {y[0]}\n"
          f"max |difference| = {code_diff:.2e}  "
          f"({'matches' if code_diff < 1e-6 else 'DOES NOT match'} to 1e-6)")
    return code_diff


def _load_data(path, what):
    """An array from ``.npy``, or ``(x, y)`` from an ``.npz`` holding ``x`` (and maybe ``y``)."""
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data.files:
                raise ValueError(f"{what} {path!r} must hold an array named 'x' (and optionally "
                                 f"'y'); it holds {data.files}. Save it with np.savez(path, x=x, y=y).")
            return data["x"], (data["y"] if "y" in data.files else None)
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False), None
    raise ValueError(f"{what} {path!r}: expected a .npy file (the inputs) or a .npz file "
                     "with arrays 'x' and optionally 'y'.")


def explain_main(args):
    """``unrolled explain``: write the HTML report of a model file (or of the demo model)."""
    from .explain import report

    try:                                  # before any work: the report draws its plots
        require("matplotlib.figure", "unrolled explain")
    except ImportError as err:
        return _failed("explain", err)
    history = None
    steps = args.steps
    try:
        if args.demo:
            from .explain.demo import demo_model
            model, x, y, history = demo_model(seed=args.seed)
            x, y = x[:16], y[:16]
        else:
            if args.model_file is None or args.input is None:
                print("error: give a model file and --input DATA, or --demo. "
                      "Example: unrolled explain model.unrolled.npz --input x.npy --out report.html",
                      file=sys.stderr)
                return 2
            from .models import load_model
            model = load_model(args.model_file)
            x, y = _load_data(args.input, "--input")
            if args.target is not None:
                y, _ = _load_data(args.target, "--target")
        path = report(model, x, y, path=args.out, steps=steps, history=history)
    except FAILURES as err:
        return _failed("explain", err)
    print(f"wrote {path}")
    return 0


# What a command that ran and failed raises (a file it cannot read, data of the wrong shape,
# an optional dependency missing): one line on stderr and exit code 1. Usage errors (an
# unknown option, a value of the wrong kind) are argparse's: one line and exit code 2.
FAILURES = (OSError, ValueError, TypeError, ImportError, RuntimeError, KeyError)


def _failed(command, err, code=1):
    text = " ".join(str(err).split()) or type(err).__name__
    print(f"unrolled {command}: error: {text}", file=sys.stderr)
    return code


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (``unrolled CMD: error: ...``), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seed(text):
    value = int(text) if text.lstrip("-").isdigit() else -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer; received {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {text!r}")
    return value


def _tolerance(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"a tolerance is a non-negative number; received "
                                         f"{text!r}")
    return value


def _steps(text):
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        steps = None
    if not steps or min(steps) < 0:
        raise argparse.ArgumentTypeError(
            f"time steps are non-negative integers separated by commas, e.g. 0,5,9; received "
            f"{text!r}")
    return steps


def main(argv=None):
    """The ``unrolled`` command; returns the exit code: 0, 1 for a failure, 2 for a usage
    error, 130 when interrupted. Errors are one line on stderr; one that no command expects
    (a bug) is reported on one line too, with its type; ``UNROLLED_TRACEBACK=1`` lets its
    traceback through instead."""
    import os
    command = next((a for a in (sys.argv[1:] if argv is None else argv)
                    if not a.startswith("-")), None)
    prefix = f"unrolled {command}" if command else "unrolled"
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last resort: one line, never a traceback
        if os.environ.get("UNROLLED_TRACEBACK") == "1":
            raise
        text = " ".join(str(err).split())
        print(f"{prefix}: internal error: {type(err).__name__}: {text} (set "
              "UNROLLED_TRACEBACK=1 to see where)", file=sys.stderr)
        return 1


def console():
    """The process's entry (the ``unrolled`` script and ``python -m unrolled``): ``main``,
    then the exit without the interpreter's last garbage collection. Once the compiled
    kernels are loaded, numba leaves ~100k objects in reference cycles, and collecting them
    at exit took 0.15-0.5 s of every command (measured; 0.03-0.05 s frozen). Every file a
    command writes is closed by then (atomic writes), so the cycles are left to the OS.
    ``main`` itself, which tests and scripts call in-process, leaves the collector alone."""
    import gc
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    return code


def _main(argv):
    from . import __version__

    parser = _Parser(prog="unrolled", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"unrolled {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_demo = sub.add_parser("demo", help="the seed notebook's story, step by step")
    p_demo.add_argument("--seed", type=_seed, default=0)
    p_ex = sub.add_parser("example", help="run a worked example: sine, co2, dante or attention")
    p_ex.add_argument("name")
    p_ex.add_argument("--quick", action="store_true", help="a reduced, seconds-long run")
    p_ex.add_argument("--out", "--out-dir", dest="out_dir", default=None,
                      help="where figures and files go (default ./unrolled-examples/NAME/)")
    p_ex.add_argument("--seed", type=_seed, default=0)
    p_explain = sub.add_parser("explain", help="write an HTML report that explains a model")
    p_explain.add_argument("model_file", nargs="?", help="a saved model (see unrolled.models.load_model)")
    p_explain.add_argument("--input", help="the inputs: .npy, or .npz with x (and y)")
    p_explain.add_argument("--target", help="targets y (.npy) for the gradient flow")
    p_explain.add_argument("--out", default="report.html", help="the HTML file to write")
    p_explain.add_argument("--steps", type=_steps,
                           help="time steps to show, e.g. 0,5,9 (default first, middle, last)")
    p_explain.add_argument("--demo", action="store_true", help="explain a small LSTM trained on a sine")
    p_explain.add_argument("--seed", type=_seed, default=0)
    _add_file_commands(sub)
    args = parser.parse_args(argv)
    if args.command in ("inspect", "verify", "convert", "predict"):
        return _run_file_command(args)
    if args.command == "explain":
        return explain_main(args)
    try:
        if args.command == "demo":
            return demo(seed=args.seed)
        if args.command == "example":
            from .examples import EXAMPLES, example_main
            if args.name not in EXAMPLES:
                print(f"unrolled example: error: unknown example {args.name!r}; the examples "
                      f"are {', '.join(EXAMPLES)} (see unrolled example --help)", file=sys.stderr)
                return 2
            return example_main(args.name, quick=args.quick, out_dir=args.out_dir,
                                seed=args.seed)
    except FAILURES as err:
        return _failed(args.command, err)
    parser.print_help()
    return 0


def _add_file_commands(sub):
    p = sub.add_parser("inspect", help="model summary and weight statistics of a file")
    p.add_argument("file")
    p = sub.add_parser("verify", help="compare a file's outputs in Keras/torch and in unrolled")
    p.add_argument("file")
    p.add_argument("--tol", type=_tolerance, default=1e-5)
    p.add_argument("--timesteps", type=_positive_int, default=10,
                   help="for inputs of unknown length")
    p.add_argument("--seed", type=_seed, default=0)
    _add_torch_options(p)
    p = sub.add_parser("convert", help="convert a model file to another format")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--model", help="architecture for a weights-only input (.keras/.h5/.unrolled.npz)")
    _add_torch_options(p)
    p = sub.add_parser("predict", help="run a model file on DATA (.npy or .csv)")
    p.add_argument("file")
    p.add_argument("data", help="inputs: .npy of shape (N, ...) as the model's input, or .csv "
                                "with one sample a row")
    p.add_argument("--out", help="write predictions to a .npy file (any other name: CSV rows) instead of printing")
    p.add_argument("--model",
                   help="architecture for a weights-only FILE (.keras/.h5/.unrolled.npz)")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    _add_torch_options(p)


def _torch_kind(text):
    """``--kind LSTM`` (one module), or ``--kind embed=Embedding,enc=LSTM,dec=Linear``."""
    if "=" not in text:
        return text
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise argparse.ArgumentTypeError(f"expected KIND or NAME=KIND,NAME=KIND; received {text!r}")
    return {name.strip(): kind.strip() for name, kind in pairs}


def _add_torch_options(p):
    """The options of a PyTorch state file (.pt/.pth), which a state dict cannot tell."""
    p.add_argument("--kind", type=_torch_kind,
                   help="torch state: RNN, LSTM, GRU, Linear or Embedding; for a whole model "
                        "NAME=KIND,... per submodule (e.g. enc=LSTM,dec=Linear)")
    p.add_argument("--nonlinearity", default="tanh", choices=("tanh", "relu"),
                   help="torch nn.RNN state: tanh or relu")
    p.add_argument("--head-on", choices=("last", "final", "sequence"),
                   help="torch state with a Linear head: what the head reads, out[:, -1] "
                        "(last, the default), h_n (final) or every step (sequence)")


def _run_file_command(args):
    from .interop import commands

    try:
        if args.command == "inspect":
            return commands.inspect(args.file)
        if args.command == "verify":
            from .interop.verify import verify
            return verify(args.file, tol=args.tol, timesteps=args.timesteps, seed=args.seed,
                          kind=args.kind, nonlinearity=args.nonlinearity, head_on=args.head_on)
        if args.command == "convert":
            return commands.convert(args.input, args.output, args.model, args.kind,
                                    args.nonlinearity, args.head_on)
        return commands.predict(args.file, args.data, args.out, args.batch_size, args.kind,
                                args.nonlinearity, args.head_on, model=args.model)
    except commands.UsageError as e:                         # a wrong kind of file, an option
        return _failed(args.command, e, code=2)              # missing or out of place
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        return _failed(args.command, e.code, code=2)
    except FAILURES as e:                                    # ModelFileError is a ValueError
        return _failed(args.command, e)


if __name__ == "__main__":
    sys.exit(main())
