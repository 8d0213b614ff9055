"""Crash safety and determinism, each checked in real separate processes."""
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from unrolled.layers import Dense, Input, SimpleRNN
from unrolled.models import Model

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")

WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from unrolled.layers import Dense, Input, SimpleRNN
    from unrolled.models import Model
    i = Input((5, 2)); m = Model(i, Dense(1)(SimpleRNN(64)(i)))
    a = [np.full(w.shape, 1.0, w.dtype) for w in m.get_weights()]
    b = [np.full(w.shape, 2.0, w.dtype) for w in m.get_weights()]
    print("ready", flush=True)
    k = 0
    while True:
        m.set_weights(a if k % 2 else b)
        m.save_weights(sys.argv[1])
        k += 1
""")


def _model():
    i = Input((5, 2))
    return Model(i, Dense(1)(SimpleRNN(64)(i)))


def test_sigkill_during_save_weights_never_leaves_a_broken_file(tmp_path):
    path = tmp_path / "ckpt.weights.npz"
    model = _model()
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": SRC}
    for trial in range(12):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not path.exists():
            continue  # killed before the first rename: nothing was ever published
        model.load_weights(path)
        values = {float(np.unique(w)[0]) for w in model.get_weights()}
        assert values in ({1.0}, {2.0}), f"trial {trial}: a mixed or partial file: {values}"
    assert path.exists()


DETERMINISM = textwrap.dedent("""
    import hashlib
    import numpy as np
    from unrolled.layers import Dense, Input, SimpleRNN
    from unrolled.models import Model
    from unrolled.utils import set_random_seed
    set_random_seed(123)
    i = Input((6, 3)); m = Model(i, Dense(2)(SimpleRNN(8, dropout=0.2, recurrent_dropout=0.1)(i)))
    h = hashlib.sha256()
    for w in m.get_weights(): h.update(w.tobytes())
    data = np.random.default_rng(5)
    x, y = data.standard_normal((40, 6, 3)), data.standard_normal((40, 2))
    m.compile(optimizer="adam", loss="mse")
    m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    for w in m.get_weights(): h.update(w.tobytes())
    print(h.hexdigest())
""")


def test_same_seed_gives_bit_identical_weights_across_processes():
    env = {**os.environ, "PYTHONPATH": SRC}
    digests = [subprocess.run([sys.executable, "-c", DETERMINISM], env=env, capture_output=True,
                              text=True, check=True).stdout.strip() for _ in range(2)]
    assert digests[0] == digests[1] and len(digests[0]) == 64
