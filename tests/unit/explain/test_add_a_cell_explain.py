"""A registered cell gets explain's equations and generated code from its registry entry
(issue 22.5, docs/add-a-cell.md): ``tests/indrnn.py``'s one ``register`` call is all IndRNN
needs. The equations are checked against a hand-written IndRNN loop, the generated program
against ``model.predict`` (IndRNN has no Keras or PyTorch reference). The built-in cells'
text comes from the same entries; their numbers are checked against Keras in
tests/reference/explain/ and tests/system/explain/."""
import dataclasses

import numpy as np
import pytest

import unrolled
from unrolled.explain import equations, report, to_numpy_code
from unrolled.explain.codegen_layers import unsupported_reason
from unrolled.layers import Bidirectional, Dense, registry
from unrolled.models import Model


@pytest.fixture
def indrnn():
    """The module, registered for this test only (other tests see the built-in cells)."""
    import indrnn as module
    if module.ENTRY not in registry.CELL_TYPES:
        registry.register(module.ENTRY)
    yield module
    if module.ENTRY in registry.CELL_TYPES:
        registry.unregister(module.ENTRY)


def _weights(rng, f, m, use_bias=True):
    return [rng.normal(size=(f, m)).astype("float32"), rng.uniform(-1, 1, m).astype("float32")] \
        + ([rng.normal(size=m).astype("float32")] if use_bias else [])


def _hand_steps(x, w, u, b, h0):
    """The paper's equations in float64: a_t = x_t W + b + u * h_{t-1}, h_t = relu(a_t)."""
    h, out = h0, []
    for t in range(x.shape[1]):
        a = x[:, t] @ w + b + u * h
        h = np.maximum(a, 0)
        out.append((a, h))
    return out


@pytest.mark.parametrize("use_bias", [True, False])
def test_equations_come_from_the_entry_and_hold_the_steps_numbers(indrnn, rng, use_bias):
    layer = indrnn.IndRNN(5, use_bias=use_bias, name="ind")
    layer.build((None, 6, 3))
    layer.set_weights(_weights(rng, 3, 5, use_bias))
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    eq = equations(layer, x, t=3, sample=1, units=[0, 2, 4])
    w, u, *b = (a.astype(float) for a in layer.get_weights())
    b = b[0] if use_bias else np.zeros(5)
    steps = _hand_steps(x.astype(float), w, u, b, np.zeros((2, 5)))
    a_want, h_want = steps[3][0][1], steps[3][1][1]
    shown = [0, 2, 4]
    np.testing.assert_allclose(eq.values["a"], a_want[shown], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eq.values["h"], h_want[shown], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eq.values["h_prev"], steps[2][1][1][shown], rtol=1e-5, atol=1e-6)
    lines = {ln.lhs: ln for ln in eq.lines}
    assert list(lines) == ["x_t", "h_prev", "a", "h"]
    bias = " + bias" if use_bias else ""
    assert lines["a"].formula == f"x_t @ kernel{bias} + recurrent_kernel * h_prev"
    assert lines["h"].formula == "relu(a)"
    # the substituted line holds x_t @ kernel, (b), u and h_prev for the units shown
    parts = [np.asarray(p.strip(" []").split(", "), float)
             for p in lines["a"].substituted.replace(" * ", " + ").split(" + ")]
    want = [x[1, 3].astype(float) @ w[:, shown]] + ([b[shown]] if use_bias else []) + [
        u[shown], steps[2][1][1][shown]]
    assert len(parts) == len(want)
    for got, expected in zip(parts, want):
        np.testing.assert_allclose(got, expected, atol=1e-4)       # printed with 4 decimals
    assert eq.title.startswith("IndRNN 'ind', step t=3 of 6, sample 1, units [0, 2, 4]")
    tex = eq._repr_latex_()
    assert r"u \odot h_{t-1}" in tex and r"x_t\,W" in tex and r"\mathrm{relu}(a)" in tex
    assert "recurrent_kernel * h_prev" in eq._repr_html_()


def _model(indrnn, rng, **options):
    inp = unrolled.Input((7, 3), name="inp")
    layer = indrnn.IndRNN(4, name="ind", **options)
    out = layer(inp)
    model = Model(inp, out, name="m")
    layer.set_weights(_weights(rng, 3, 4, options.get("use_bias", True)))
    return model


@pytest.mark.parametrize("options", [
    {}, {"return_sequences": True, "go_backwards": True}, {"use_bias": False},
    {"activation": "tanh", "return_sequences": True, "return_state": True}])
def test_generated_code_runs_and_equals_predict(indrnn, rng, options):
    model = _model(indrnn, rng, **options)
    x = rng.normal(size=(5, 7, 3)).astype("float32")
    source = to_numpy_code(model)
    namespace = {"__name__": "generated_model"}
    exec(compile(source, "<generated>", "exec"), namespace)   # the test runs what codegen wrote
    got, want = namespace["predict"](x), model.predict(x, verbose=0)
    for g, w in zip(got if isinstance(want, list) else [got], want if isinstance(want, list) else [want]):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
    step = "h = {}(x[:, t] @ kernel{} + recurrent_kernel * h)".format(
        options.get("activation", "relu"), "" if options.get("use_bias") is False else " + bias")
    assert step in source


def test_generated_code_with_initial_state_and_bidirectional(indrnn, rng):
    inp, h0 = unrolled.Input((6, 3), name="inp"), unrolled.Input((4,), name="h0")
    y = indrnn.IndRNN(4, return_sequences=True, name="ind")(inp, initial_state=[h0])
    y = Bidirectional(indrnn.IndRNN(2, activation="tanh"), merge_mode="concat", name="bi")(y)
    model = Model([inp, h0], Dense(1, name="out")(y), name="m")
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5
                       for w in model.get_weights()])
    xs = [rng.normal(size=(3, 6, 3)).astype("float32"), rng.normal(size=(3, 4)).astype("float32")]
    namespace = {"__name__": "generated_model"}
    exec(compile(to_numpy_code(model), "<generated>", "exec"), namespace)
    np.testing.assert_allclose(namespace["predict"](xs), model.predict(xs, verbose=0),
                               rtol=1e-6, atol=1e-7)


def test_the_report_shows_its_equations(indrnn, rng, tmp_path):
    model = _model(indrnn, rng, return_sequences=True)
    x = rng.normal(size=(2, 7, 3)).astype("float32")
    page = (tmp_path / "r.html")
    report(model, x, path=page)
    text = page.read_text()
    assert "IndRNN &#x27;ind&#x27;, step t=0 of 7" in text
    assert "x_t @ kernel + bias + recurrent_kernel * h_prev" in text


def test_an_entry_without_explain_text_is_refused_by_name(indrnn, rng):
    registry.unregister(indrnn.ENTRY)
    model = _model(indrnn, rng)
    x = np.ones((1, 7, 3), "float32")
    with pytest.raises(TypeError, match="equations knows SimpleRNN, LSTM, GRU, Dense.*IndRNNCell"):
        equations(model.layers[1], x)                            # not registered at all
    with pytest.raises(ValueError, match="IndRNNCell has no code writer; use SimpleRNN, LSTM or GRU"):
        to_numpy_code(model)
    bare = dataclasses.replace(indrnn.ENTRY, equations=None, step_code=None)
    registry.register(bare)
    try:
        with pytest.raises(TypeError, match="IndRNN is registered without equations"):
            equations(model.layers[1], x)
        with pytest.raises(ValueError, match="IndRNNCell has no code writer.*declares no step_code"):
            to_numpy_code(model)
    finally:
        registry.unregister(bare)


def _swap(indrnn, **changes):
    """Register IndRNN with other explain text (in place of its own entry)."""
    if indrnn.ENTRY in registry.CELL_TYPES:
        registry.unregister(indrnn.ENTRY)
    return registry.register(dataclasses.replace(indrnn.ENTRY, **changes))


def test_wrong_explain_text_is_refused_with_its_reason(indrnn, rng):
    model = _model(indrnn, rng)
    x = np.ones((1, 7, 3), "float32")
    entries = []
    try:
        entries.append(_swap(indrnn, equations=(("a", "x_t @ kernel + v * h_prev"),)))
        with pytest.raises(ValueError, match=r"'a = x_t @ kernel \+ v \* h_prev'.*names 'v'"):
            equations(model.layers[1], x)
        registry.unregister(entries.pop())
        entries.append(_swap(indrnn, equations=(("q", "{activation}(a)"),)))
        with pytest.raises(ValueError, match="names 'q', which is not a value of its trace"):
            equations(model.layers[1], x)
        registry.unregister(entries.pop())
        entries.append(_swap(indrnn, equations=(("h", "{slope}(a)"),)))
        with pytest.raises(ValueError, match=r"\{slope\}, which is neither one of its options"):
            equations(model.layers[1], x)
        registry.unregister(entries.pop())
        for code, why in [(("x = x[:, t] @ kernel", "h = x"), "assigns 'x', a name of the loop"),
                          (("a = x[:, t] @ kernel",), "does not assign its state 'h'"),
                          (("h = (x[:, t] @ kernel",), "is not Python")]:
            entries.append(_swap(indrnn, step_code=code))
            assert why in unsupported_reason(model.layers[1])
            with pytest.raises(ValueError, match=r"layer 'ind' \(IndRNN: the step_code"):
                to_numpy_code(model)
            registry.unregister(entries.pop())
    finally:
        for entry in entries:
            registry.unregister(entry)
        registry.register(indrnn.ENTRY)
    with pytest.raises(ValueError, match="subscripts='ab' names 2 gate blocks; it has blocks=1"):
        registry.register(dataclasses.replace(indrnn.ENTRY, cell=type("OtherCell", (), {}),
                                              subscripts="ab"))
    with pytest.raises(ValueError, match="code_options names 'reset_after'"):
        registry.register(dataclasses.replace(indrnn.ENTRY, code_options=("reset_after",)))


def test_the_built_in_cells_take_their_text_from_the_registry(rng):
    """No per-cell table is left in explain: the built-in text is the entries', filled."""
    from unrolled.explain import codegen_layers
    from unrolled.explain import equations as eq_module
    assert not hasattr(codegen_layers, "CELLS") and not hasattr(eq_module, "_BUILDERS")
    gru = registry.of_layer("GRU")
    layer = unrolled.layers.GRU(3, reset_after=False, use_bias=False, activation="relu")
    layer.build((None, 2, 4))
    assert gru.equations_of(layer.cell)[4] == (
        "ah", "x_t @ kernel_h + (r * h_prev) @ recurrent_kernel_h")
    lines, acts = gru.step_code_of(layer.cell)
    assert lines[1].startswith("z = sigmoid(xz + h @ recurrent_kernel[:, :3])")
    assert lines[3].startswith("hh = relu(xh + (r * h) @ recurrent_kernel[:, 6:])")
    assert acts == ["relu", "sigmoid"]
