"""The ``unrolled`` command line. ``unrolled demo`` tells the seed notebook's story."""
import argparse
import importlib.util
import sys

import numpy as np


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

    _section("6. Side by side with Keras")
    if not _keras_available():
        print("TensorFlow/Keras is not installed here, so the Keras comparison is skipped; "
              "everything above ran on NumPy alone. (`make test` installs Keras.)")
        return 0 if diff < 1e-6 else 1
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    ki = keras.Input(shape=(T, D))
    kmodel = keras.Model(ki, keras.layers.Dense(K)(keras.layers.SimpleRNN(M)(ki)))
    kmodel.set_weights(model.get_weights())
    ky = kmodel.predict(x, verbose=0)
    kdiff = np.abs(ky - y).max()
    print(f"keras:    {ky[0]}\nunrolled: {y[0]}\nmax |difference| = {kdiff:.2e}")
    return 0 if diff < 1e-6 and kdiff < 1e-6 else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="unrolled", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    p_demo = sub.add_parser("demo", help="the seed notebook's story, step by step")
    p_demo.add_argument("--seed", type=int, default=0)
    p_ex = sub.add_parser("example", help="run a worked example: sine, co2 or dante")
    p_ex.add_argument("name")
    p_ex.add_argument("--quick", action="store_true", help="a reduced, seconds-long run")
    p_ex.add_argument("--out-dir", default="docs/examples", help="where plots are saved")
    p_ex.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(seed=args.seed)
    if args.command == "example":
        from .examples import example_main
        return example_main(args.name, quick=args.quick, out_dir=args.out_dir, seed=args.seed)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
