"""Ctrl-C during training (issue 26.7): an optimizer step is applied whole or not at all,
the optimizer stays usable, and the interrupt reaches the user as ``KeyboardInterrupt``."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from unrolled import optimizers
from unrolled.layers import LSTM, Dense, Input
from unrolled.models import Sequential
from unrolled.optimizers import base as optimizer_base


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own Ctrl-C handler, as a program started from a terminal has it. A process
    started in the background by a non-interactive shell (``cmd &``) inherits SIGINT
    ignored, and Python then installs no handler: these tests would see no interrupt."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _pair():
    """Two models with the same weights, data, and Adam."""
    models = []
    for _ in range(2):
        m = Sequential([Input((5, 3)), LSTM(4), Dense(2)])
        m.compile(optimizer=optimizers.Adam(0.01), loss="mse")
        models.append(m)
    models[1].set_weights(models[0].get_weights())
    r = np.random.default_rng(0)
    x = r.standard_normal((6, 5, 3)).astype("float32")
    return models, x, r.standard_normal((6, 2)).astype("float32")


def test_ctrl_c_in_the_middle_of_a_step_takes_effect_after_the_whole_step(monkeypatch):
    (model, reference), x, y = _pair()
    real = type(model.optimizer).update_step
    calls = []

    def update_step(self, g, var, lr):
        calls.append(var.path)
        if len(calls) == 2:                      # Ctrl-C after the first variable's update
            signal.raise_signal(signal.SIGINT)
        return real(self, g, var, lr)

    monkeypatch.setattr(type(model.optimizer), "update_step", update_step)
    with pytest.raises(KeyboardInterrupt):
        model.train_on_batch(x, y)
    monkeypatch.setattr(type(model.optimizer), "update_step", real)
    assert len(calls) == len(model.trainable_weights)     # every variable was updated
    assert model.optimizer.iterations == 1
    reference.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.train_on_batch(x, y)                            # and training goes on
    reference.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupt_while_slots_are_made_leaves_a_usable_optimizer(monkeypatch):
    (model, reference), x, y = _pair()
    real, made = optimizer_base.Variable, []

    def interrupted(*args, **kwargs):
        made.append(args[1])
        if len(made) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(optimizer_base, "Variable", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.train_on_batch(x, y)
    monkeypatch.setattr(optimizer_base, "Variable", real)
    model.train_on_batch(x, y)                   # no KeyError: the slots are all there
    reference.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(model.optimizer.variables) == len(reference.optimizer.variables)


def test_a_real_ctrl_c_during_fit_is_a_keyboard_interrupt(tmp_path):
    """SIGINT sent to a process in the middle of fit, compiled kernels on: the process ends
    with KeyboardInterrupt (not SystemError or another error), and the model it saved on
    the way is whole."""
    script = tmp_path / "fit.py"
    script.write_text(textwrap.dedent("""
        import signal, sys, numpy as np
        signal.signal(signal.SIGINT, signal.default_int_handler)   # (see the fixture above)
        from unrolled import callbacks
        from unrolled.layers import LSTM, Dense, Input
        from unrolled.models import Sequential
        m = Sequential([Input((50, 8)), LSTM(32), Dense(1)])
        m.compile(optimizer="adam", loss="mse")
        x = np.random.default_rng(0).standard_normal((256, 50, 8)).astype("float32")
        ready = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: b == 1 and
                                         print("ready", flush=True))
        try:
            m.fit(x, x[:, -1, :1], epochs=1000, batch_size=32, verbose=0, callbacks=[ready])
        except KeyboardInterrupt:
            m.train_on_batch(x[:32], x[:32, -1, :1])     # still usable
            print("interrupted cleanly", m.optimizer.iterations > 0, flush=True)
            sys.exit(3)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err[-2000:]
    assert out.strip() == "interrupted cleanly True", (out, err[-2000:])
