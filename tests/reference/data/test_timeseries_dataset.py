"""``utils.timeseries_dataset_from_array`` (issue 20.10): the same windows and targets as
Keras's, batch by batch, and a fit on it that equals a Keras fit on Keras's dataset."""
import keras
import numpy as np
import pytest

import unrolled

DATA = np.arange(200, dtype="float32").reshape(100, 2) / 100
TARGETS = np.sin(np.arange(100, dtype="float32"))[:, None]
CASES = [
    dict(sequence_length=5),
    dict(sequence_length=4, sequence_stride=3, sampling_rate=2, batch_size=7),
    dict(sequence_length=6, start_index=10, end_index=80, batch_size=16),
    dict(sequence_length=3, batch_size=None),
]


@pytest.mark.parametrize("with_targets", [True, False])
@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_windows_and_targets_equal_keras(case, with_targets):
    targets = TARGETS if with_targets else None
    want = list(keras.utils.timeseries_dataset_from_array(DATA, targets, **case)
                .as_numpy_iterator())
    got = unrolled.utils.timeseries_dataset_from_array(DATA, targets, **case)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = (g, w) if with_targets else ((g,), (w,))
        for a, b in zip(g, w):
            np.testing.assert_array_equal(a, b)


def test_a_fit_on_it_equals_keras():
    def run(m, start=None):
        ds = m.utils.timeseries_dataset_from_array(DATA, TARGETS, sequence_length=8,
                                                   batch_size=16)
        model = m.Sequential([m.Input((8, 2)), m.layers.LSTM(4), m.layers.Dense(1)])
        model.compile(loss="mse", optimizer=m.optimizers.Adam(0.01))
        if start is not None:
            model.set_weights(start)
        return model.get_weights(), model.fit(ds, epochs=2, verbose=0).history
    start, want = run(keras)
    _, got = run(unrolled, start)
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=2e-5)


def test_shuffled_windows_are_the_same_windows_in_another_order():
    """Keras shuffles again through tf.data buffers, which is not copied: the set is
    compared, not the order."""
    plain = unrolled.utils.timeseries_dataset_from_array(DATA, TARGETS, 5, batch_size=1000)[0]
    mixed = unrolled.utils.timeseries_dataset_from_array(DATA, TARGETS, 5, batch_size=1000,
                                                         shuffle=True, seed=7)[0]
    order = np.argsort(mixed[0][:, 0, 0])
    assert not np.array_equal(mixed[0], plain[0])
    np.testing.assert_array_equal(mixed[0][order], plain[0])
    np.testing.assert_array_equal(mixed[1][order], plain[1])


def test_bad_arguments_as_keras():
    for kwargs in (dict(start_index=200), dict(sampling_rate=0), dict(sequence_stride=100)):
        with pytest.raises(ValueError) as ref:
            keras.utils.timeseries_dataset_from_array(DATA, None, 5, **kwargs)
        with pytest.raises(ValueError) as ours:
            unrolled.utils.timeseries_dataset_from_array(DATA, None, 5, **kwargs)
        name = next(iter(kwargs))
        assert f"`{name}`" in str(ref.value) and f"`{name}`" in str(ours.value)
