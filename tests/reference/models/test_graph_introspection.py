"""Graph introspection as Keras's seq2seq example uses it (issue 20.8): ``model.input``,
``model.layers[i].output``, ``get_layer``, a layer called again on new inputs, and
inference models built from those pieces, with Keras's numbers."""
import keras
import numpy as np
import pytest

import unrolled

TOKENS_IN, TOKENS_OUT, LATENT = 7, 6, 5


def seq2seq(keras):
    """Keras's lstm_seq2seq example: the training model, then the inference models
    rebuilt from the trained model's tensors and layers (the example's own lines)."""
    encoder_inputs = keras.Input(shape=(None, TOKENS_IN))
    encoder = keras.layers.LSTM(LATENT, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, TOKENS_OUT))
    decoder_lstm = keras.layers.LSTM(LATENT, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(TOKENS_OUT, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)

    encoder_inputs = model.input[0]
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output
    encoder_model = keras.Model(encoder_inputs, [state_h_enc, state_c_enc])
    decoder_inputs = model.input[1]
    decoder_state_input_h = keras.Input(shape=(LATENT,))
    decoder_state_input_c = keras.Input(shape=(LATENT,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(
        decoder_inputs, initial_state=decoder_states_inputs)
    decoder_dense = model.layers[4]
    decoder_outputs = decoder_dense(decoder_outputs)
    decoder_model = keras.Model([decoder_inputs] + decoder_states_inputs,
                                [decoder_outputs, state_h_dec, state_c_dec])
    return model, encoder_model, decoder_model


def test_the_seq2seq_inference_recipe_runs_and_equals_keras(rng):
    theirs = seq2seq(keras)
    ours = seq2seq(unrolled)
    ours[0].set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32")
                         for w in ours[0].get_weights()])
    theirs[0].set_weights(ours[0].get_weights())
    assert [type(layer).__name__ for layer in ours[0].layers] == \
           [type(layer).__name__ for layer in theirs[0].layers]
    x = rng.standard_normal((3, 4, TOKENS_IN)).astype("float32")
    y = rng.standard_normal((3, 1, TOKENS_OUT)).astype("float32")
    np.testing.assert_allclose(ours[0].predict([x, y], verbose=0),
                               theirs[0].predict([x, y], verbose=0), atol=1e-6, rtol=1e-5)
    h, c = ours[1].predict(x, verbose=0)
    kh, kc = theirs[1].predict(x, verbose=0)
    np.testing.assert_allclose(h, kh, atol=1e-6, rtol=1e-5)
    got = ours[2].predict([y, h, c], verbose=0)
    want = theirs[2].predict([y, kh, kc], verbose=0)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-6, rtol=1e-5)


def test_inputs_outputs_and_shapes_as_keras_gives_them():
    def build(m):
        a = m.Input((5, 3), name="a")
        b = m.Input((4,), name="b")
        h = m.layers.GRU(4, name="gru")(a)
        out = m.layers.Dense(2, name="out")(m.layers.Concatenate(name="cat")([h, b]))
        return m.Model([a, b], [out]), m.Model(a, h)
    for ours, theirs in zip(build(unrolled), build(keras)):
        assert ours.input_shape == theirs.input_shape
        assert ours.output_shape == theirs.output_shape
        assert isinstance(ours.input, list) == isinstance(theirs.input, list)
        assert isinstance(ours.output, list) == isinstance(theirs.output, list)
        for name in ("gru",):
            assert tuple(ours.get_layer(name).output.shape) == \
                   tuple(theirs.get_layer(name).output.shape)
        assert ours.get_layer(index=0).name == theirs.get_layer(index=0).name
    with pytest.raises(ValueError, match="No such layer: nope"):
        build(unrolled)[0].get_layer("nope")
    with pytest.raises(AttributeError, match="has never been called"):
        unrolled.layers.Dense(2).output
    with pytest.raises(AttributeError, match="has no defined input yet"):
        unrolled.Sequential([unrolled.layers.Dense(2)]).input
