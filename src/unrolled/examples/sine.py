"""Example 1: forecasting a noisy sine wave, SimpleRNN against LSTM.

The course's first forecasting exercise. From the last ``T = 20`` values, predict the next:

* **one-step** forecasts: every test window is real data, the model predicts one value;
* **multi-step** forecasts: the model starts from the last real window and then sees only
  its own predictions, each one appended to the window it reads next. Errors compound, so
  this is the harder test; a model that merely copies the last value drifts off at once.

The naive one-step baseline repeats the last value of the window; for the multi-step
forecast the reference is predicting 0, the mean of the wave.
"""
import numpy as np

from ..data import split_in_time, timeseries_windows
from ..layers import LSTM, Dense, Input, SimpleRNN
from ..models import Model
from ..optimizers import Adam
from ..utils import set_random_seed
from . import pyplot, save, say, section

T = 20         # steps per input window
NOISE = 0.1    # standard deviation of the noise added to sin(0.1 t)


def make_series(n, seed):
    """``sin(0.1 t) + 0.1 * noise`` for ``t = 0 .. n-1``."""
    t = np.arange(n)
    return np.sin(0.1 * t) + NOISE * np.random.default_rng(seed).standard_normal(n)


def build(layer, units, learning_rate):
    """Input (T, 1) -> SimpleRNN or LSTM -> Dense(1): the notebook's forecaster."""
    i = Input(shape=(T, 1))
    out = Dense(1)(layer(units)(i))
    model = Model(i, out)
    model.compile(optimizer=Adam(learning_rate=learning_rate), loss="mse")
    return model


def forecast_multi_step(model, window, steps):
    """Forecast ``steps`` values, feeding each prediction back as the newest input."""
    window = list(window)
    predictions = []
    for _ in range(steps):
        x = np.array(window[-T:]).reshape(1, T, 1)
        y = float(model.predict(x, verbose=0)[0, 0])
        predictions.append(y)
        window.append(y)                       # the model now reads its own output
    return np.array(predictions)


def mse(a, b):
    return float(np.mean((np.asarray(a) - np.asarray(b)) ** 2))


def run(quick=False, out_dir="unrolled-examples/sine", seed=0, verbose=True):
    n, epochs, units, lr = (400, 15, 10, 0.01) if quick else (1000, 100, 32, 0.005)
    section("1. The data: a noisy sine wave, split in time", verbose)
    series = make_series(n, seed)
    train, _, test = split_in_time(series, train=0.5, validation=0, context=T)
    x_train, y_train = timeseries_windows(train, sequence_length=T, horizon=1)
    x_test, y_test = timeseries_windows(test, sequence_length=T, horizon=1)
    x_train, x_test = x_train[..., None], x_test[..., None]   # (windows, T, 1 feature)
    say(verbose, f"{n} steps of sin(0.1 t) + {NOISE} * noise; train {len(train)} steps -> "
                 f"{len(x_train)} windows of {T}; test {len(y_test)} steps")

    naive = mse(y_test[:, 0], x_test[:, -1, 0])
    zero = mse(y_test[:, 0], 0.0)
    results = {"naive_one_step_mse": naive, "zero_multi_step_mse": zero, "plots": []}
    curves, one_step, multi_step = {}, {}, {}
    for name, layer in (("SimpleRNN", SimpleRNN), ("LSTM", LSTM)):
        section(f"2. {name}({units}) -> Dense(1), {epochs} epochs", verbose)
        set_random_seed(seed)
        model = build(layer, units, lr)
        history = model.fit(x_train, y_train, epochs=epochs, batch_size=32,
                            verbose=2 if verbose else 0)
        curves[name] = history.history["loss"]
        one_step[name] = model.predict(x_test, verbose=0)[:, 0]
        multi_step[name] = forecast_multi_step(model, x_test[0, :, 0], len(y_test))
        results[name] = {
            "first_loss": curves[name][0], "final_loss": curves[name][-1],
            "one_step_mse": mse(one_step[name], y_test[:, 0]),
            "multi_step_mse": mse(multi_step[name], y_test[:, 0]),
            "multi_step_mse_100": mse(multi_step[name][:100], y_test[:100, 0]),
        }

    section("3. Test errors (mean squared error on the test half)", verbose)
    zero_100 = mse(y_test[:100, 0], 0.0)
    results["zero_multi_step_mse_100"] = zero_100
    say(verbose, f"{'forecaster':22s} {'one-step':>9s} {'multi-step: 100 steps':>22s} "
                 f"{f'all {len(y_test)}':>8s}")
    say(verbose, f"{'naive (last value)':22s} {naive:9.4f}")
    say(verbose, f"{'constant 0 (the mean)':22s} {'':9s} {zero_100:22.4f} {zero:8.4f}")
    for name in ("SimpleRNN", "LSTM"):
        r = results[name]
        say(verbose, f"{name:22s} {r['one_step_mse']:9.4f} {r['multi_step_mse_100']:22.4f} "
                     f"{r['multi_step_mse']:8.4f}")
    say(verbose, f"(the noise alone has variance {NOISE ** 2:.4f}: no forecaster can go below it)")

    plt = pyplot(out_dir, verbose)
    if plt is not None:
        fig, axes = plt.subplots(3, 1, figsize=(8, 8))
        steps = np.arange(len(y_test))
        for ax, preds, title in ((axes[0], one_step, "one-step forecasts (real inputs)"),
                                 (axes[1], multi_step, "multi-step forecasts (own outputs fed back)")):
            ax.plot(steps, y_test[:, 0], color="0.6", lw=1, label="test data")
            for name, style in (("SimpleRNN", "-"), ("LSTM", "--")):
                ax.plot(steps, preds[name], style, lw=1.3,
                        label=f"{name} (MSE {mse(preds[name], y_test[:, 0]):.3f})")
            ax.set(title=title, ylim=(-1.8, 1.4))
            ax.legend(loc="lower center", ncol=3, fontsize=8)
        axes[1].axvline(100, color="k", ls=":", lw=1)          # the "first 100 steps" column
        for name in ("SimpleRNN", "LSTM"):
            axes[2].plot(np.arange(1, epochs + 1), curves[name], label=name)
        axes[2].set(title="training loss (MSE)", xlabel="epoch", yscale="log")
        axes[2].legend(fontsize=8)
        results["plots"].append(save(plt, fig, out_dir, "sine_forecasts.png", verbose))
    return results
