"""0 samples in, 0 samples out (issue 24.10): batch scoring (a filtered frame, an empty dask
partition) hands models empty batches; ``predict``, ``predict_on_batch`` and ``model(x)``
return arrays of the outputs' shapes with 0 rows, as NumPy, PyTorch and Keras's
``Model.__call__`` do, and ``evaluate`` warns and returns NaN (a mean over no samples)."""
import warnings

import numpy as np
import pytest

from unrolled import layers as L
from unrolled.models import Model, Sequential


def _recurrent_models():
    yield "simple_rnn", Sequential([L.Input((7, 3)), L.SimpleRNN(5), L.Dense(2)])
    yield "lstm_seq_td", Sequential([L.Input((7, 3)), L.LSTM(5, return_sequences=True),
                                     L.TimeDistributed(L.Dense(4))])
    yield "gru_masked", Sequential([L.Input((7, 3)), L.Masking(0.0), L.GRU(5, reset_after=False),
                                    L.Dense(2)])
    yield "bidirectional", Sequential([L.Input((7, 3)), L.Bidirectional(L.LSTM(4)),
                                       L.Dense(3)])
    yield "backwards_unrolled", Sequential([L.Input((7, 3)),
                                            L.SimpleRNN(5, go_backwards=True, unroll=True,
                                                        activation="relu"),
                                            L.Dense(2)])
    yield "embedding_flatten", Sequential([L.Input((7,), dtype="int32"),
                                           L.Embedding(10, 4, mask_zero=True),
                                           L.LSTM(5, return_sequences=True), L.Flatten(),
                                           L.Dense(2)])
    a, b = L.Input((7, 3)), L.Input((4,))
    h = L.GRU(6)(a)
    yield "two_inputs", Model([a, b], L.Dense(2)(L.Concatenate()([h, L.Dense(6)(b)])))


def _inputs(model, n, rng):
    out = []
    for inp in model.inputs:
        shape = (n,) + tuple(inp.shape[1:])
        if "int" in str(inp.dtype):
            out.append(rng.integers(0, 10, shape).astype("int32"))
        else:
            out.append(rng.normal(size=shape).astype("float32"))
    return out if len(out) > 1 else out[0]


@pytest.mark.parametrize("name,model", list(_recurrent_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_empty_batches_give_empty_outputs_of_the_right_shape(name, model):
    rng = np.random.default_rng(0)
    one = np.asarray(model.predict(_inputs(model, 3, rng), verbose=0))
    empty = _inputs(model, 0, rng)
    for how, y in [("predict", model.predict(empty, verbose=0)),
                   ("predict batch_size=2", model.predict(empty, batch_size=2, verbose=0)),
                   ("predict_on_batch", model.predict_on_batch(empty)),
                   ("__call__", model(empty))]:
        y = np.asarray(y)
        assert y.shape == (0,) + one.shape[1:], (how, y.shape, one.shape)
        assert y.dtype == one.dtype, how


def test_a_layer_called_on_an_empty_batch_returns_empty_outputs_and_states():
    layer = L.LSTM(5, return_sequences=True, return_state=True)
    y, h, c = layer(np.zeros((0, 7, 3), np.float32))
    assert (np.shape(y), np.shape(h), np.shape(c)) == ((0, 7, 5), (0, 5), (0, 5))


def test_evaluate_on_no_samples_warns_and_gives_nan_in_the_usual_structure():
    model = Sequential([L.Input((7, 3)), L.GRU(5), L.Dense(2)])
    model.compile(loss="mse", optimizer="adam", metrics=["mae"])
    x, y = np.zeros((0, 7, 3), np.float32), np.zeros((0, 2), np.float32)
    with pytest.warns(UserWarning, match="0 samples"):
        result = model.evaluate(x, y, verbose=0)
    assert len(result) == 2 and all(np.isnan(v) for v in result)
    with pytest.warns(UserWarning, match="0 samples"):
        logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "mae"} and all(np.isnan(v) for v in logs.values())
    # fit has nothing to learn from: it still refuses, naming the problem.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="empty batch"):
            model.fit(x, y, verbose=0)
