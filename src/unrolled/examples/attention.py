"""Example 4: sequence to sequence with attention, reversing strings of digits.

The chapter after the seed notebook in most courses: an encoder LSTM reads a string of
``L`` digits, a decoder LSTM writes it back reversed, one digit per step, and at each step
Luong's attention (``Attention(use_scale=True)``: a softmax of the dot products of the
decoder's output with every encoder output) takes a weighted mean of the encoder outputs. The decoder's first state is the encoder's last; it reads the
previous digit of the answer (the true one in training, "teacher forcing"; its own at test
time, greedy decoding).

Reversing needs the first digit last, the hardest thing for an encoder that must squeeze the
string into one state; with attention, output step ``t`` simply attends to input step
``L - 1 - t``, and the attention map shows that anti-diagonal. (Bahdanau's
``AdditiveAttention`` in its place, with Keras's arguments, learns no alignment on this task
in the same time: it scores ``scale . tanh(q + k)`` with no projections, and the decoder
falls back on the encoder's state, as an attention-free model would.)
"""
import numpy as np

from ..layers import LSTM, Attention, Concatenate, Dense, Embedding, Input
from ..models import Model
from ..optimizers import Adam
from ..utils import set_random_seed
from . import pyplot, save, say, section

L = 10           # digits per string
START = 10       # the decoder's first input, a token that is not a digit
VOCAB = 11       # the digits 0-9 and START


def make_data(n, seed):
    """``n`` random strings, their reversals, and the decoder's inputs (START, then the
    reversal shifted right by one)."""
    source = np.random.default_rng(seed).integers(0, 10, size=(n, L))
    target = source[:, ::-1].copy()
    decoder_in = np.concatenate([np.full((n, 1), START), target[:, :-1]], axis=1)
    return source, decoder_in, target


def build(units, learning_rate):
    """The training model ``[source, decoder input] -> digit probabilities per step`` and,
    sharing its layers, the model that gives the attention weights."""
    source, decoder_in = Input((L,), name="source"), Input((L,), name="decoder_input")
    encoded, h, c = LSTM(units, return_sequences=True, return_state=True, name="encoder")(
        Embedding(VOCAB, 16, name="source_embedding")(source))
    decoded = LSTM(units, return_sequences=True, name="decoder")(
        Embedding(VOCAB, 16, name="target_embedding")(decoder_in), initial_state=[h, c])
    context, scores = Attention(use_scale=True, name="attention")(
        [decoded, encoded], return_attention_scores=True)       # query: decoder, value: encoder
    probs = Dense(10, activation="softmax", name="digit")(
        Concatenate(name="decoded_and_context")([decoded, context]))
    model = Model([source, decoder_in], probs)
    model.compile(optimizer=Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, Model([source, decoder_in], scores)


def greedy_decode(model, source):
    """Write the answer one step at a time, each step reading the digits written so far."""
    decoder_in = np.full(source.shape, START)
    for t in range(L):
        digits = model.predict([source, decoder_in], verbose=0)[:, t].argmax(axis=-1)
        if t + 1 < L:
            decoder_in[:, t + 1] = digits
    return np.concatenate([decoder_in[:, 1:], digits[:, None]], axis=1)


def run(quick=False, out_dir="unrolled-examples/attention", seed=0, verbose=True):
    n, epochs, units = (1500, 4, 32) if quick else (4000, 12, 48)
    section(f"1. The data: strings of {L} digits and their reversals", verbose)
    src, dec_in, tgt = make_data(n, seed)
    test_src, _, test_tgt = make_data(500, seed + 1)
    say(verbose, f"{n} training strings, 500 test strings; e.g. {''.join(map(str, src[0]))} -> "
                 f"{''.join(map(str, tgt[0]))}")

    section(f"2. Encoder LSTM({units}) + decoder LSTM({units}) + Attention, "
            f"{epochs} epochs", verbose)
    set_random_seed(seed)
    model, attention = build(units, 0.01)
    history = model.fit([src, dec_in], tgt, epochs=epochs, batch_size=32,
                        verbose=2 if verbose else 0)

    section("3. Greedy decoding of the test strings (the model reads its own digits)", verbose)
    out = greedy_decode(model, test_src)
    digit_acc = float((out == test_tgt).mean())
    string_acc = float((out == test_tgt).all(axis=1).mean())
    say(verbose, f"digits right: {digit_acc:.1%}; whole strings right: {string_acc:.1%}")
    for i in range(3):
        say(verbose, f"  {''.join(map(str, test_src[i]))} -> {''.join(map(str, out[i]))}")

    weights = attention.predict([test_src[:1], np.concatenate(
        [[[START]], test_tgt[:1, :-1]], axis=1)], verbose=0)[0]          # (L out, L in)
    on_diagonal = float(np.mean(weights[np.arange(L), L - 1 - np.arange(L)]))
    say(verbose, f"mean attention weight on the mirrored input step: {on_diagonal:.2f} "
                 f"(uniform would be {1 / L:.2f})")
    results = {"loss": history.history["loss"], "accuracy": history.history["accuracy"],
               "digit_accuracy": digit_acc, "string_accuracy": string_acc,
               "attention_on_mirror": on_diagonal, "plots": []}

    plt = pyplot(out_dir, verbose)
    if plt is not None:
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 4))
        image = ax0.imshow(weights, cmap="viridis", vmin=0, vmax=1)
        ax0.set(title="attention weights, one test string", xlabel="input step (encoder)",
                ylabel="output step (decoder)", xticks=range(L), yticks=range(L),
                xticklabels=list(map(str, test_src[0])), yticklabels=list(map(str, out[0])))
        fig.colorbar(image, ax=ax0, fraction=0.046)
        ax1.plot(np.arange(1, epochs + 1), history.history["loss"], label="loss")
        ax1.plot(np.arange(1, epochs + 1), history.history["accuracy"], label="accuracy")
        ax1.set(title="training (teacher forcing)", xlabel="epoch")
        ax1.legend(fontsize=8)
        results["plots"].append(save(plt, fig, out_dir, "attention_reverse.png", verbose))
    return results
