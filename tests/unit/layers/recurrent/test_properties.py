"""Property tests (hypothesis): invariants every recurrent layer must keep."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from unrolled.layers import SimpleRNN

shapes = st.tuples(st.integers(1, 4), st.integers(1, 7), st.integers(1, 5), st.integers(1, 6))
seeds = st.integers(0, 2 ** 31 - 1)


def _layer(units, features, seed, **kw):
    layer = SimpleRNN(units, dtype="float64", **kw)
    rng = np.random.default_rng(seed)
    layer.build((None, None, features))
    layer.set_weights([rng.standard_normal(w.shape) * 0.6 for w in layer.weights])
    return layer, rng


@settings(max_examples=40, deadline=None)
@given(shapes, seeds, st.integers(1, 3))
def test_stateful_chunks_equal_one_call(shape, seed, n_chunks):
    b, t, d, m = shape
    whole, rng = _layer(m, d, seed, return_sequences=True)
    chunked = SimpleRNN(m, dtype="float64", return_sequences=True, stateful=True)
    chunked.build((b, None, d))
    chunked.set_weights(whole.get_weights())
    x = rng.standard_normal((b, t, d))
    cuts = np.array_split(np.arange(t), n_chunks)
    parts = [chunked(x[:, c]) for c in cuts if len(c)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole(x), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(shapes, seeds)
def test_go_backwards_equals_reversed_input(shape, seed):
    b, t, d, m = shape
    fwd, rng = _layer(m, d, seed, return_sequences=True)
    bwd = SimpleRNN(m, dtype="float64", return_sequences=True, go_backwards=True)
    bwd.build((None, None, d))
    bwd.set_weights(fwd.get_weights())
    x = rng.standard_normal((b, t, d))
    np.testing.assert_allclose(bwd(x), fwd(x[:, ::-1]), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(shapes, seeds)
def test_all_true_mask_equals_no_mask(shape, seed):
    b, t, d, m = shape
    layer, rng = _layer(m, d, seed, return_sequences=True, return_state=True)
    x = rng.standard_normal((b, t, d))
    for a, c in zip(layer(x, mask=np.ones((b, t), bool)), layer(x)):
        np.testing.assert_allclose(a, c, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(shapes, seeds)
def test_a_row_alone_equals_the_row_in_a_batch(shape, seed):
    b, t, d, m = shape
    layer, rng = _layer(m, d, seed)
    x = rng.standard_normal((b, t, d))
    full = layer(x)
    for r in range(b):
        np.testing.assert_allclose(layer(x[r:r + 1])[0], full[r], atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(shapes, seeds, st.sampled_from(["SimpleRNN", "LSTM", "GRU"]), st.booleans())
def test_bidirectional_concat_is_the_two_directions_side_by_side(shape, seed, kind, seqs):
    from unrolled import layers
    b, t, d, m = shape
    rng = np.random.default_rng(seed)
    bi = layers.Bidirectional(getattr(layers, kind)(m, return_sequences=seqs, dtype="float64"))
    x = rng.standard_normal((b, t, d))
    bi(x)
    bi.set_weights([rng.standard_normal(w.shape) * 0.5 for w in bi.weights])
    fwd = getattr(layers, kind)(m, return_sequences=seqs, dtype="float64")
    bwd = getattr(layers, kind)(m, return_sequences=seqs, go_backwards=True, dtype="float64")
    fwd(x), bwd(x)
    n = len(fwd.weights)
    fwd.set_weights(bi.get_weights()[:n])
    bwd.set_weights(bi.get_weights()[n:])
    back = bwd(x)[:, ::-1] if seqs else bwd(x)
    np.testing.assert_allclose(bi(x), np.concatenate([fwd(x), back], axis=-1), atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(shapes, seeds, st.sampled_from(["LSTM", "GRU"]))
def test_streaming_one_step_at_a_time_equals_one_call(shape, seed, kind):
    from unrolled import layers
    b, t, d, m = shape
    rng = np.random.default_rng(seed)
    whole = getattr(layers, kind)(m, return_sequences=True, dtype="float64")
    stream = getattr(layers, kind)(m, return_sequences=True, stateful=True, dtype="float64")
    x = rng.standard_normal((b, t, d))
    whole(x)
    stream.build((b, None, d))
    stream.set_weights([rng.standard_normal(w.shape) * 0.5 for w in whole.weights])
    whole.set_weights(stream.get_weights())
    steps = [stream(x[:, k:k + 1]) for k in range(t)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), whole(x), atol=1e-12)
    stream.reset_state()
    np.testing.assert_allclose(stream(x[:, :1]), whole(x)[:, :1], atol=1e-12)
