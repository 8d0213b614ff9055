"""Example 2: forecasting a real series, monthly CO2 at Mauna Loa (1965-2001).

The series climbs from 319 to 371 ppm with a yearly swing of about 6 ppm. The test years
lie above every training value, so a network fed raw levels would have to extrapolate,
which tanh units cannot do. The usual remedy: model the **month-to-month change**
``d[t] = co2[t] - co2[t-1]``, whose pattern (up in spring, down in summer) repeats from the
first year to the last, and forecast ``co2[t] = co2[t-1] + predicted d[t]``.

* split in time: 70 % train, 15 % validation, 15 % test (the last 5.5 years);
* scale the changes with a ``Scaler`` fitted on the training part only;
* windows of the last 24 changes -> LSTM(32) -> Dense(1), the next change;
* judged on the test part, in ppm, against the **naive** forecast (next month = this
  month, ``d = 0``) and the seasonal naive one (next month = same month last year).

A last plot forecasts the whole test part at once, feeding predicted changes back.
"""
import numpy as np

from ..callbacks import EarlyStopping
from ..data import Scaler, load_co2, split_in_time, timeseries_windows
from ..layers import LSTM, Dense, Input
from ..models import Model
from ..optimizers import Adam
from ..utils import set_random_seed
from . import pyplot, save, say, section

T = 24   # months of history per window


def errors(forecast, actual):
    """``(MAE, RMSE)`` in the data's units."""
    e = np.asarray(forecast) - np.asarray(actual)
    return float(np.mean(np.abs(e))), float(np.sqrt(np.mean(e ** 2)))


def forecast_recursive(model, scaler, history, steps):
    """Forecast ``steps`` changes from the scaled ``history``, feeding each one back."""
    window = list(history[-T:])
    out = []
    for _ in range(steps):
        d = float(model.predict(np.array(window[-T:]).reshape(1, T, 1), verbose=0)[0, 0])
        out.append(d)
        window.append(d)
    return scaler.inverse_transform(np.array(out))


def run(quick=False, out_dir="unrolled-examples/co2", seed=0, verbose=True):
    epochs, units = (12, 8) if quick else (200, 32)
    section("1. The data: Mauna Loa CO2, monthly means (Scripps, public domain)", verbose)
    months, co2 = load_co2()
    d = np.diff(co2)                  # d[i] = co2[i+1] - co2[i]: the change into month i+1
    train, val, test = split_in_time(d, train=0.7, validation=0.15, context=T)
    n_train, n_val = len(train), len(val) - T
    first_test = n_train + n_val      # index in d of the first change to forecast
    say(verbose, f"{len(co2)} months {months[0]} .. {months[-1]}, {co2.min():.1f} .. "
                 f"{co2.max():.1f} ppm; test part {months[first_test + 1]} .. {months[-1]} "
                 f"({len(d) - first_test} months)")

    scaler = Scaler("standard").fit(train)          # the future stays unseen
    say(verbose, f"monthly change on the training part: mean {scaler.offset_:.3f}, "
                 f"std {scaler.scale_:.3f} ppm")
    windows = {}
    for part, values in (("train", train), ("val", val), ("test", test)):
        x, y = timeseries_windows(scaler.transform(values), sequence_length=T, horizon=1)
        windows[part] = (x[..., None], y)           # (windows, T, 1), (windows, 1)

    section(f"2. LSTM({units}) -> Dense(1) on windows of {T} monthly changes", verbose)
    set_random_seed(seed)
    i = Input(shape=(T, 1))
    model = Model(i, Dense(1)(LSTM(units)(i)))
    model.compile(optimizer=Adam(learning_rate=0.005), loss="mse")
    stop = EarlyStopping(patience=30, restore_best_weights=True)
    history = model.fit(*windows["train"], validation_data=windows["val"], epochs=epochs,
                        batch_size=32, callbacks=[stop], verbose=2 if verbose else 0)
    losses = history.history
    best = int(np.argmin(losses["val_loss"]))
    say(verbose, f"trained {len(losses['loss'])} epochs; best validation loss "
                 f"{losses['val_loss'][best]:.4f} at epoch {best + 1}, whose weights are kept")

    section("3. One-month-ahead forecasts on the test part (ppm)", verbose)
    actual = co2[first_test + 1:]                   # the months whose change we forecast
    last = co2[first_test:-1]                       # the month before each of them
    d_pred = scaler.inverse_transform(model.predict(windows["test"][0], verbose=0)[:, 0])
    forecasts = {
        f"LSTM({units}) on changes": last + d_pred,
        "naive: last value": last,
        "seasonal naive: 12 months ago": co2[first_test + 1 - 12:-12],
    }
    results = {"train_loss": losses["loss"], "val_loss": losses["val_loss"],
               "best_epoch": best + 1, "plots": []}
    say(verbose, f"{'forecast':32s} {'MAE':>7s} {'RMSE':>7s}")
    for (name, f), key in zip(forecasts.items(), ("model", "naive", "seasonal_naive")):
        mae, rmse = errors(f, actual)
        results[f"{key}_mae"], results[f"{key}_rmse"] = mae, rmse
        say(verbose, f"{name:32s} {mae:7.3f} {rmse:7.3f}")
    ratio = results["model_mae"] / results["naive_mae"]
    say(verbose, f"the LSTM's mean error is {ratio:.0%} of the naive forecast's")

    section("4. The whole test part forecast at once (changes fed back)", verbose)
    start = scaler.transform(d[:first_test])
    d_rec = forecast_recursive(model, scaler, start, len(actual))
    recursive = co2[first_test] + np.cumsum(d_rec)
    results["recursive_mae"], results["recursive_rmse"] = errors(recursive, actual)
    results["hold_mae"] = errors(np.full(len(actual), co2[first_test]), actual)[0]
    say(verbose, f"{len(actual)} months ahead from {months[first_test]}: MAE "
                 f"{results['recursive_mae']:.3f}, RMSE {results['recursive_rmse']:.3f} ppm "
                 f"(holding the last value: MAE {results['hold_mae']:.3f})")

    plt = pyplot(out_dir, verbose)
    if plt is not None:
        years = np.array([int(m[:4]) + (int(m[5:7]) - 0.5) / 12 for m in months])
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7))
        top.plot(years, co2, color="k", lw=0.8)
        for lo, hi, label, color in ((0, n_train, "train", "C0"),
                                     (n_train, first_test, "validation", "C1"),
                                     (first_test, len(d), "test", "C2")):
            top.axvspan(years[lo + 1], years[hi], alpha=0.15, color=color, label=label)
        top.set(title="Mauna Loa CO2, monthly means", ylabel="ppm")
        top.legend(loc="upper left", fontsize=8)
        t = years[first_test + 1:]
        bottom.plot(t, actual, "k.-", lw=1, ms=4, label="actual")
        bottom.plot(t, forecasts[f"LSTM({units}) on changes"], "C2-", lw=1.3,
                    label=f"LSTM, one month ahead (MAE {results['model_mae']:.2f})")
        bottom.plot(t, last, "C7--", lw=1,
                    label=f"naive: last value (MAE {results['naive_mae']:.2f})")
        bottom.plot(t, recursive, "C3:", lw=1.5, label=f"LSTM, all months from "
                    f"{months[first_test]} (MAE {results['recursive_mae']:.2f})")
        bottom.set(title="test part", ylabel="ppm")
        bottom.legend(loc="upper left", fontsize=8)
        results["plots"].append(save(plt, fig, out_dir, "co2_forecast.png", verbose))
    return results
