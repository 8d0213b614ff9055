"""Finite-difference gradient checks in float64 (central differences, relative error)."""
import numpy as np


def rel_error(a, b):
    """||a - b|| / (||a|| + ||b||): elementwise ratios would blow up on gradients near 0."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.linalg.norm(a - b) / max(1e-12, np.linalg.norm(a) + np.linalg.norm(b)))


def numeric_grad(f, arr, eps=1e-6):
    """d f() / d arr by central differences, perturbing ``arr`` in place."""
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        arr[i] = old + eps
        fp = f()
        arr[i] = old - eps
        fm = f()
        arr[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def check_layer_gradients(layer, inputs, rng, tol=1e-6, **forward_kwargs):
    """Compare ``layer.backward`` with finite differences of ``sum(outputs * dy)``.

    ``inputs`` is a list of float64 arrays: the main input first, then initial states.
    Returns the largest relative error seen over inputs and weights.
    """
    main, states = inputs[0], inputs[1:]

    def run():
        kw = dict(forward_kwargs)
        if states:
            kw["initial_state"] = states
        return layer.forward(main, **kw)

    out, cache = run()
    outs = out if isinstance(out, list) else [out]
    dys = [rng.standard_normal(o.shape) for o in outs]

    def loss():
        o, _ = run()
        o = o if isinstance(o, list) else [o]
        return sum(float(np.sum(a * d)) for a, d in zip(o, dys))

    dinputs, dweights = layer.backward(cache, dys if isinstance(out, list) else dys[0])
    worst = 0.0
    for arr, g in zip(inputs, dinputs):
        worst = max(worst, rel_error(g, numeric_grad(loss, arr)))
    for w, g in zip(layer.weights, dweights):
        worst = max(worst, rel_error(g, numeric_grad(loss, w.value)))
    assert worst < tol, f"gradient check failed: max relative error {worst:.2e} >= {tol:.0e}"
    return worst
