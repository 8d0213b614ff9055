"""The progress bar (issue 24.8): each epoch's line is written once, with its validation
metrics; in a pipe or a file only final lines are written; on a terminal the bar is redrawn
at most every 0.05 s (Keras's interval), not at every batch."""
import io

import numpy as np

import unrolled
from unrolled import progbar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_fit_in_a_pipe_writes_one_line_per_epoch(capsys):
    model = unrolled.Sequential([unrolled.Input((3,)), unrolled.layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd")
    model.fit(np.ones((64, 3)), np.ones(64), epochs=3, batch_size=8, validation_split=0.25)
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("Epoch")] == ["Epoch 1/3", "Epoch 2/3",
                                                                     "Epoch 3/3"]
    bars = [line for line in lines if line.startswith("6/6")]
    assert len(bars) == 3 and all("val_loss" in line for line in bars)


def test_a_terminal_bar_is_redrawn_at_most_every_interval(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progbar.time, "perf_counter", lambda: now[0])
    stream = Terminal()
    bar = progbar.Progbar(4000, stream=stream, wait_for_finalize=True)
    for step in range(1, 4001):
        now[0] += 0.001                        # 1 ms a batch: 4 s in all
        bar.update(step, {"loss": 1.0})
    bar.update(4000, {"loss": 1.0, "val_loss": 2.0}, finalize=True)
    bar.update(4000, {"loss": 1.0}, finalize=True)       # a second finalize writes nothing
    text = stream.getvalue()
    draws = text.count("\r")
    assert 4.0 / progbar.Progbar.interval - 2 <= draws <= 4.0 / progbar.Progbar.interval + 2
    assert text.count("\n") == 1 and text.endswith("val_loss: 2.0000\n")


def test_evaluate_and_predict_end_their_line_once(capsys):
    model = unrolled.Sequential([unrolled.Input((3,)), unrolled.layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd")
    model.evaluate(np.ones((64, 3)), np.ones(64), batch_size=8)
    model.predict(np.ones((64, 3)), batch_size=8)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("8/8") for line in lines)
