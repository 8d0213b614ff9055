"""Compiled inference in row groups on all cores (``fast.threads.split_rows``): the same
outputs and states as one group, within float32 rounding, for every option of the loop."""
import numpy as np
import pytest

from unrolled.fast import kernels, threads
from unrolled.layers import GRU, LSTM, SimpleRNN

LAYERS = {
    "lstm": lambda: LSTM(96, return_sequences=True, return_state=True),
    "lstm-backwards-last": lambda: LSTM(96, go_backwards=True, return_state=True),
    "gru": lambda: GRU(96, return_sequences=True, return_state=True),
    "gru-before": lambda: GRU(96, reset_after=False, go_backwards=True, return_state=True),
    "simple": lambda: SimpleRNN(96, return_sequences=True, return_state=True),
    "simple-relu-last": lambda: SimpleRNN(96, activation="relu", return_state=True),
}


@pytest.fixture(autouse=True)
def compiled_on():
    """Row groups are a way of running the compiled loops: on, even in the NumPy-path run."""
    before = kernels._enabled
    kernels.set_enabled(True)
    yield
    kernels.set_enabled(before)


@pytest.fixture
def two_groups(monkeypatch):
    """The current step may use two threads, and groups are split at any size."""
    monkeypatch.setattr(threads, "_parts", 2)
    monkeypatch.setattr(threads, "SPLIT_MIN_MACS", 1)
    calls = []
    real = threads.run_parallel
    from unrolled.fast import planning                        # (where the loop calls it)
    monkeypatch.setattr(planning, "run_parallel", lambda tasks: calls.append(len(tasks)) or
                        real(tasks))
    return calls


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_row_groups_give_the_outputs_of_one_group(kind, masked, two_groups, monkeypatch):
    r = np.random.default_rng(3)
    x = r.standard_normal((37, 9, 5)).astype(np.float32)      # odd rows: unequal groups
    layer = LAYERS[kind]()
    layer(x)
    for w in layer.weights:             # weights that differ per unit, at the scale of
        w.assign(r.standard_normal(w.shape).astype(np.float32) / np.sqrt(96))   # an init
    init = [r.standard_normal((37, 96)).astype(np.float32) for _ in layer.cell.state_size]
    mask = r.random((37, 9)) > 0.3 if masked else None
    before = [s.copy() for s in init]
    two_groups.clear()
    grouped = layer.call(x, mask=mask, initial_state=init)
    assert two_groups == [2]
    monkeypatch.setattr(threads, "_parts", 1)
    single = layer.call(x, mask=mask, initial_state=init)
    assert two_groups == [2]
    for a, b in zip(grouped, single):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6)
    for s, s0 in zip(init, before):
        np.testing.assert_array_equal(s, s0)                  # initial states untouched


def test_stateful_layers_keep_their_states_across_grouped_calls(two_groups, monkeypatch):
    r = np.random.default_rng(4)
    x = r.standard_normal((40, 6, 3)).astype(np.float32)
    grouped, single = LSTM(64, stateful=True), LSTM(64, stateful=True)
    grouped(x)
    single(x)
    single.set_weights(grouped.get_weights())
    grouped.reset_state()
    single.reset_state()
    two_groups.clear()
    for _ in range(3):
        a = grouped.call(x)
        monkeypatch.setattr(threads, "_parts", 1)
        b = single.call(x)
        monkeypatch.setattr(threads, "_parts", 2)
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6)
    for s, t in zip(grouped.states, single.states):
        np.testing.assert_allclose(s, t, rtol=2e-6, atol=1e-6)
    assert two_groups == [2, 2, 2]


def test_split_rows_only_splits_large_enough_groups(monkeypatch):
    monkeypatch.setattr(threads, "_parts", 1)
    assert threads.split_rows(4096, 10 ** 6) == [(0, 4096)]          # one thread chosen
    monkeypatch.setattr(threads, "_parts", 2)
    assert threads.split_rows(256, 256 * 1024) == [(0, 128), (128, 256)]
    assert threads.split_rows(32, 64 * 256) == [(0, 32)]             # too little work
    assert threads.split_rows(20, 10 ** 7) == [(0, 20)]              # too few rows a group
    monkeypatch.setattr(threads, "_parts", 3)
    groups = threads.split_rows(100, 10 ** 6)
    assert groups == [(0, 33), (33, 66), (66, 100)]


def test_a_failing_group_raises_and_leaves_blas_threads_as_they_were():
    controllers = threads._numpy_blas()
    before = [c.num_threads for c in controllers]

    def fail():
        raise ValueError("group 2 failed")
    with pytest.raises(ValueError, match="group 2 failed"):
        threads.run_parallel([lambda: 1, fail])
    assert [c.num_threads for c in controllers] == before
    assert threads.run_parallel([lambda: 1, lambda: 2]) == [1, 2]
