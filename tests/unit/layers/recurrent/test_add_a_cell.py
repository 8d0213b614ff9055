"""A cell added in one file plus one registry entry (issue 22.5, docs/add-a-cell.md):
``tests/indrnn.py``'s IndRNN trains, masks, saves, loads and is traced, with no change
anywhere else. Checked against a hand-written NumPy loop and by float64 finite
differences (IndRNN has no Keras or PyTorch reference)."""
import numpy as np
import pytest
from gradcheck import check_layer_gradients

import unrolled
from unrolled import fast
from unrolled.fast import kernels
from unrolled.explain import trace
from unrolled.layers import registry
from unrolled.models import load_model


@pytest.fixture
def indrnn():
    """The module, registered for this test only (other tests see the built-in cells)."""
    import indrnn as module
    if module.ENTRY not in registry.CELL_TYPES:
        registry.register(module.ENTRY)
    yield module
    registry.unregister(module.ENTRY)


def _hand_loop(x, w, u, b, h0, mask=None, go_backwards=False):
    """The equations, step by step: h = relu(x W + b + u * h)."""
    xs = x[:, ::-1] if go_backwards else x
    h, out = h0, []
    for t in range(xs.shape[1]):
        new = np.maximum(xs[:, t] @ w + b + u * h, 0)
        if mask is not None:
            keep = (mask[:, ::-1] if go_backwards else mask)[:, t][:, None]
            new = np.where(keep, new, h)
        h = new
        out.append(h)
    return np.stack(out, axis=1), h


def _layer(module, rng, dtype="float32", **kw):
    layer = module.IndRNN(5, return_sequences=True, return_state=True, dtype=dtype, **kw)
    layer.build((None, None, 3))
    layer.set_weights([rng.normal(size=(3, 5)), rng.uniform(-1, 1, 5), rng.normal(size=5)])
    return layer


@pytest.mark.parametrize("go_backwards", [False, True])
def test_the_new_cell_computes_its_equations_with_masks_and_states(indrnn, rng, go_backwards):
    layer = _layer(indrnn, rng, go_backwards=go_backwards)
    x = rng.normal(size=(4, 6, 3)).astype("float32")
    h0 = rng.normal(size=(4, 5)).astype("float32")
    mask = rng.random((4, 6)) > 0.3
    mask[0] = False
    ys, h = layer(x, mask=mask, initial_state=[h0])
    w, u, b = (a.astype(float) for a in layer.get_weights())
    want_ys, want_h = _hand_loop(x.astype(float), w, u, b, h0.astype(float), mask,
                                 go_backwards)
    np.testing.assert_allclose(h, want_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ys[mask if not go_backwards else mask[:, ::-1]],
                               want_ys[mask if not go_backwards else mask[:, ::-1]],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(h[0], h0[0])                  # every step masked
    assert fast.plan(layer.cell, np.dtype("float32"), 4, training=False, rec_mask=None,
                     dp_mask=None) is None                       # the reference loop runs


@pytest.mark.parametrize("options", [{}, {"go_backwards": True}])
def test_its_backward_matches_finite_differences(indrnn, rng, options):
    layer = _layer(indrnn, rng, dtype="float64", **options)
    x = rng.normal(size=(3, 5, 3))
    h0 = rng.normal(size=(3, 5))
    mask = rng.random((3, 5)) > 0.3
    check_layer_gradients(layer, [x, h0], rng, tol=1e-6, mask=mask)


def test_it_trains_saves_loads_and_is_traced(indrnn, rng, tmp_path):
    model = unrolled.Sequential([unrolled.Input((6, 3)),
                                 indrnn.IndRNN(8, recurrent_dropout=0.2, dropout=0.1),
                                 unrolled.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = rng.normal(size=(32, 6, 3)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None] / 6
    history = model.fit(x, y, epochs=30, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]
    assert model.layers[0].units == 8 and model.layers[0].activation.name == "relu"
    want = model.predict(x, verbose=0)
    for name in ("m.keras", "m.h5", "m.unrolled.npz"):
        model.save(tmp_path / name)
        again = load_model(tmp_path / name)
        assert type(again.layers[0]).__name__ == "IndRNN"
        assert again.layers[0].cell.recurrent_dropout == pytest.approx(0.2)
        np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-6, atol=1e-7)
    with kernels.unfused():
        lt = trace(model, x[:2])[model.layers[0].name]
    w, u, b = (a.astype(float) for a in model.layers[0].get_weights())
    ys, _ = _hand_loop(x[:2].astype(float), w, u, b, np.zeros((2, 8)))
    np.testing.assert_allclose(lt.h, ys, rtol=1e-5, atol=1e-6)
    registry.unregister(indrnn.ENTRY)                 # unknown again: refused by name
    with pytest.raises(ValueError, match="'IndRNN' is not supported"):
        load_model(tmp_path / "m.keras")
    registry.register(indrnn.ENTRY)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(indrnn.ENTRY)
