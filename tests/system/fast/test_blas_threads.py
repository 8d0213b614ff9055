"""The BLAS thread policy (issue 23.2): each kind of step runs on one BLAS thread or on
all of them, whichever its own timed steps found faster, and the count is put back after;
products too small for OpenBLAS to split are left alone, and so is a thread count the user
chose (environment variables, threadpoolctl limits). ``Choice`` is checked with a fake
clock; the models in fresh processes, since the environment is read when NumPy's BLAS
loads. Counts are asserted relative to what the process started with, so the tests hold
on any machine (on one core there is nothing to choose, and the policy stays off)."""
import json
import os
import subprocess
import sys

import pytest
import threadpoolctl  # noqa: F401  (a test extra: the policy's library)

from unrolled.fast.threads import (GIVE_UP, JUMP, MARGIN, MAX_PERIOD, PERIOD, RECHECK_SECONDS,
                                   SAMPLES, Choice)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _run_steps(choice, seconds_on, steps):
    """``steps`` steps, each taking ``seconds_on[threads]``; the counts they ran on."""
    used = []
    for _ in range(steps):
        n = choice.threads()
        used.append(n)
        choice.record(n, seconds_on[n])
    return used


def test_all_threads_are_kept_when_their_steps_are_faster_by_the_margin():
    choice = Choice(4, clock=Clock())
    times = {1: 2e-3, 4: 1e-3}
    used = _run_steps(choice, times, 1 + 2 * SAMPLES)
    assert used[0] == 1                          # the warm-up step, on one thread
    assert used[1:] == [1, 4] * SAMPLES          # alternating
    assert choice.best == 4
    assert _run_steps(choice, times, PERIOD - 1) == [4] * (PERIOD - 1)


def test_one_much_slower_all_threads_step_settles_it_at_once():
    choice = Choice(2, clock=Clock())
    used = _run_steps(choice, {1: 1e-3, 2: 1e-3 * (GIVE_UP + 0.5)}, 3)
    assert used == [1, 1, 2] and choice.best == 1


def test_no_step_runs_on_all_threads_while_another_process_holds_a_core(monkeypatch):
    """``limit`` asks whether other processes' threads are runnable before a timed step
    on all threads; if so it settles on one thread without running that step."""
    from unrolled.fast import threads

    class Controller:
        num_threads = 2

        def set_num_threads(self, n):
            self.num_threads = n
            used.append(n)

    class Model:
        weights = []

    used, busy = [], []
    monkeypatch.setattr(threads, "_controllers", (Controller(),))
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    monkeypatch.setattr(threads, "work", lambda model, rows: threads.TINY_WORK)
    monkeypatch.setattr(threads, "_others_busy", lambda n: busy[-1])
    monkeypatch.setattr(threads, "_choices", {})
    model = Model()
    busy.append(True)
    for _ in range(4):                               # warm-up, a sample on one, then busy
        with threads.limit(model, 32, "train"):
            pass
    (choice,) = threads._choices.values()
    assert choice.best == 1 and not choice.times[2]  # settled, no step timed on two
    assert used.count(1) == 4                        # every step ran on one thread
    quiet = threads.Choice(2)
    quiet.record(1, 1.0)                             # warm-up
    quiet.record(1, 1e-3)
    quiet.busy()
    assert quiet.best == 1
    monkeypatch.setattr(threads, "_choices", {})     # a quiet machine: all threads are timed
    busy.append(False)
    for _ in range(3):
        with threads.limit(model, 32, "train"):
            pass
    (choice,) = threads._choices.values()
    assert len(choice.times[2]) == 1


def test_other_processes_running_threads_are_counted_on_linux():
    from unrolled.fast import threads
    n = threads._others_running()
    assert n is None or n >= 0
    if sys.platform.startswith("linux"):
        assert n is not None


def test_all_threads_must_win_by_the_margin_and_by_their_median():
    choice = Choice(2, clock=Clock())
    _run_steps(choice, {1: 1e-3, 2: 1e-3 * (MARGIN + 0.05)}, 1 + 2 * SAMPLES)
    assert choice.best == 1                      # faster, but not by the margin
    noisy = Choice(2, clock=Clock())             # one lucky step among slow ones
    noisy.record(noisy.threads(), 0.0)           # the warm-up
    steps = iter([2e-4] + [1.4e-3] * (SAMPLES - 1))
    for _ in range(2 * SAMPLES):
        n = noisy.threads()
        noisy.record(n, 1e-3 if n == 1 else next(steps))
    assert noisy.best == 1                       # by its best step it would have won


def test_choice_times_again_less_often_while_it_agrees_and_follows_a_change_of_load():
    clock = Clock()
    choice = Choice(2, clock=clock)
    quiet, busy = {1: 1e-3, 2: 5e-4}, {1: 1e-3, 2: 3e-3}
    _run_steps(choice, quiet, 1 + 2 * SAMPLES)
    assert (choice.best, choice.period) == (2, PERIOD)
    _run_steps(choice, quiet, PERIOD)                  # the period ends: time both again
    assert choice.best is None
    _run_steps(choice, quiet, 2 * SAMPLES)             # the same answer: twice the period
    assert (choice.best, choice.period) == (2, 2 * PERIOD)
    _run_steps(choice, quiet, 2 * PERIOD)
    _run_steps(choice, busy, 2)                        # another process took a core
    assert (choice.best, choice.period) == (1, PERIOD)
    clock.now += RECHECK_SECONDS                       # and a few seconds later, again
    _run_steps(choice, busy, 1)
    assert choice.best is None
    for _ in range(12):                                # a steady load: the period grows
        _run_steps(choice, busy, choice.period + 2)
    assert choice.period == MAX_PERIOD


PROGRAM = r"""
import json, sys
import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_limits
from unrolled import callbacks, layers as L
from unrolled.fast import threads
from unrolled.models import Sequential

def blas_threads():
    return min(i["num_threads"] for i in ThreadpoolController().info() if i["user_api"] == "blas")

class Seen(callbacks.Callback):
    def __init__(self): super().__init__(); self.seen = []
    def on_train_batch_end(self, batch, logs=None): self.seen.append(blas_threads())
    def on_predict_batch_end(self, batch, logs=None): self.seen.append(blas_threads())

units, how = int(sys.argv[1]), sys.argv[2]
m = Sequential([L.Input((5, 3)), L.GRU(units), L.Dense(2)])
m.compile(loss="mse", optimizer="sgd")
x = np.ones((320, 5, 3), np.float32); y = np.ones((320, 2), np.float32)
start = blas_threads()
seen = Seen()
def run():
    m.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[seen])
    m.predict(x, batch_size=32, verbose=0, callbacks=[seen])
    return blas_threads()
if how == "limit":
    with threadpool_limits(limits=1, user_api="blas"):
        after = run()
else:
    after = run()
choices = [c for c in threads._choices.values() if c is not None]
print(json.dumps({"start": start, "seen": sorted(set(seen.seen)), "after": after,
                  "cores": threads._cores(), "timed": len(choices),
                  "decided": sorted({c.best for c in choices if c.best is not None})}))
"""


def _run(units, env=None, how="plain"):
    env = {**{k: v for k, v in os.environ.items()
              if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                           "BLIS_NUM_THREADS", "UNROLLED_BLAS_THREADS")}, **(env or {})}
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(units), how],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_a_model_large_enough_to_split_has_its_steps_timed_and_the_count_put_back():
    r = _run(units=64)
    if r["cores"] < 2 or r["start"] < r["cores"]:
        assert r["timed"] == 0 and r["seen"] == [r["start"]]
        return
    assert r["timed"] == 2                          # training steps and predict steps
    assert set(r["seen"]) <= {1, r["start"]}
    assert set(r["decided"]) <= {1, r["start"]} and r["decided"]
    assert r["after"] == r["start"]


def test_a_product_too_small_to_split_is_left_alone():
    r = _run(units=4)
    assert r["timed"] == 0 and r["seen"] == [r["start"]] and r["after"] == r["start"]


@pytest.mark.parametrize("env", [{"OPENBLAS_NUM_THREADS": "2"}, {"OMP_NUM_THREADS": "2"},
                                 {"UNROLLED_BLAS_THREADS": "off"}])
def test_the_users_environment_turns_the_policy_off(env):
    r = _run(units=64, env=env)
    assert r["timed"] == 0 and r["seen"] == [r["start"]] and r["after"] == r["start"]


def test_a_threadpoolctl_limit_set_by_the_user_is_kept():
    r = _run(units=64, how="limit")
    assert r["seen"] == [1] and r["after"] == 1
    assert not r["decided"]                          # nothing was timed under the user's limit



def test_a_step_much_slower_than_usual_starts_a_timing_at_once():
    choice = Choice(2, clock=Clock())
    _run_steps(choice, {1: 1e-3, 2: 5e-4}, 1 + 2 * SAMPLES)
    assert choice.best == 2
    _run_steps(choice, {1: 1e-3, 2: 5e-4 * 1.5}, 5)     # ordinary noise: kept
    assert choice.best == 2
    _run_steps(choice, {1: 1e-3, 2: 5e-4 * (JUMP + 1)}, 1)   # a core was taken
    assert choice.best is None and choice.period == PERIOD
    _run_steps(choice, {1: 1e-3, 2: 5e-4 * (JUMP + 2)}, 2)   # (now slower than 1 thread)
    assert choice.best == 1
