"""More of Keras's recurrent example scripts (issue 20: "at least 8 Keras example scripts,
each run in both frameworks with only the imports switched"), written as keras-io and
the Keras 2 ``examples/`` folder write them, as functions ``script(keras, data,
weights=None)`` that use ``keras.`` names only. Each runs once with real Keras and once
with ``unrolled`` passed as ``keras``, from the Keras run's starting weights, on small
synthetic data of the example's shapes (``shuffle=False``, few epochs, small layers), and
must give Keras's numbers: histories, predictions, decoded strings, inference models.
Tolerances: float32 training over a few epochs, rel 2e-5 on losses and metrics."""
import keras as real_keras
import numpy as np
import pytest

import unrolled

HIST_RTOL, PRED_RTOL, PRED_ATOL = 2e-5, 1e-4, 1e-5


def _same_history(got, want):
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=HIST_RTOL, atol=1e-6,
                                   err_msg=key)


def _numpy(x):
    return np.asarray(x)


# --- keras-io examples/nlp/addition_rnn.py ----------------------------------------------------
class CharacterTable:
    """The example's one-hot codec for the characters of the questions and answers."""

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        self.char_indices = {c: i for i, c in enumerate(self.chars)}
        self.indices_char = {i: c for i, c in enumerate(self.chars)}

    def encode(self, C, num_rows):
        x = np.zeros((num_rows, len(self.chars)))
        for i, c in enumerate(C):
            x[i, self.char_indices[c]] = 1
        return x

    def decode(self, x, calc_argmax=True):
        if calc_argmax:
            x = x.argmax(axis=-1)
        return "".join(self.indices_char[i] for i in x)


def addition_rnn(keras, data, weights=None):
    """An LSTM encoder, RepeatVector, an LSTM decoder returning sequences, a softmax Dense
    over the characters; trained one epoch at a time in a loop, each epoch followed by
    decoding a few validation questions, as the example does. ``data["keras2"]``: the
    Keras 2 ``examples/addition_rnn.py`` head, ``TimeDistributed(Dense)`` then
    ``Activation("softmax")``."""
    DIGITS, MAXLEN, ctable = data["digits"], data["maxlen"], data["ctable"]
    x_train, y_train, x_val, y_val = data["x_train"], data["y_train"], data["x_val"], data["y_val"]
    layers = keras.layers
    num_layers = 1
    model = keras.Sequential()
    model.add(layers.Input((MAXLEN, len(ctable.chars))))
    model.add(layers.LSTM(16))
    model.add(layers.RepeatVector(DIGITS + 1))
    for _ in range(num_layers):
        model.add(layers.LSTM(16, return_sequences=True))
    if data.get("keras2"):
        model.add(layers.TimeDistributed(layers.Dense(len(ctable.chars))))
        model.add(layers.Activation("softmax"))
    else:
        model.add(layers.Dense(len(ctable.chars), activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.summary()
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    histories, guesses, pick = [], [], np.random.RandomState(7)
    for epoch in range(1, 3):
        h = model.fit(x_train, y_train, batch_size=32, epochs=1, shuffle=False, verbose=0,
                      validation_data=(x_val, y_val))
        histories.append(h.history)
        for i in range(3):
            ind = pick.randint(0, len(x_val))
            rowx = x_val[np.array([ind])]
            preds = np.argmax(model.predict(rowx, verbose=0), axis=-1)
            guesses.append(ctable.decode(preds[0], calc_argmax=False))
    return start, histories, guesses, model.predict(x_val, verbose=0)


def _addition_data():
    DIGITS, MAXLEN = 2, 2 + 1 + 2
    ctable = CharacterTable("0123456789+ ")
    rng = np.random.default_rng(20)
    questions, expected, seen = [], [], set()
    while len(questions) < 96:
        a, b = (int(v) for v in rng.integers(0, 10 ** DIGITS, size=2))
        key = tuple(sorted((a, b)))
        if key in seen:
            continue
        seen.add(key)
        q = f"{a}+{b}"
        questions.append((q + " " * (MAXLEN - len(q)))[::-1])       # the example reverses
        ans = str(a + b)
        expected.append(ans + " " * (DIGITS + 1 - len(ans)))
    x = np.zeros((len(questions), MAXLEN, len(ctable.chars)), dtype=bool)
    y = np.zeros((len(questions), DIGITS + 1, len(ctable.chars)), dtype=bool)
    for i, sentence in enumerate(questions):
        x[i] = ctable.encode(sentence, MAXLEN)
    for i, sentence in enumerate(expected):
        y[i] = ctable.encode(sentence, DIGITS + 1)
    split_at = len(x) - len(x) // 4
    return dict(digits=DIGITS, maxlen=MAXLEN, ctable=ctable, x_train=x[:split_at],
                y_train=y[:split_at], x_val=x[split_at:], y_val=y[split_at:])


@pytest.mark.parametrize("keras2", [False, True], ids=["keras_io", "keras2_time_distributed"])
def test_addition_rnn_runs_with_only_the_import_switched(keras2):
    data = _addition_data()
    data["keras2"] = keras2
    start, want_hist, want_guess, want_pred = addition_rnn(real_keras, data)
    _, hist, guess, pred = addition_rnn(unrolled, data, weights=start)
    assert len(hist) == len(want_hist) == 2
    for h, w in zip(hist, want_hist):
        _same_history(h, w)
    assert guess == want_guess
    np.testing.assert_allclose(pred, want_pred, rtol=PRED_RTOL, atol=PRED_ATOL)


# --- keras-io examples/nlp/lstm_seq2seq.py ----------------------------------------------------
def lstm_seq2seq(keras, data, weights=None):
    """Character-level translation: an encoder LSTM whose states start a decoder LSTM,
    trained with teacher forcing, saved as ``s2s_model.keras``, reloaded, and turned into
    an encoder model and a one-step decoder model built from the reloaded model's layers,
    which decode the first sequences greedily."""
    num_encoder_tokens, num_decoder_tokens = data["num_encoder_tokens"], data["num_decoder_tokens"]
    latent_dim = 16
    encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
    encoder = keras.layers.LSTM(latent_dim, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
    decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    history = model.fit([data["encoder_input_data"], data["decoder_input_data"]],
                        data["decoder_target_data"], batch_size=16, epochs=2,
                        validation_split=0.2, shuffle=False, verbose=0)
    path = str(data["dir"] / "s2s_model.keras")
    model.save(path)

    # Inference: rebuild the sampling models from the restored model's layers.
    model = keras.models.load_model(path)
    encoder_inputs = model.input[0]
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output
    encoder_states = [state_h_enc, state_c_enc]
    encoder_model = keras.Model(encoder_inputs, encoder_states)
    decoder_inputs = model.input[1]
    decoder_state_input_h = keras.Input(shape=(latent_dim,))
    decoder_state_input_c = keras.Input(shape=(latent_dim,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(
        decoder_inputs, initial_state=decoder_states_inputs)
    decoder_states = [state_h_dec, state_c_dec]
    decoder_dense = model.layers[4]
    decoder_outputs = decoder_dense(decoder_outputs)
    decoder_model = keras.Model([decoder_inputs] + decoder_states_inputs,
                                [decoder_outputs] + decoder_states)

    target_token_index = data["target_token_index"]
    reverse_target_char_index = {i: char for char, i in target_token_index.items()}
    steps = []

    def decode_sequence(input_seq):
        states_value = encoder_model.predict(input_seq, verbose=0)
        target_seq = np.zeros((1, 1, num_decoder_tokens))
        target_seq[0, 0, target_token_index["\t"]] = 1.0
        stop_condition, decoded_sentence = False, ""
        while not stop_condition:
            output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
            steps.append((output_tokens, h, c))
            sampled_token_index = np.argmax(output_tokens[0, -1, :])
            sampled_char = reverse_target_char_index[sampled_token_index]
            decoded_sentence += sampled_char
            if sampled_char == "\n" or len(decoded_sentence) > data["max_decoder_seq_length"]:
                stop_condition = True
            target_seq = np.zeros((1, 1, num_decoder_tokens))
            target_seq[0, 0, sampled_token_index] = 1.0
            states_value = [h, c]
        return decoded_sentence

    decoded = [decode_sequence(data["encoder_input_data"][i:i + 1]) for i in range(3)]
    encoded = encoder_model.predict(data["encoder_input_data"], verbose=0)
    return start, history.history, decoded, steps, encoded


def _seq2seq_data(tmp_path):
    rng = np.random.default_rng(21)
    letters = "abcde"
    input_texts = ["".join(rng.choice(list(letters), size=rng.integers(3, 7))) for _ in range(40)]
    # The "translation": each letter shifted by one, the order reversed.
    target_texts = ["\t" + "".join("bcdea"[letters.index(ch)] for ch in t[::-1]) + "\n"
                    for t in input_texts]
    input_characters = sorted(set("".join(input_texts)) | {" "})
    target_characters = sorted(set("".join(target_texts)))
    max_encoder_seq_length = max(len(t) for t in input_texts)
    max_decoder_seq_length = max(len(t) for t in target_texts)
    input_token_index = {c: i for i, c in enumerate(input_characters)}
    target_token_index = {c: i for i, c in enumerate(target_characters)}
    nE, nD = len(input_characters), len(target_characters)
    encoder_input_data = np.zeros((len(input_texts), max_encoder_seq_length, nE), dtype="float32")
    decoder_input_data = np.zeros((len(input_texts), max_decoder_seq_length, nD), dtype="float32")
    decoder_target_data = np.zeros((len(input_texts), max_decoder_seq_length, nD), dtype="float32")
    for i, (input_text, target_text) in enumerate(zip(input_texts, target_texts)):
        for t, char in enumerate(input_text):
            encoder_input_data[i, t, input_token_index[char]] = 1.0
        encoder_input_data[i, t + 1:, input_token_index[" "]] = 1.0
        for t, char in enumerate(target_text):
            decoder_input_data[i, t, target_token_index[char]] = 1.0
            if t > 0:
                decoder_target_data[i, t - 1, target_token_index[char]] = 1.0
        decoder_input_data[i, t + 1:, target_token_index["\n"]] = 1.0
        decoder_target_data[i, t:, target_token_index["\n"]] = 1.0
    return dict(num_encoder_tokens=nE, num_decoder_tokens=nD, dir=tmp_path,
                encoder_input_data=encoder_input_data, decoder_input_data=decoder_input_data,
                decoder_target_data=decoder_target_data, target_token_index=target_token_index,
                max_decoder_seq_length=max_decoder_seq_length)


def test_lstm_seq2seq_and_its_inference_models_run_with_only_the_import_switched(tmp_path):
    (tmp_path / "keras").mkdir()
    (tmp_path / "unrolled").mkdir()
    data = _seq2seq_data(tmp_path / "keras")
    start, want_hist, want_decoded, want_steps, want_enc = lstm_seq2seq(real_keras, data)
    data["dir"] = tmp_path / "unrolled"
    _, hist, decoded, steps, enc = lstm_seq2seq(unrolled, data, weights=start)
    _same_history(hist, want_hist)
    for got, want in zip(enc, want_enc):
        np.testing.assert_allclose(got, want, rtol=PRED_RTOL, atol=PRED_ATOL)
    assert decoded == want_decoded
    assert len(steps) == len(want_steps)
    for got, want in zip(steps, want_steps):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=PRED_RTOL, atol=PRED_ATOL)


# --- keras-io examples/nlp/bidirectional_lstm_imdb.py -----------------------------------------
def bidirectional_lstm_imdb(keras, data, weights=None):
    """Integer reviews of varying lengths padded with ``keras.utils.pad_sequences``; an
    Embedding, two stacked Bidirectional LSTMs, a sigmoid Dense."""
    max_features, maxlen = data["max_features"], data["maxlen"]
    layers = keras.layers
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(max_features, 8)(inputs)
    x = layers.Bidirectional(layers.LSTM(6, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(6))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.summary()
    x_train = keras.utils.pad_sequences(data["x_train"], maxlen=maxlen)
    x_val = keras.utils.pad_sequences(data["x_val"], maxlen=maxlen)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    history = model.fit(x_train, data["y_train"], batch_size=16, epochs=2, shuffle=False,
                        verbose=0, validation_data=(x_val, data["y_val"]))
    return start, history.history, model.predict(x_val, verbose=0), x_train


def test_bidirectional_lstm_imdb_runs_with_only_the_import_switched():
    rng = np.random.default_rng(22)
    reviews = [list(rng.integers(1, 60, size=rng.integers(5, 30))) for _ in range(64)]
    labels = np.array([int(np.mean(r[:4]) > 30) for r in reviews])
    data = dict(max_features=60, maxlen=20, x_train=reviews[:48], y_train=labels[:48],
                x_val=reviews[48:], y_val=labels[48:])
    start, want_hist, want_pred, want_x = bidirectional_lstm_imdb(real_keras, data)
    _, hist, pred, x = bidirectional_lstm_imdb(unrolled, data, weights=start)
    np.testing.assert_array_equal(x, want_x)
    assert x.dtype == want_x.dtype
    _same_history(hist, want_hist)
    np.testing.assert_allclose(pred, want_pred, rtol=PRED_RTOL, atol=PRED_ATOL)


# --- keras-io examples/generative/lstm_character_level_text_generation.py ---------------------
def lstm_text_generation(keras, data, weights=None):
    """Next-character prediction on overlapping windows of a text (boolean one-hot arrays),
    an LSTM and a softmax Dense, RMSprop(0.01); after each epoch, text generated at several
    temperatures with the example's ``sample`` (NumPy multinomial, seeded here)."""
    text, maxlen, step = data["text"], 10, 3
    chars = sorted(list(set(text)))
    char_indices = dict((c, i) for i, c in enumerate(chars))
    indices_char = dict((i, c) for i, c in enumerate(chars))
    sentences, next_chars = [], []
    for i in range(0, len(text) - maxlen, step):
        sentences.append(text[i: i + maxlen])
        next_chars.append(text[i + maxlen])
    x = np.zeros((len(sentences), maxlen, len(chars)), dtype="bool")
    y = np.zeros((len(sentences), len(chars)), dtype="bool")
    for i, sentence in enumerate(sentences):
        for t, char in enumerate(sentence):
            x[i, t, char_indices[char]] = 1
        y[i, char_indices[next_chars[i]]] = 1

    model = keras.Sequential([
        keras.Input(shape=(maxlen, len(chars))),
        keras.layers.LSTM(16),
        keras.layers.Dense(len(chars), activation="softmax"),
    ])
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    draws = np.random.RandomState(5)

    def sample(preds, temperature=1.0):
        preds = np.asarray(preds).astype("float64")
        preds = np.log(preds) / temperature
        exp_preds = np.exp(preds)
        preds = exp_preds / np.sum(exp_preds)
        probas = draws.multinomial(1, preds, 1)
        return np.argmax(probas)

    losses, generated_texts, all_preds = [], [], []
    for epoch in range(2):
        h = model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
        losses.append(h.history["loss"])
        start_index = draws.randint(0, len(text) - maxlen - 1)
        for diversity in [0.2, 0.5, 1.0, 1.2]:
            generated = ""
            sentence = text[start_index: start_index + maxlen]
            for i in range(5):
                x_pred = np.zeros((1, maxlen, len(chars)))
                for t, char in enumerate(sentence):
                    x_pred[0, t, char_indices[char]] = 1.0
                preds = model.predict(x_pred, verbose=0)[0]
                all_preds.append(preds)
                next_char = indices_char[sample(preds, diversity)]
                sentence = sentence[1:] + next_char
                generated += next_char
            generated_texts.append(generated)
    return start, losses, generated_texts, np.array(all_preds)


def test_lstm_character_level_text_generation_runs_with_only_the_import_switched():
    rng = np.random.default_rng(23)
    words = ["the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "dog "]
    data = dict(text="".join(rng.choice(words, size=60)))
    start, want_losses, want_texts, want_preds = lstm_text_generation(real_keras, data)
    _, losses, texts, preds = lstm_text_generation(unrolled, data, weights=start)
    np.testing.assert_allclose(losses, want_losses, rtol=HIST_RTOL)
    assert texts == want_texts
    np.testing.assert_allclose(preds, want_preds, rtol=PRED_RTOL, atol=PRED_ATOL)


# --- keras-io examples/timeseries/timeseries_weather_forecasting.py ---------------------------
def weather_forecasting(keras, data, weights=None):
    """Normalized features cut into windows by
    ``keras.preprocessing.timeseries_dataset_from_array`` (targets ``future`` steps ahead),
    LSTM(32)->Dense(1) on the first batch's shape, Adam, EarlyStopping and a
    ``ModelCheckpoint(save_weights_only=True, save_best_only=True)``; the best checkpoint is
    loaded back before predicting on the validation batches."""
    features, past, future, step = data["features"], 24, 6, 2
    learning_rate, batch_size, epochs = 0.05, 32, 4
    train_split = int(0.7 * len(features))
    mean = features[:train_split].mean(axis=0)
    std = features[:train_split].std(axis=0)
    features = (features - mean) / std
    train_data, val_data = features[:train_split], features[train_split:]

    start, end = past + future, past + future + train_split
    x_train = train_data[:, :5]
    y_train = features[start:end][:, [1]]
    sequence_length = int(past / step)
    dataset_train = keras.preprocessing.timeseries_dataset_from_array(
        x_train, y_train, sequence_length=sequence_length, sampling_rate=step,
        batch_size=batch_size)
    x_end = len(val_data) - past - future
    label_start = train_split + past + future
    x_val = val_data[:x_end][:, :5]
    y_val = features[label_start:][:, [1]]
    dataset_val = keras.preprocessing.timeseries_dataset_from_array(
        x_val, y_val, sequence_length=sequence_length, sampling_rate=step,
        batch_size=batch_size)
    for batch in dataset_train:
        inputs, targets = batch
        break

    inputs = keras.layers.Input(shape=(inputs.shape[1], inputs.shape[2]))
    lstm_out = keras.layers.LSTM(32)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    model.summary()
    if weights is not None:
        model.set_weights(weights)
    start_weights = model.get_weights()

    path_checkpoint = str(data["dir"] / "model_checkpoint.weights.h5")
    es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
    modelckpt_callback = keras.callbacks.ModelCheckpoint(
        monitor="val_loss", filepath=path_checkpoint, verbose=0, save_weights_only=True,
        save_best_only=True)
    history = model.fit(dataset_train, epochs=epochs, validation_data=dataset_val,
                        callbacks=[es_callback, modelckpt_callback], verbose=0)
    model.load_weights(path_checkpoint)
    predictions = []
    for i, (x, y) in enumerate(dataset_val):
        predictions.append(model.predict(x, verbose=0)[0])
        if i == 2:
            break
    return start_weights, history.history, np.array(predictions), model.predict(dataset_val,
                                                                                  verbose=0)


def test_timeseries_weather_forecasting_runs_with_only_the_import_switched(tmp_path):
    rng = np.random.default_rng(24)
    t = np.arange(400)
    features = np.stack([np.sin(t / 10 + k) * (k + 1) + 0.1 * rng.normal(size=400) + 10 * k
                         for k in range(5)], axis=1).astype("float32")
    (tmp_path / "keras").mkdir()
    (tmp_path / "unrolled").mkdir()
    data = dict(features=features, dir=tmp_path / "keras")
    real_keras.utils.set_random_seed(4)           # Keras's starting weights, hence its run
    start, want_hist, want_some, want_pred = weather_forecasting(real_keras, data)
    data["dir"] = tmp_path / "unrolled"
    _, hist, some, pred = weather_forecasting(unrolled, data, weights=start)
    _same_history(hist, want_hist)
    # the best epoch is not the last: the predictions come from the reloaded checkpoint
    assert np.argmin(want_hist["val_loss"]) < len(want_hist["val_loss"]) - 1
    np.testing.assert_allclose(some, want_some, rtol=PRED_RTOL, atol=PRED_ATOL)
    np.testing.assert_allclose(pred, want_pred, rtol=PRED_RTOL, atol=PRED_ATOL)


# --- Keras 2 examples/lstm_stateful.py (Keras 3 spelling: Input(batch_shape=...)) -------------
def lstm_stateful(keras, data, weights=None):
    """Learn the moving mean of the last ``tsteps`` inputs from one input at a time: a
    stateful LSTM trained epoch by epoch with ``shuffle=False`` and its states reset after
    each epoch, against the same model stateless."""
    x_train, y_train = data["x_train"], data["y_train"]
    x_test, y_test = data["x_test"], data["y_test"]
    lahead, batch_size, epochs = 1, 8, 3

    def create_model(stateful):
        model = keras.Sequential()
        model.add(keras.Input(batch_shape=(batch_size, lahead, 1)))
        model.add(keras.layers.LSTM(20, stateful=stateful))
        model.add(keras.layers.Dense(1))
        model.compile(loss="mse", optimizer="adam")
        return model

    model_stateful = create_model(stateful=True)
    if weights is not None:
        model_stateful.set_weights(weights)
    start = model_stateful.get_weights()
    stateful_losses = []
    for i in range(epochs):
        h = model_stateful.fit(x_train, y_train, batch_size=batch_size, epochs=1, verbose=0,
                               validation_data=(x_test, y_test), shuffle=False)
        stateful_losses.append(h.history)
        model_stateful.layers[0].reset_states()
    predicted_stateful = model_stateful.predict(x_test, batch_size=batch_size, verbose=0)
    states_after = [_numpy(s) for s in model_stateful.layers[0].states]

    model_stateless = create_model(stateful=False)
    model_stateless.set_weights(start)
    h = model_stateless.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0,
                            validation_data=(x_test, y_test), shuffle=False)
    predicted_stateless = model_stateless.predict(x_test, batch_size=batch_size, verbose=0)
    return start, stateful_losses, predicted_stateful, states_after, h.history, predicted_stateless


def _stateful_data():
    rng = np.random.RandomState(25)
    tsteps, input_len = 2, 160
    to_drop = tsteps - 1
    data_input = rng.uniform(-0.1, 0.1, input_len + to_drop)
    expected_output = np.convolve(data_input, np.ones(tsteps) / tsteps, mode="valid")
    data_input = data_input[to_drop:]
    split = int(round(len(data_input) * 0.8))
    x = data_input.reshape((-1, 1, 1)).astype("float32")
    y = expected_output.reshape((-1, 1)).astype("float32")
    return dict(x_train=x[:split], y_train=y[:split], x_test=x[split:], y_test=y[split:])


def test_lstm_stateful_runs_with_only_the_import_switched():
    data = _stateful_data()
    start, want_sl, want_sp, want_states, want_h, want_p = lstm_stateful(real_keras, data)
    _, sl, sp, states, h, p = lstm_stateful(unrolled, data, weights=start)
    assert len(sl) == len(want_sl) == 3
    for got, want in zip(sl, want_sl):
        _same_history(got, want)
    np.testing.assert_allclose(sp, want_sp, rtol=PRED_RTOL, atol=PRED_ATOL)
    for got, want in zip(states, want_states):
        np.testing.assert_allclose(got, want, rtol=PRED_RTOL, atol=PRED_ATOL)
    _same_history(h, want_h)
    np.testing.assert_allclose(p, want_p, rtol=PRED_RTOL, atol=PRED_ATOL)
    # the two runs differ: the stateful model carries its states from batch to batch
    assert not np.allclose(sp, p, rtol=1e-3)


# --- keras-io guides/working_with_rnns.py ----------------------------------------------------
def working_with_rnns_models(keras, data, weights=None):
    """The guide's MNIST-rows classifier (LSTM given ``input_shape``, BatchNormalization,
    logits Dense, SparseCategoricalCrossentropy(from_logits=True), "sgd"), then the same
    model with ``RNN(LSTMCell)`` taking the trained weights and training on; and its
    Bidirectional stack."""
    batch_size, input_dim, units, output_size = 16, 28, 12, 10
    x_train, y_train = data["x_train"], data["y_train"]
    x_test, y_test = data["x_test"], data["y_test"]

    def build_model(allow_cudnn_kernel=True):
        if allow_cudnn_kernel:
            lstm_layer = keras.layers.LSTM(units, input_shape=(None, input_dim))
        else:
            lstm_layer = keras.layers.RNN(keras.layers.LSTMCell(units),
                                          input_shape=(None, input_dim))
        model = keras.models.Sequential([
            lstm_layer,
            keras.layers.BatchNormalization(),
            keras.layers.Dense(output_size),
        ])
        return model

    model = build_model(allow_cudnn_kernel=True)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer="sgd", metrics=["accuracy"])
    if weights is not None:
        model.set_weights(weights[0])
    start = [model.get_weights()]
    h1 = model.fit(x_train, y_train, validation_data=(x_test, y_test), batch_size=batch_size,
                   epochs=1, shuffle=False, verbose=0)

    noncudnn_model = build_model(allow_cudnn_kernel=False)
    noncudnn_model.set_weights(model.get_weights())
    noncudnn_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           optimizer="sgd", metrics=["accuracy"])
    h2 = noncudnn_model.fit(x_train, y_train, validation_data=(x_test, y_test),
                            batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    sample, sample_label = x_test[0], y_test[0]
    result = np.argmax(noncudnn_model.predict(np.expand_dims(sample, 0), verbose=0), axis=1)
    result = (result, result == sample_label)

    bidi = keras.Sequential()
    bidi.add(keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True),
                                        input_shape=(5, 10)))
    bidi.add(keras.layers.Bidirectional(keras.layers.LSTM(4)))
    bidi.add(keras.layers.Dense(10))
    bidi.compile(optimizer="adam", loss="mse")
    if weights is not None:
        bidi.set_weights(weights[1])
    start.append(bidi.get_weights())
    h3 = bidi.fit(data["x_bidi"], data["y_bidi"], batch_size=8, epochs=2, shuffle=False,
                  verbose=0)
    return (start, [h1.history, h2.history, h3.history], result,
            [model.predict(x_test, verbose=0), noncudnn_model.predict(x_test, verbose=0),
             bidi.predict(data["x_bidi"], verbose=0)])


def test_working_with_rnns_guide_models_run_with_only_the_import_switched():
    rng = np.random.default_rng(26)
    x = rng.random((48, 28, 28)).astype("float32")
    y = (x[:, :, :3].sum(axis=(1, 2)) * 10 // 9 % 10).astype("int64")
    data = dict(x_train=x[:32], y_train=y[:32], x_test=x[32:], y_test=y[32:],
                x_bidi=rng.normal(size=(24, 5, 10)).astype("float32"),
                y_bidi=rng.normal(size=(24, 10)).astype("float32"))
    start, want_hist, want_result, want_preds = working_with_rnns_models(real_keras, data)
    _, hist, result, preds = working_with_rnns_models(unrolled, data, weights=start)
    for got, want in zip(hist, want_hist):
        _same_history(got, want)
    np.testing.assert_array_equal(result[0], want_result[0])
    np.testing.assert_array_equal(result[1], want_result[1])
    for got, want in zip(preds, want_preds):
        np.testing.assert_allclose(got, want, rtol=PRED_RTOL, atol=PRED_ATOL)


def working_with_rnns_states(keras, data, weights=None):
    """The guide's encoder-decoder (Embeddings; the encoder LSTM's ``return_state``
    states as the decoder LSTM's ``initial_state``), and its cross-batch statefulness:
    a ``stateful=True`` layer called eagerly on consecutive paragraphs, its ``states``
    handed as ``initial_state`` to a new layer, ``reset_states``."""
    layers = keras.layers
    encoder_vocab, decoder_vocab = 30, 20
    encoder_input = layers.Input(shape=(None,))
    encoder_embedded = layers.Embedding(input_dim=encoder_vocab, output_dim=8)(encoder_input)
    output, state_h, state_c = layers.LSTM(8, return_state=True, name="encoder")(
        encoder_embedded)
    encoder_state = [state_h, state_c]
    decoder_input = layers.Input(shape=(None,))
    decoder_embedded = layers.Embedding(input_dim=decoder_vocab, output_dim=8)(decoder_input)
    decoder_output = layers.LSTM(8, name="decoder")(decoder_embedded,
                                                    initial_state=encoder_state)
    output = layers.Dense(10)(decoder_output)
    model = keras.Model([encoder_input, decoder_input], output)
    if weights is not None:
        model.set_weights(weights[0])
    start = [model.get_weights()]
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit([data["enc"], data["dec"]], data["labels"], batch_size=8, epochs=2,
                        shuffle=False, verbose=0)
    outputs = [model.predict([data["enc"], data["dec"]], verbose=0)]

    paragraph1, paragraph2, paragraph3 = data["paragraphs"]
    lstm_layer = layers.LSTM(6, stateful=True)
    output = lstm_layer(paragraph1)                  # builds the layer and its states
    lstm_layer.reset_states()
    if weights is not None:
        lstm_layer.set_weights(weights[1])
    start.append(lstm_layer.get_weights())
    output = lstm_layer(paragraph1)
    output = lstm_layer(paragraph2)
    outputs.append(_numpy(output))
    existing_state = lstm_layer.states
    new_lstm_layer = layers.LSTM(6)
    new_output = new_lstm_layer(paragraph3, initial_state=existing_state)
    if weights is not None:
        new_lstm_layer.set_weights(weights[2])
    start.append(new_lstm_layer.get_weights())
    new_output = new_lstm_layer(paragraph3, initial_state=existing_state)
    outputs.append(_numpy(new_output))
    output = lstm_layer(paragraph3)
    outputs.append(_numpy(output))
    lstm_layer.reset_states()
    outputs.append(_numpy(lstm_layer(paragraph3)))
    return start, history.history, outputs


def test_working_with_rnns_guide_states_run_with_only_the_import_switched():
    rng = np.random.default_rng(27)
    data = dict(enc=rng.integers(0, 30, size=(32, 7)), dec=rng.integers(0, 20, size=(32, 5)),
                labels=rng.integers(0, 10, size=(32,)),
                paragraphs=[rng.random((4, 5, 3)).astype(np.float32) for _ in range(3)])
    start, want_hist, want_out = working_with_rnns_states(real_keras, data)
    _, hist, out = working_with_rnns_states(unrolled, data, weights=start)
    _same_history(hist, want_hist)
    assert len(out) == len(want_out) == 5
    for got, want in zip(out, want_out):
        np.testing.assert_allclose(got, want, rtol=PRED_RTOL, atol=PRED_ATOL)
    # after reset_states the stateful layer starts again from zeros
    assert not np.allclose(want_out[3], want_out[4], rtol=1e-3)


# --- Keras 2 examples/lstm_text_generation.py (a LambdaCallback generates text) ---------------
def lstm_text_generation_keras2(keras, data, weights=None):
    """The Keras 2 version of the text generator: the sampling runs inside
    ``LambdaCallback(on_epoch_end=...)``, calling ``model.predict`` in the middle of ``fit``."""
    text, maxlen, step = data["text"], 8, 2
    chars = sorted(list(set(text)))
    char_indices = dict((c, i) for i, c in enumerate(chars))
    indices_char = dict((i, c) for i, c in enumerate(chars))
    sentences, next_chars = [], []
    for i in range(0, len(text) - maxlen, step):
        sentences.append(text[i: i + maxlen])
        next_chars.append(text[i + maxlen])
    x = np.zeros((len(sentences), maxlen, len(chars)), dtype=bool)
    y = np.zeros((len(sentences), len(chars)), dtype=bool)
    for i, sentence in enumerate(sentences):
        for t, char in enumerate(sentence):
            x[i, t, char_indices[char]] = 1
        y[i, char_indices[next_chars[i]]] = 1

    model = keras.models.Sequential()
    model.add(keras.layers.LSTM(12, input_shape=(maxlen, len(chars))))
    model.add(keras.layers.Dense(len(chars), activation="softmax"))
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    draws = np.random.RandomState(11)
    generated_texts, all_preds, seen_epochs = [], [], []

    def sample(preds, temperature=1.0):
        preds = np.asarray(preds).astype("float64")
        preds = np.log(preds) / temperature
        exp_preds = np.exp(preds)
        preds = exp_preds / np.sum(exp_preds)
        probas = draws.multinomial(1, preds, 1)
        return np.argmax(probas)

    def on_epoch_end(epoch, _):
        seen_epochs.append(epoch)
        start_index = draws.randint(0, len(text) - maxlen - 1)
        for diversity in [0.2, 1.0]:
            generated = ""
            sentence = text[start_index: start_index + maxlen]
            for i in range(6):
                x_pred = np.zeros((1, maxlen, len(chars)))
                for t, char in enumerate(sentence):
                    x_pred[0, t, char_indices[char]] = 1.
                preds = model.predict(x_pred, verbose=0)[0]
                all_preds.append(preds)
                next_index = sample(preds, diversity)
                sentence = sentence[1:] + indices_char[next_index]
                generated += indices_char[next_index]
            generated_texts.append(generated)

    print_callback = keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)
    history = model.fit(x, y, batch_size=32, epochs=2, callbacks=[print_callback],
                        shuffle=False, verbose=0)
    return start, history.history, seen_epochs, generated_texts, np.array(all_preds)


def test_keras2_lstm_text_generation_with_a_lambda_callback_runs_with_only_the_import_switched():
    rng = np.random.default_rng(28)
    words = ["to ", "be ", "or ", "not ", "is ", "the ", "question "]
    data = dict(text="".join(rng.choice(words, size=50)))
    start, want_hist, want_epochs, want_texts, want_preds = lstm_text_generation_keras2(
        real_keras, data)
    _, hist, epochs, texts, preds = lstm_text_generation_keras2(unrolled, data, weights=start)
    _same_history(hist, want_hist)
    assert epochs == want_epochs == [0, 1]
    assert texts == want_texts
    np.testing.assert_allclose(preds, want_preds, rtol=PRED_RTOL, atol=PRED_ATOL)


# --- Keras 2 examples/babi_rnn.py ---------------------------------------------------------------
def babi_rnn(keras, data, weights=None):
    """Story and question each embedded and read by an LSTM, the two codes concatenated,
    a softmax over the vocabulary; ``validation_split=0.05``, then ``evaluate``."""
    layers = keras.layers
    RNN = layers.LSTM
    EMBED_HIDDEN_SIZE, SENT_HIDDEN_SIZE, QUERY_HIDDEN_SIZE = 10, 12, 12
    BATCH_SIZE, EPOCHS = 16, 2
    vocab_size, story_maxlen, query_maxlen = data["vocab_size"], 12, 4
    x, xq, y = data["x"], data["xq"], data["y"]
    tx, txq, ty = data["tx"], data["txq"], data["ty"]

    sentence = layers.Input(shape=(story_maxlen,), dtype="int32")
    encoded_sentence = layers.Embedding(vocab_size, EMBED_HIDDEN_SIZE)(sentence)
    encoded_sentence = RNN(SENT_HIDDEN_SIZE)(encoded_sentence)
    question = layers.Input(shape=(query_maxlen,), dtype="int32")
    encoded_question = layers.Embedding(vocab_size, EMBED_HIDDEN_SIZE)(question)
    encoded_question = RNN(QUERY_HIDDEN_SIZE)(encoded_question)
    merged = layers.concatenate([encoded_sentence, encoded_question])
    preds = layers.Dense(vocab_size, activation="softmax")(merged)
    model = keras.models.Model([sentence, question], preds)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    history = model.fit([x, xq], y, batch_size=BATCH_SIZE, epochs=EPOCHS, validation_split=0.05,
                        shuffle=False, verbose=0)
    loss, acc = model.evaluate([tx, txq], ty, batch_size=BATCH_SIZE, verbose=0)
    return start, history.history, (loss, acc), model.predict([tx, txq], verbose=0)


def test_keras2_babi_rnn_runs_with_only_the_import_switched():
    rng = np.random.default_rng(29)
    vocab_size = 22

    def vectorize(n):
        stories = keras_pad([list(rng.integers(1, vocab_size, size=rng.integers(5, 13)))
                             for _ in range(n)], 12)
        queries = keras_pad([list(rng.integers(1, vocab_size, size=rng.integers(2, 5)))
                             for _ in range(n)], 4)
        answers = np.zeros((n, vocab_size), dtype="float32")
        answers[np.arange(n), stories[:, -1]] = 1.0        # the answer: the story's last word
        return stories, queries, answers

    keras_pad = real_keras.utils.pad_sequences
    x, xq, y = vectorize(60)
    tx, txq, ty = vectorize(20)
    data = dict(vocab_size=vocab_size, x=x, xq=xq, y=y, tx=tx, txq=txq, ty=ty)
    start, want_hist, want_eval, want_pred = babi_rnn(real_keras, data)
    _, hist, result, pred = babi_rnn(unrolled, data, weights=start)
    _same_history(hist, want_hist)
    np.testing.assert_allclose(result, want_eval, rtol=HIST_RTOL, atol=1e-6)
    np.testing.assert_allclose(pred, want_pred, rtol=PRED_RTOL, atol=PRED_ATOL)


# --- keras-io guides/understanding_masking_and_padding.py -------------------------------------
def masking_and_padding(keras, data, weights=None):
    """Post-padding with ``pad_sequences``, an ``Embedding(mask_zero=True)`` and its
    ``compute_mask``, a ``Masking`` layer's mask on float inputs, and the guide's two
    models whose LSTMs skip the padded steps: Sequential(Embedding(mask_zero) -> LSTM) and a
    functional Embedding(mask_zero) -> LSTM -> Dense, trained here."""
    layers = keras.layers
    raw_inputs = data["raw_inputs"]
    padded_inputs = keras.utils.pad_sequences(raw_inputs, padding="post")
    embedding = layers.Embedding(input_dim=data["vocab"], output_dim=4, mask_zero=True)
    masked_output = embedding(padded_inputs)
    mask = _numpy(embedding.compute_mask(padded_inputs))

    unmasked_embedding = np.asarray(data["floats"])
    masking_layer = layers.Masking()
    masking_mask = _numpy(masking_layer.compute_mask(unmasked_embedding))
    merged_mask = layers.Concatenate().compute_mask([masked_output, masked_output])

    model = keras.Sequential([
        keras.Input(shape=(None,)),
        layers.Embedding(input_dim=data["vocab"], output_dim=6, mask_zero=True),
        layers.LSTM(8),
    ])
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=data["vocab"], output_dim=6, mask_zero=True)(inputs)
    outputs = layers.LSTM(8)(x)
    outputs = layers.Dense(1, activation="sigmoid")(outputs)
    functional = keras.Model(inputs, outputs)
    functional.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    if weights is not None:
        model.set_weights(weights[0])
        functional.set_weights(weights[1])
    start = [model.get_weights(), functional.get_weights()]
    history = functional.fit(padded_inputs, data["labels"], batch_size=4, epochs=3,
                             shuffle=False, verbose=0)
    assert merged_mask is None                       # Keras: no masks given, no mask out
    return (start, history.history, padded_inputs, mask, masking_mask,
            [model.predict(padded_inputs, verbose=0), functional.predict(padded_inputs, verbose=0)])


def test_masking_and_padding_guide_runs_with_only_the_import_switched():
    rng = np.random.default_rng(30)
    raw_inputs = [list(rng.integers(1, 40, size=rng.integers(2, 9))) for _ in range(16)]
    floats = rng.normal(size=(3, 5, 2)).astype("float32")
    floats[0, 3:] = 0.0
    floats[2, 1] = 0.0
    data = dict(raw_inputs=raw_inputs, vocab=40, floats=floats,
                labels=np.array([len(r) > 5 for r in raw_inputs], dtype="float32"))
    start, want_hist, want_padded, want_mask, want_mmask, want_preds = masking_and_padding(
        real_keras, data)
    _, hist, padded, mask, mmask, preds = masking_and_padding(unrolled, data, weights=start)
    np.testing.assert_array_equal(padded, want_padded)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(mmask, want_mmask)
    assert not want_mask.all() and not want_mmask.all()
    _same_history(hist, want_hist)
    for got, want in zip(preds, want_preds):
        np.testing.assert_allclose(got, want, rtol=PRED_RTOL, atol=PRED_ATOL)


def working_with_rnns_layers(keras, data, weights=None):
    """The guide's first models, Sequentials without an Input built with
    ``model.build``: Embedding -> LSTM -> Dense and Embedding -> GRU(return_sequences) ->
    SimpleRNN -> Dense; and the Bidirectional docstring's model with its own
    ``backward_layer`` (relu, go_backwards) and ``merge_mode``."""
    layers = keras.layers
    x, y = data["tokens"], data["classes"]
    model1 = keras.Sequential()
    model1.add(layers.Embedding(input_dim=50, output_dim=8))
    model1.add(layers.LSTM(10))
    model1.add(layers.Dense(10))
    model1.build(input_shape=(None, x.shape[1]))

    model2 = keras.Sequential()
    model2.add(layers.Embedding(input_dim=50, output_dim=8))
    model2.add(layers.GRU(12, return_sequences=True))
    model2.add(layers.SimpleRNN(8))
    model2.add(layers.Dense(10))
    model2.build(input_shape=(None, x.shape[1]))

    model3 = keras.Sequential()
    forward_layer = layers.LSTM(6, return_sequences=True)
    backward_layer = layers.LSTM(6, activation="relu", return_sequences=True, go_backwards=True)
    model3.add(keras.Input(shape=(5, 10)))
    model3.add(layers.Bidirectional(forward_layer, backward_layer=backward_layer,
                                    merge_mode="sum"))
    model3.add(layers.Bidirectional(layers.GRU(4), merge_mode="ave"))
    model3.add(layers.Dense(5))
    model3.add(layers.Activation("softmax"))

    models = [model1, model2, model3]
    if weights is not None:
        for m, w in zip(models, weights):
            m.set_weights(w)
    start = [m.get_weights() for m in models]
    histories, preds = [], []
    for m, (xs, ys) in zip(models, [(x, y), (x, y), (data["seq"], data["seq_classes"])]):
        m.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=m is not model3),
                  optimizer=keras.optimizers.Adam(learning_rate=0.005), metrics=["accuracy"])
        histories.append(m.fit(xs, ys, batch_size=8, epochs=2, shuffle=False,
                               verbose=0).history)
        preds.append(m.predict(xs, verbose=0))
    return start, histories, preds


def test_working_with_rnns_guide_layers_run_with_only_the_import_switched():
    rng = np.random.default_rng(31)
    tokens = rng.integers(0, 50, size=(32, 9))
    seq = rng.normal(size=(32, 5, 10)).astype("float32")
    data = dict(tokens=tokens, classes=tokens[:, 0] % 10, seq=seq,
                seq_classes=(seq[:, 0, 0] > 0).astype("int64") + 2 * (seq[:, -1, 0] > 0))
    start, want_hist, want_preds = working_with_rnns_layers(real_keras, data)
    _, hist, preds = working_with_rnns_layers(unrolled, data, weights=start)
    for got, want in zip(hist, want_hist):
        _same_history(got, want)
    for got, want in zip(preds, want_preds):
        np.testing.assert_allclose(got, want, rtol=PRED_RTOL, atol=PRED_ATOL)
