"""ONNX export: onnxruntime runs every exported model with outputs equal to predict (1e-5)."""
import numpy as np
import onnxruntime as ort
import pytest

from unrolled.interop.onnx_export import to_onnx
from unrolled.layers import (GRU, LSTM, RNN, Activation, Add, Bidirectional, Concatenate, Dense,
                             Dropout, Embedding, Flatten, GRUCell, Input, LSTMCell, Masking,
                             RepeatVector, Reshape, SimpleRNN, SimpleRNNCell, StackedRNNCells,
                             TimeDistributed)
from unrolled.models import Model, Sequential

TOL = 1e-5
B, T, F = 3, 6, 4


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype("float32")
                       for w in model.get_weights()])
    return model


def seq(*layers):
    return Sequential([Input((T, F))] + list(layers))


MODELS = {
    "simple_rnn": lambda: seq(SimpleRNN(5)),
    "simple_rnn_relu_seq_back": lambda: seq(SimpleRNN(5, activation="relu", return_sequences=True,
                                                      go_backwards=True)),
    "simple_rnn_no_bias_back": lambda: seq(SimpleRNN(3, use_bias=False, go_backwards=True)),
    "lstm": lambda: seq(LSTM(5)),
    "lstm_seq_back": lambda: seq(LSTM(4, return_sequences=True, go_backwards=True)),
    "lstm_no_bias_hard_sigmoid": lambda: seq(LSTM(4, use_bias=False, recurrent_activation="hard_sigmoid")),
    "hard_sigmoid_keras2": lambda: seq(                  # ONNX HardSigmoid with alpha 0.2
        LSTM(4, recurrent_activation="hard_sigmoid_keras2", return_sequences=True),
        GRU(3, recurrent_activation="hard_sigmoid_keras2", return_sequences=True),
        Bidirectional(GRU(2, recurrent_activation="hard_sigmoid_keras2", reset_after=False)),
        Dense(3, activation="hard_sigmoid_keras2")),
    "gru": lambda: seq(GRU(5)),
    "gru_reset_before": lambda: seq(GRU(4, reset_after=False, return_sequences=True)),
    "gru_back_no_bias": lambda: seq(GRU(4, go_backwards=True, use_bias=False)),
    "rnn_cells": lambda: seq(RNN(LSTMCell(3), return_sequences=True), RNN(GRUCell(2))),
    "bi_concat_seq": lambda: seq(Bidirectional(LSTM(3, return_sequences=True))),
    "bi_sum": lambda: seq(Bidirectional(GRU(3), merge_mode="sum")),
    "bi_ave_seq": lambda: seq(Bidirectional(SimpleRNN(3, return_sequences=True), merge_mode="ave")),
    "bi_mul": lambda: seq(Bidirectional(GRU(3, reset_after=False), merge_mode="mul")),
    "bi_concat_last": lambda: seq(Bidirectional(LSTM(2))),
    "dense_2d_3d": lambda: seq(Dense(3, activation="tanh"), TimeDistributed(Dense(2)), Flatten(),
                               Dense(4, activation="softmax")),
    "dense_activations": lambda: seq(Dense(3, activation="sigmoid", use_bias=False),
                                     Activation("relu"), Dense(3, activation="hard_sigmoid"),
                                     Activation("linear")),
    "stack": lambda: seq(LSTM(4, return_sequences=True), Dropout(0.5), GRU(3, return_sequences=True),
                         SimpleRNN(2), RepeatVector(3), Reshape((2, 3)), Dense(1)),
}


def embedding_model():
    ids = Input((T,), dtype="int64")
    x = Embedding(10, 4)(ids)
    return Model(ids, Dense(2)(Bidirectional(GRU(3))(x)))


def merge_model():
    i = Input((T, F))
    a = LSTM(3, return_sequences=True)(i)
    b = GRU(3, return_sequences=True)(i)
    x = Concatenate()([a, b])
    return Model(i, [Add()([x, Dense(6)(i)]), SimpleRNN(2)(x)])


MODELS["embedding"] = embedding_model
MODELS["merge_two_outputs"] = merge_model


def run_onnx(path, model, xs):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {inp.name: x for inp, x in zip(sess.get_inputs(), xs)}
    return sess.run(None, feeds)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnxruntime_matches_predict(tmp_path, name):
    model = randomize(MODELS[name]())
    rng = np.random.default_rng(3)
    if name == "embedding":
        xs = [rng.integers(0, 10, size=(B, T)).astype("int64")]
    else:
        xs = [rng.standard_normal((B, T, F)).astype("float32")]
    ref = model.predict(xs[0], verbose=0)
    ref = ref if isinstance(ref, list) else [ref]
    to_onnx(model, tmp_path / "m.onnx")
    got = run_onnx(tmp_path / "m.onnx", model, xs)
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        assert a.shape == b.shape
        assert np.abs(a - b).max() < TOL
    xs_other = [np.concatenate([xs[0]] * 2)]                 # another batch size: dynamic axis
    assert run_onnx(tmp_path / "m.onnx", model, xs_other)[0].shape[0] == 2 * B


@pytest.mark.parametrize("build,match", [
    (lambda: seq(Masking(), LSTM(2)), "Masking"),
    (lambda: seq(LSTM(2, return_state=True)), "several outputs|return_state"),
    (lambda: seq(RNN(StackedRNNCells([SimpleRNNCell(2), SimpleRNNCell(2)]))), "StackedRNNCells"),
    (lambda: seq(Bidirectional(LSTM(2), merge_mode=None)), "several outputs|merge_mode=None"),
    (lambda: Sequential([Input((T,), dtype="int64"), Embedding(5, 2, mask_zero=True), GRU(2)]), "mask"),
])
def test_refused_with_the_layer_named(tmp_path, build, match):
    with pytest.raises(ValueError, match=match):
        to_onnx(build(), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
