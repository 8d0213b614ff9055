"""unrolled.data: windows against keras.utils.timeseries_dataset_from_array, splits in
time, a scaler fitted on the training part only, the vocabulary, the shipped data sets and
every bad input with its message."""
import io

import numpy as np
import pytest

from unrolled.data import (Scaler, Vocabulary, load_co2, load_csv_series, load_inferno,
                           split_in_time, timeseries_windows)


def keras_windows(data, targets, **kwargs):
    """All batches of Keras's dataset concatenated into NumPy arrays."""
    import keras
    ds = keras.utils.timeseries_dataset_from_array(data, targets, batch_size=7, **kwargs)
    batches = list(ds.as_numpy_iterator())
    if targets is None:
        return np.concatenate(batches)
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


# --- windows --------------------------------------------------------------------------------
CASES = [
    dict(sequence_length=10),
    dict(sequence_length=10, sequence_stride=3, sampling_rate=2),          # Keras's example 1
    dict(sequence_length=4, sequence_stride=5),
    dict(sequence_length=6, sampling_rate=3, start_index=7),
    dict(sequence_length=5, sequence_stride=2, start_index=3, end_index=80),
    dict(sequence_length=1),
    dict(sequence_length=99),                                              # one window
]


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("features", [None, 3])
def test_windows_match_keras_without_targets(kwargs, features):
    data = np.arange(99, dtype="float32")
    if features:
        data = np.stack([data, -data, data * 0.5], axis=1)
    ours = timeseries_windows(data, **kwargs)
    np.testing.assert_array_equal(ours, keras_windows(data, None, **kwargs))
    assert ours.shape[1:] == (kwargs["sequence_length"],) + data.shape[1:]


@pytest.mark.parametrize("kwargs", CASES[:5])
def test_windows_match_keras_with_targets(kwargs):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((99, 2)).astype("float32")
    targets = rng.integers(0, 5, size=90)          # shorter than data: Keras stops there too
    x, y = timeseries_windows(data, targets, **kwargs)
    kx, ky = keras_windows(data, targets, **kwargs)
    np.testing.assert_array_equal(x, kx)
    np.testing.assert_array_equal(y, ky)


def test_horizon_one_is_keras_regression_example():
    """Keras's example 2 (targets ``data[10:]``) is ``horizon=1``. Its inputs ``data[:-10]``
    stop 9 windows early; with ``data[:-1]`` Keras gives every window, as ``horizon`` does."""
    data = np.sin(np.arange(60) * 0.3)
    x, y = timeseries_windows(data, sequence_length=10, horizon=1)
    assert x.shape == (50, 10) and y.shape == (50, 1)
    kx, ky = keras_windows(data[:-1], data[10:], sequence_length=10)
    np.testing.assert_array_equal(x, kx)
    np.testing.assert_array_equal(y[:, 0], ky)
    kx, ky = keras_windows(data[:-10], data[10:], sequence_length=10)   # the docstring's idiom
    np.testing.assert_array_equal(x[:len(kx)], kx)
    np.testing.assert_array_equal(y[:len(ky), 0], ky)


def test_horizon_gives_the_next_values_of_each_window():
    data = np.arange(30) * 10
    x, y = timeseries_windows(data, sequence_length=4, sequence_stride=3, sampling_rate=2, horizon=3)
    for window, ahead in zip(x, y):
        last = window[-1] // 10
        np.testing.assert_array_equal(ahead, [(last + 1) * 10, (last + 2) * 10, (last + 3) * 10])
    assert y[-1, -1] <= data[-1] and len(x) == 7


def test_window_longer_than_series_is_a_clear_error():
    with pytest.raises(ValueError, match=r"No window fits: sequence_length=12 .* needs 12 steps, "
                                         r"but the series has 10 steps"):
        timeseries_windows(np.arange(10), sequence_length=12)
    with pytest.raises(ValueError, match=r"needs 11 steps \(10 for the window, 1 ahead\)"):
        timeseries_windows(np.arange(10), sequence_length=10, horizon=1)
    with pytest.raises(ValueError, match="No window fits"):
        timeseries_windows(np.arange(10), sequence_length=4, sampling_rate=4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sequence_length=0), "`sequence_length` must be a positive integer"),
    (dict(sequence_length=2.5), "`sequence_length` must be a positive integer"),
    (dict(sequence_length=3, sequence_stride=0), "`sequence_stride` must be a positive integer"),
    (dict(sequence_length=3, sampling_rate=-1), "`sampling_rate` must be a positive integer"),
    (dict(sequence_length=3, horizon=0), "`horizon` must be a positive integer"),
    (dict(sequence_length=3, start_index=20), r"`start_index` must be in \[0, 20\)"),
    (dict(sequence_length=3, start_index=5, end_index=5), r"`end_index` must be in \(5, 20\]"),
    (dict(sequence_length=3, targets=np.arange(20), horizon=1), "either `targets` or `horizon`"),
])
def test_window_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timeseries_windows(np.arange(20), **kwargs)


def test_windows_need_sequence_length():
    with pytest.raises(TypeError, match="needs `sequence_length`"):
        timeseries_windows(np.arange(20))


# --- splits and scaling ------------------------------------------------------------------------
def test_split_in_time_keeps_order_and_sizes():
    data = np.arange(100)
    train, val, test = split_in_time(data, train=0.7, validation=0.15)
    assert (len(train), len(val), len(test)) == (70, 15, 15)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), data)
    train, val, test = split_in_time(data, train=60, validation=0)
    assert (len(train), len(val), len(test)) == (60, 0, 40)


def test_split_context_prepends_the_previous_steps():
    data = np.arange(100)
    train, val, test = split_in_time(data, train=0.7, validation=0.15, context=5)
    np.testing.assert_array_equal(val, np.arange(65, 85))
    np.testing.assert_array_equal(test, np.arange(80, 100))
    # windows of 5 over the test part predict exactly the test steps 85..99
    _, y = timeseries_windows(test, sequence_length=5, horizon=1)
    np.testing.assert_array_equal(y[:, 0], np.arange(85, 100))


@pytest.mark.parametrize("kwargs, message", [
    (dict(train=0.9, validation=0.1), "leaves 90 training and 0 test steps"),
    (dict(train=0, validation=0.1), "leaves 0 training"),
    (dict(train=1.5), r"`train` as a fraction must be in \[0, 1\]"),
    (dict(train=0.5, validation=-3), "`validation` must be a fraction"),
    (dict(train=0.5, context=80), r"`context` must be in \[0, 50\]"),
])
def test_split_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        split_in_time(np.arange(100), **kwargs)


def test_scaler_is_fitted_on_the_training_part_only():
    series = np.concatenate([np.linspace(0, 10, 70), np.linspace(50, 60, 30)])
    train, _, test = split_in_time(series, train=0.7, validation=0)
    scaler = Scaler().fit(train)
    assert scaler.offset_ == pytest.approx(train.mean()) and scaler.offset_ != pytest.approx(series.mean())
    assert scaler.scale_ == pytest.approx(train.std())
    np.testing.assert_allclose(scaler.transform(test), (test - train.mean()) / train.std())
    assert scaler.transform(test).min() > 3       # the future is far outside: no leak hides it
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(test)), test)


def test_minmax_scaler_per_feature():
    rng = np.random.default_rng(1)
    train = rng.uniform(-3, 7, size=(50, 3))
    train[:, 2] = 4.0                              # a constant feature
    scaler = Scaler("minmax", feature_range=(-1, 1)).fit(train)
    z = scaler.transform(train)
    np.testing.assert_allclose(z[:, :2].min(axis=0), -1)
    np.testing.assert_allclose(z[:, :2].max(axis=0), 1)
    np.testing.assert_allclose(z[:, 2], -1)        # scale 1: maps to the range's low end
    windows = timeseries_windows(train, sequence_length=5)            # (46, 5, 3)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(windows)), windows)


def test_scaler_refuses_bad_use():
    scaler = Scaler()
    with pytest.raises(RuntimeError, match=r"not fitted yet: call scaler.fit\(train\)"):
        scaler.transform(np.arange(3.0))
    with pytest.raises(RuntimeError, match="before scaler.inverse_transform"):
        scaler.inverse_transform(np.arange(3.0))
    with pytest.raises(ValueError, match="NaN or Inf"):
        scaler.fit(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="fitted on 2 features"):
        Scaler().fit(np.ones((4, 2))).transform(np.ones((4, 3)))
    with pytest.raises(ValueError, match="'standard' or 'minmax'"):
        Scaler("robust")
    with pytest.raises(ValueError, match="low < high"):
        Scaler("minmax", feature_range=(1, 0))


# --- vocabulary --------------------------------------------------------------------------------
def test_vocabulary_round_trip_on_the_inferno():
    text = load_inferno()
    vocab = Vocabulary(text)
    assert vocab.chars == sorted(set(text)) and vocab.size == len(set(text)) == len(vocab)
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.decode(vocab.encode("Nel mezzo")) == "Nel mezzo"


def test_unknown_characters_are_named():
    vocab = Vocabulary("abc ")
    with pytest.raises(ValueError, match=r"2 character\(s\) outside the vocabulary: 'ß' \(U\+00DF\), "
                                         r"'€' \(U\+20AC\)\. .*oov='skip'"):
        vocab.encode("abß c€ß")
    assert vocab.decode(Vocabulary("abc ", oov="skip").encode("abß c€")) == "ab c"
    unk = Vocabulary("abc ", oov="unknown")
    ids = unk.encode("abß")
    assert unk.chars == ["\ufffd", " ", "a", "b", "c"] and ids.tolist() == [2, 3, 0]
    assert unk.decode(ids) == "ab\ufffd"


def test_vocabulary_errors():
    vocab = Vocabulary("ab")
    with pytest.raises(ValueError, match=r"Ids \[2, 7\] are outside this vocabulary's range \[0, 2\)"):
        vocab.decode([0, 2, 7])
    with pytest.raises(ValueError, match="1-D sequence of integer ids"):
        vocab.decode(np.array([0.5]))
    with pytest.raises(ValueError, match="oov must be one of"):
        Vocabulary("ab", oov="ignore")
    with pytest.raises(ValueError, match="non-empty text"):
        Vocabulary("")
    with pytest.raises(TypeError, match="encode expects a str"):
        vocab.encode(["a"])


# --- CSV and the shipped data ------------------------------------------------------------------
CSV = "# a comment\nmonth,value,other\n2000-01,1.5,x\n2000-02,2.5,y\n2000-03,{v},z\n"


def test_load_csv_series_by_name_or_position(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(CSV.format(v="3.5"))
    np.testing.assert_array_equal(load_csv_series(path, "value"), [1.5, 2.5, 3.5])
    index, values = load_csv_series(str(path), 1, index="month")
    assert index.tolist() == ["2000-01", "2000-02", "2000-03"] and values[-1] == 3.5
    np.testing.assert_array_equal(load_csv_series(io.StringIO(CSV.format(v="4")), "value"),
                                  [1.5, 2.5, 4.0])


@pytest.mark.parametrize("cell", ["", "NA", "nan", " "])
def test_missing_value_names_the_row(tmp_path, cell):
    path = tmp_path / "gap.csv"
    path.write_text(CSV.format(v=cell))
    with pytest.raises(ValueError, match=r"gap.csv, line 5 \(row '2000-03'\): missing value in "
                                         r"column 'value'\. Fill or remove the gap"):
        load_csv_series(path, "value")


def test_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(CSV.format(v="3.5.1"))
    with pytest.raises(ValueError, match=r"line 5 \(row '2000-03'\): '3.5.1' in column 'value' is not a number"):
        load_csv_series(path, "value")
    with pytest.raises(ValueError, match=r"line 3 \(row '2000-01'\): 'x' in column 'other' is not a number"):
        load_csv_series(path, "other")
    with pytest.raises(ValueError, match=r"no column named 'price'; the header has \['month', 'value', 'other'\]"):
        load_csv_series(path, "price")
    with pytest.raises(ValueError, match="column position 9 is out of range"):
        load_csv_series(path, 9)
    path.write_text("# only comments\n")
    with pytest.raises(ValueError, match="no header line and no data"):
        load_csv_series(path, 0)


def test_shipped_co2_series():
    months, ppm = load_co2()
    assert len(months) == len(ppm) == 444
    assert (months[0], months[-1]) == ("1965-01", "2001-12")
    assert np.all(np.isfinite(ppm)) and 315 < ppm.min() < ppm.max() < 375
    assert ppm[-12:].mean() - ppm[:12].mean() > 45            # the rise over 37 years
    years = np.array([m[:4] for m in months])
    assert all((years == str(y)).sum() == 12 for y in range(1965, 2002))


def test_shipped_inferno_text():
    raw = load_inferno(raw=True)
    assert raw.startswith("Inferno • Canto I\n\n\n  Nel mezzo del cammin di nostra vita\n")
    assert raw.endswith("e caddi come l’uom cui sonno piglia.\n")
    text = load_inferno()
    verses = [line for line in text.split("\n") if line and not line.startswith("Inferno")]
    assert len(verses) == 136 + 142 + 136                       # Cantos I, II and III
    assert "Lasciate ogne speranza, voi ch’intrate”." in verses
