"""Example 3: a character-level language model on Dante's Inferno, min-char-rnn style.

The network reads the text one character at a time and, at every step, outputs a score
(logit) for each character of the vocabulary being the next one::

    ids (batch, T) -> Embedding(V, 32) -> LSTM(H, return_sequences=True) -> Dense(V) logits

trained with ``SparseCategoricalCrossentropy(from_logits=True)`` on windows of the text
and the same windows shifted by one character. The loss is in nats per character; two
references show what "learned something" means: ``ln V`` (guessing uniformly) and the
entropy of the character frequencies (knowing only how common each letter is).

Text comes out of the model by sampling: feed a prime, turn the last logits into
probabilities ``softmax(logits / temperature)``, draw a character, feed it back. Low
temperatures pick safe, repetitive characters; high ones take risks.
"""
import numpy as np

from ..callbacks import EarlyStopping
from ..data import Vocabulary, load_inferno, split_in_time, timeseries_windows
from ..layers import LSTM, Dense, Embedding, Input
from ..losses import SparseCategoricalCrossentropy
from ..models import Model
from ..optimizers import Adam
from ..utils import set_random_seed
from . import pyplot, save, say, section

VERSE = "Nel mezzo del cammin di nostra vita"
EMBED = 32


def build(vocab_size, units, batch_shape=(None, None), stateful=False):
    """The language model; with ``batch_shape=(1, None), stateful=True`` its sampling twin."""
    i = Input(batch_shape=batch_shape, dtype="int32")
    h = Embedding(vocab_size, EMBED)(i)
    h = LSTM(units, return_sequences=True, stateful=stateful)(h)
    return Model(i, Dense(vocab_size)(h))


def shifted_windows(ids, length):
    """``x`` = windows of the text, ``y`` = the same windows one character later."""
    x = timeseries_windows(ids[:-1], sequence_length=length, sequence_stride=length // 2)
    y = timeseries_windows(ids[1:], sequence_length=length, sequence_stride=length // 2)
    return x, y


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sample(sampler, vocab, prime, n, temperature, rng):
    """``n`` characters after ``prime``, each drawn from ``softmax(logits / temperature)``."""
    sampler.layers[2].reset_state()                        # the LSTM starts from zeros
    logits = sampler.predict(vocab.encode(prime)[None, :], verbose=0)[0, -1]
    out = []
    for _ in range(n):
        p = softmax(logits / temperature)
        k = int(rng.choice(len(p), p=p / p.sum()))
        out.append(k)
        logits = sampler.predict(np.array([[k]]), verbose=0)[0, -1]   # the state carries on
    return vocab.decode(out)


def unigram_loss(train_ids, ids, size):
    """Crossentropy (nats/char) of ``ids`` under the training part's character frequencies."""
    counts = np.bincount(train_ids, minlength=size) + 1.0  # add-one: no zero probabilities
    return float(-np.mean(np.log(counts[ids] / counts.sum())))


def verse_report(model, vocab, text, verse, verbose):
    """How surprised the model is by each character of ``verse`` given the text before it."""
    end = text.index(verse) + len(verse)
    ids = vocab.encode(text[:end])
    probs = softmax(model.predict(ids[None, :-1], verbose=0)[0])     # P(next char | text so far)
    start = end - len(verse)
    rows = []
    for t in range(start, end):
        p = probs[t - 1]
        top = np.argsort(p)[::-1][:3]
        rows.append((text[t], float(p[ids[t]]), [(vocab.chars[k], float(p[k])) for k in top]))
    shown = {" ": "_", "\n": "\\n"}                          # make blanks visible
    for i in range(0, len(rows), 12):                      # 12 characters per block
        block = rows[i:i + 12]
        say(verbose, "char   " + "".join(f"{shown.get(c, c):>6s}" for c, _, _ in block))
        say(verbose, "P(char)" + "".join(f"{pc:6.2f}" for _, pc, _ in block))
        say(verbose, "guess  " + "".join(f"{shown.get(top[0][0], top[0][0]):>6s}"
                                         for _, _, top in block) + "\n")
    mean = float(-np.mean([np.log(pc) for _, pc, _ in rows]))
    say(verbose, f"mean surprise on this verse: {mean:.3f} nats/char")
    return rows, mean


def explain_hook(model, vocab, verse, out_dir, verbose):
    """The explain report (equations, states, gates) of the model reading one verse."""
    import os

    from .. import explain
    if out_dir is None:                                      # as the plots: no files at all
        return None
    try:                            # an import, not find_spec: a broken install counts too
        import matplotlib.figure  # noqa: F401
    except ImportError:                                      # as the plots: skipped, said
        say(verbose, "matplotlib is not installed, so no explain report is written "
                     "(pip install 'unrolled[plot]' to get it).")
        return None
    os.makedirs(out_dir, exist_ok=True)
    path = explain.report(model, vocab.encode(verse)[None, :],
                          path=os.path.join(out_dir, "dante_verse_report.html"))
    say(verbose, f"explain report on the verse: {path}")
    return path


def run(quick=False, out_dir="unrolled-examples/dante", seed=0, verbose=True):
    units, length, epochs, n_chars = (32, 50, 4, 120) if quick else (128, 100, 60, 400)
    section("1. The text: Dante, Inferno, Cantos I-III (public domain)", verbose)
    text = load_inferno()
    vocab = Vocabulary(text)
    ids = vocab.encode(text)
    train, val, test = split_in_time(ids, train=0.8, validation=0.1)
    if quick:
        train = train[:3000]                               # a short run: the first canto's start
    x, y = shifted_windows(train, length)
    xv, yv = shifted_windows(val, length)
    say(verbose, f"{len(text)} characters, vocabulary of {vocab.size}; train {len(train)}, "
                 f"validation {len(val)}, test {len(test)} characters; {len(x)} training "
                 f"windows of {length}")
    uniform, unigram = float(np.log(vocab.size)), unigram_loss(train, val, vocab.size)
    say(verbose, f"references on the validation part: uniform guess ln {vocab.size} = "
                 f"{uniform:.3f}, character frequencies {unigram:.3f} nats/char")

    section(f"2. Embedding({vocab.size}, {EMBED}) -> LSTM({units}) -> Dense({vocab.size}), "
            f"{epochs} epochs", verbose)
    set_random_seed(seed)
    model = build(vocab.size, units)
    loss = SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=Adam(learning_rate=0.01 if quick else 0.005, clipnorm=5.0), loss=loss)
    stop = EarlyStopping(patience=5, restore_best_weights=True)   # 12k characters overfit soon
    h = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32,
                  callbacks=[stop], verbose=2 if verbose else 0).history
    best = int(np.argmin(h["val_loss"]))
    xt, yt = shifted_windows(test, length)
    test_loss = float(loss(yt, model.predict(xt, verbose=0)))
    results = {"train_loss": h["loss"], "val_loss": h["val_loss"], "test_loss": test_loss,
               "best_epoch": best + 1, "uniform_loss": uniform, "unigram_loss": unigram,
               "vocab_size": vocab.size, "samples": {}, "plots": []}
    say(verbose, f"train loss {h['loss'][0]:.3f} -> {h['loss'][-1]:.3f}; kept the weights of "
                 f"epoch {best + 1}: validation {h['val_loss'][best]:.3f}, test {test_loss:.3f} "
                 "nats/char")

    section("3. Sampling with temperature", verbose)
    sampler = build(vocab.size, units, batch_shape=(1, None), stateful=True)
    sampler.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    for temperature in (0.5, 1.0):
        s = sample(sampler, vocab, VERSE + "\n", n_chars, temperature, rng)
        results["samples"][temperature] = s
        say(verbose, f"--- temperature {temperature}:\n{VERSE}\n{s}\n")

    section(f"4. One verse under the model: \"{VERSE}\"", verbose)
    rows, results["verse_loss"] = verse_report(model, vocab, text, VERSE, verbose)
    results["explain"] = explain_hook(model, vocab, VERSE, out_dir, verbose)

    plt = pyplot(out_dir, verbose)
    if plt is not None:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6))
        epochs_axis = np.arange(1, len(h["loss"]) + 1)
        top.plot(epochs_axis, h["loss"], label="train")
        top.plot(epochs_axis, h["val_loss"], label="validation")
        top.axhline(unigram, color="0.5", ls="--", lw=1, label="character frequencies")
        top.set(title="loss (nats per character)", xlabel="epoch")
        top.legend(fontsize=8)
        bottom.bar(np.arange(len(rows)), [pc for _, pc, _ in rows], color="C0")
        bottom.set_xticks(np.arange(len(rows)), [c if c != " " else "␣" for c, _, _ in rows])
        bottom.set(title="P(next character) along the first verse", ylim=(0, 1))
        results["plots"].append(save(plt, fig, out_dir, "dante_training.png", verbose))
    return results
