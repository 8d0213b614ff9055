"""The compiled kernels are compiled once per machine, not once per process (issue 23, item 1).

Each case runs fresh processes against a fresh numba cache directory (``NUMBA_CACHE_DIR``)
and reads numba's own counters: the first process compiles and says so on stderr, the next
loads every kernel it calls from the cache and compiles nothing. Times are not asserted.
"""
import json
import os
import subprocess
import sys

import numba  # noqa: F401  (a test extra: its compile cache is what is tested)

_PROGRAM = r"""
import json, sys
import numpy as np
from unrolled import layers as L
from unrolled.fast import kernels
from unrolled.models import Sequential
m = Sequential([L.Input((10, 3)), L.LSTM(8), L.Dense(2)])
x = np.linspace(-1, 1, 120, dtype=np.float32).reshape(4, 10, 3)
m.set_weights([np.sin(np.arange(w.size, dtype=np.float32) + 1).reshape(w.shape) * 0.3
               for w in m.get_weights()])
y = m.predict(x, verbose=0)
if sys.argv[1] == "fit":
    m.compile(loss="mse", optimizer="adam")
    m.fit(x, np.ones((4, 2), np.float32), epochs=1, verbose=0)
table = kernels._load()
hits = sum(sum(f.stats.cache_hits.values()) for f in table.values())
misses = sum(sum(f.stats.cache_misses.values()) for f in table.values())
print(json.dumps({"hits": hits, "misses": misses, "y": y.tolist()}))
"""


def _run(cache_dir, what="fit"):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), UNROLLED_COMPILED="1")
    run = subprocess.run([sys.executable, "-c", _PROGRAM, what], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1]), run.stderr


def _warm(cache_dir, part):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), UNROLLED_COMPILED="1")
    run = subprocess.run([sys.executable, "-m", "unrolled.fast.warm", "--part", part], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return run.stderr


def test_warming_compiles_once_the_next_process_compiles_nothing_and_a_changed_digest_again(
        tmp_path):
    """One test, not several, so that the first compile is paid once per suite run.
    ``python -m unrolled.fast.warm`` (here its LSTM share) compiles and says so; a process
    that then predicts and fits an LSTM loads every kernel from the cache. numba keys its
    cache by each file's time stamp, not by the files a kernel calls into: the digest of the
    fast package decides, and a stale one (here: written by hand) drops the cache, so an
    edited steps.py cannot leave old code inside cached sequence loops."""
    from unrolled.fast import warm
    assert warm.CELLS[1::4] == ("LSTM",)
    assert "compiling the fast kernels" in _warm(tmp_path, "1/4")
    second, err2 = _run(tmp_path)
    assert second["misses"] == 0, "the process after warming compiled again"
    assert second["hits"] > 0
    assert "compiling" not in err2
    stamps = list(tmp_path.rglob("unrolled-fast.stamp"))
    assert len(stamps) == 1
    stamps[0].write_text("0" * 64 + "\n")
    again, err = _run(tmp_path, "predict")       # (inference alone: fewer kernels to compile)
    assert again["misses"] > 0 and "compiling the fast kernels" in err
    assert again["y"] == second["y"]            # compiled here or loaded: the same bits


def test_warm_refuses_a_part_outside_its_shares():
    run = subprocess.run([sys.executable, "-m", "unrolled.fast.warm", "--part", "2/2"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--part expects I/N" in run.stderr
