"""explain on the layers next to recurrent ones (issue 25): attention weights in the trace
(against Keras's ``return_attention_scores``), the attention heat map in the report, and
the NumPy program ``to_numpy_code`` writes for the simpler companion layers."""
import ast
import base64
import re

import numpy as np
import pytest

from unrolled.explain import plot_attention, report, to_numpy_code, trace
from unrolled.layers import (ELU, GRU, LSTM, ActivityRegularization, AdditiveAttention,
                             Activation, Attention, AveragePooling1D, BatchNormalization, Conv1D,
                             Cropping1D, Dense, GaussianDropout, GaussianNoise,
                             GlobalAveragePooling1D, GlobalMaxPooling1D, Input,
                             LayerNormalization, LeakyReLU, MaxPooling1D, MultiHeadAttention,
                             Permute, PReLU, ReLU, SeparableConv1D, SimpleRNN, Softmax,
                             SpatialDropout1D, UnitNormalization, UpSampling1D, ZeroPadding1D)
from unrolled.models import Model

RNG = np.random.default_rng(25)


def x3(*shape):
    return RNG.standard_normal(shape).astype("float32")


def vary(model, scale=0.5):
    """Weights that differ everywhere; variances kept positive (BatchNormalization)."""
    new = []
    for w, v in zip(model.weights, model.get_weights()):
        r = (RNG.standard_normal(v.shape) * scale).astype(v.dtype)
        new.append(np.abs(r) + 0.5 if "variance" in w.name else r)
    model.set_weights(new)
    return model


# --- 1. trace: the attention weights, as Keras computes them --------------------------------
@pytest.mark.parametrize("kind, options, causal", [
    ("Attention", {}, False), ("Attention", {"use_scale": True}, True),
    ("Attention", {"score_mode": "concat", "use_scale": True}, False),
    ("AdditiveAttention", {}, False), ("AdditiveAttention", {"use_scale": False}, True)])
def test_trace_records_attention_weights_equal_to_keras(kind, options, causal):
    import keras

    q_in, v_in = Input((5, 4), name="q"), Input((7, 3), name="v")
    q = LSTM(4, return_sequences=True, name="lstm_q")(q_in)
    v = GRU(4, return_sequences=True, name="gru_v")(v_in)
    layer = {"Attention": Attention, "AdditiveAttention": AdditiveAttention}[kind](**options)
    out = layer([q, v], use_causal_mask=causal)
    model = vary(Model([q_in, v_in], Dense(2)(out)))
    xq, xv = x3(3, 5, 4), x3(3, 7, 3)
    tr = trace(model, [xq, xv])
    lt = tr[layer.name]
    w = lt.weights
    assert w.shape == (3, 5, 7) and w.dtype == np.float32
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-5)
    # the same layer in Keras, on the traced query and value, with the same weights
    ref = getattr(keras.layers, kind)(**options)
    hq, hv = tr["lstm_q"].output, tr["gru_v"].output
    _, scores = ref([hq, hv], return_attention_scores=True, use_causal_mask=causal)
    ref.set_weights(layer.get_weights())
    out_ref, scores = ref([hq, hv], return_attention_scores=True, use_causal_mask=causal)
    np.testing.assert_allclose(w, np.asarray(scores), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lt.output, np.asarray(out_ref), rtol=1e-5, atol=1e-6)
    if causal:
        assert np.all(w[:, 0, 1:] < 1e-6)                # query 0 sees key 0 only


def test_trace_records_multi_head_attention_weights_per_head_equal_to_keras():
    import keras

    i = Input((6, 3))
    h = SimpleRNN(5, return_sequences=True, name="rnn")(i)
    mha = MultiHeadAttention(num_heads=3, key_dim=2, name="mha")
    model = vary(Model(i, Dense(1)(GlobalAveragePooling1D()(mha(h, h, use_causal_mask=True)))))
    x = x3(2, 6, 3)
    tr = trace(model, x)
    w = tr["mha"].weights
    assert w.shape == (2, 6, 3, 6)                 # (batch, query step, head, key step)
    hs = tr["rnn"].output
    ref = keras.layers.MultiHeadAttention(num_heads=3, key_dim=2)
    ref(hs, hs)
    ref.set_weights(mha.get_weights())
    out_ref, scores = ref(hs, hs, return_attention_scores=True, use_causal_mask=True)
    np.testing.assert_allclose(w, np.swapaxes(np.asarray(scores), 1, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tr["mha"].output, np.asarray(out_ref), rtol=1e-5, atol=1e-5)
    at = tr["mha"].at(2, sample=1)
    np.testing.assert_array_equal(at["weights"], w[1, 2])     # query step 2, every head


def test_trace_of_the_other_companion_layers_records_inputs_and_outputs():
    i = Input((12, 3))
    h = Conv1D(4, 3, strides=2, padding="same", activation="relu", name="conv")(i)
    h = LayerNormalization(name="ln")(h)
    h = LSTM(5, return_sequences=True, name="lstm")(h)
    h = MaxPooling1D(2, name="pool")(h)
    h = Permute((2, 1), name="perm")(h)
    h = GlobalMaxPooling1D(name="gmax")(h)
    model = vary(Model(i, Dense(2, name="head")(h)))
    x = x3(4, 12, 3)
    tr = trace(model, x)
    assert tr.keys() == ["conv", "ln", "lstm", "pool", "perm", "gmax", "head"]
    np.testing.assert_array_equal(tr["conv"].input, x)
    for a, b in zip(["conv", "ln", "pool", "perm", "gmax"], ["ln", "lstm", "perm", "gmax", "head"]):
        got = tr[b].values.get("input", tr[b].values.get("x"))
        np.testing.assert_array_equal(tr[a].output, got)
    np.testing.assert_allclose(tr.outputs, model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    assert tr["conv"].output.shape == (4, 6, 4) and not tr["conv"].time_axis   # 12 -> 6 steps
    assert tr["ln"].time_axis and tr["ln"].at(5)["output"].shape == (4,)
    assert not tr["perm"].time_axis and tr["perm"].output.shape == (4, 5, 3)
    with pytest.raises(ValueError, match="no time axis"):
        tr["conv"].at(3)
    df = tr["conv"].to_dataframe()
    assert len(df) == x.size + tr["conv"].output.size


def test_every_companion_layer_traces_and_reports(tmp_path):
    """A model with each companion layer: every one has its input and output in the trace
    (equal to calling the layer on the traced input), and the report is written."""
    from unrolled.layers import Dot, GroupNormalization, Multiply

    i = Input((10, 4))
    h = LSTM(6, return_sequences=True, name="lstm")(i)
    chain = [Conv1D(6, 3, padding="same", name="conv"), SeparableConv1D(6, 2, padding="same",
             name="sep"), GroupNormalization(groups=2, name="gn"), BatchNormalization(name="bn"),
             LayerNormalization(name="ln"), UnitNormalization(name="un"), ReLU(name="relu"),
             LeakyReLU(name="leaky"), ELU(name="elu"), PReLU(name="prelu"), Softmax(name="sm"),
             GaussianNoise(0.1, name="gn_noise"), GaussianDropout(0.1, name="gd"),
             SpatialDropout1D(0.1, name="sd"), ActivityRegularization(0.01, name="ar"),
             ZeroPadding1D(1, name="zp"), Cropping1D(1, name="crop"), UpSampling1D(2, name="up"),
             MaxPooling1D(2, name="maxp"), AveragePooling1D(2, name="avgp")]
    for layer in chain:
        h = layer(h)
    a = AdditiveAttention(name="add_att")([h, h])
    m = MultiHeadAttention(2, 3, name="mha")(a, h)
    d = Dot(axes=2, name="dot")([Permute((1, 2), name="perm")(m), Multiply(name="mul")([m, h])])
    g = GRU(3, name="gru")(d)
    model = vary(Model(i, [Dense(1)(g), GlobalMaxPooling1D(name="gmax")(d)]))
    x = x3(3, 10, 4)
    tr = trace(model, x)
    for name in [layer.name for layer in chain] + ["add_att", "mha", "perm", "mul", "dot", "gmax"]:
        lt = tr[name]
        ins = [lt[k] for k in lt.keys() if k.startswith("input")]
        if name == "mha":
            want = lt.layer(ins[0], ins[1])
        else:
            want = lt.layer(ins if len(ins) > 1 else ins[0])
        np.testing.assert_array_equal(lt.output, np.asarray(want), err_msg=name)
    for got, want in zip(tr.outputs, model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    page = open(report(model, x, path=tmp_path / "all.html"), encoding="utf-8").read()
    for name in ("add_att", "mha"):
        assert f"{name} attention weights" in page
    assert "SeparableConv1D: no code writer" in page          # the code section says why
    # each recurrent layer shows its own first, middle and last step (the GRU runs 5, after
    # the up-sampling and the two poolings; the LSTM 10)
    assert "step t=9 of 10" in page and "step t=4 of 5" in page and "step t=5 of 5" not in page


# --- 2. the report's attention heat map -----------------------------------------------------
def _attention_model(T=60, heads=None):
    i = Input((T, 2))
    h = GRU(4, return_sequences=True)(i)
    if heads:
        a = MultiHeadAttention(num_heads=heads, key_dim=2, name="attn")(h, h)
    else:
        a = Attention(name="attn")([h, h], use_causal_mask=True)
    return vary(Model(i, Dense(1)(GlobalAveragePooling1D()(a)))), x3(3, T, 2)


@pytest.mark.parametrize("heads", [None, 2, 6])
def test_plot_attention_is_a_labelled_query_by_key_map(heads):
    model, x = _attention_model(T=60, heads=heads)
    tr = trace(model, x)
    fig = plot_attention(tr, sample=1)
    n = heads or 1
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == n and len(fig.axes) == n + 1                  # the maps and a colour bar
    w = tr["attn"].weights[1]
    for k, ax in enumerate(maps):
        shown = ax.images[0].get_array()
        np.testing.assert_array_equal(shown, w if heads is None else w[:, k])
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("key step", "query step")
        assert 5 <= len(ax.get_xticks()) <= 11 and 5 <= len(ax.get_yticks()) <= 11   # T = 60
    assert fig.axes[-1].get_ylabel() == "attention weight"
    assert "attn" in fig._suptitle.get_text() and "sample 1" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="no attention layer"):
        plot_attention(trace(*_plain_model()))


def _plain_model():
    i = Input((4, 2))
    return Model(i, Dense(1)(SimpleRNN(2)(i))), x3(2, 4, 2)


def test_report_shows_the_attention_heat_map(tmp_path):
    from chromium import console_problems, open_in_chromium

    model, x = _attention_model(T=40, heads=2)
    path = report(model, x, path=tmp_path / "attn.html", sample=2)
    page = open(path, encoding="utf-8").read()
    imgs = re.findall(r"<img alt='([^']*)' src='data:image/png;base64,([^']+)'>", page)
    alts = [a for a, _ in imgs]
    assert "attn attention weights" in alts
    png = base64.b64decode(dict(imgs)["attn attention weights"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "40 query steps x 40 key steps, 2 heads" in page
    plain = report(*_plain_model(), path=tmp_path / "plain.html")
    assert "attention weights" not in open(plain, encoding="utf-8").read()
    out, err = open_in_chromium(path, tmp_path, "--dump-dom")
    assert "attn attention weights" in out and not console_problems(err)


# --- 3. to_numpy_code for the companion layers ----------------------------------------------
def run_fresh(source):
    namespace = {"__name__": "generated_model"}
    exec(compile(source, "<generated>", "exec"), namespace)  # the test runs what codegen wrote
    return namespace


def _seq(*middle, T=9, F=3, head=True):
    """Input -> LSTM(sequences) -> the layers -> GRU -> Dense: each layer between two
    recurrent ones, so its code must give the next loop the right numbers."""
    def build():
        i = Input((T, F))
        h = LSTM(4, return_sequences=True)(i)
        for layer in middle:
            h = layer(h)
        if head:
            h = Dense(2)(GRU(3)(h))
        return Model(i, h), x3(4, T, F)
    build.__name__ = "_".join(type(m).__name__ + (f"-{m.activation.name}" if type(m).__name__ ==
                                                  "Activation" else "") for m in middle)
    return build


def _attention(kind, causal, scores, **options):
    def build():
        q_in, v_in = Input((5, 3)), Input((7, 2))
        q = GRU(4, return_sequences=True)(q_in)
        v = SimpleRNN(4, return_sequences=True)(v_in)
        res = kind(**options)([q, v, v] if scores else [q, v], use_causal_mask=causal,
                              return_attention_scores=scores)
        outs = [LSTM(2)(res[0]), res[1]] if scores else LSTM(2)(res)
        return Model([q_in, v_in], outs), [x3(3, 5, 3), x3(3, 7, 2)]
    build.__name__ = f"{kind.__name__}_{options}_{causal}_{scores}"
    return build


def _rms_layer_norm():
    with pytest.warns(UserWarning, match="rms_scaling"):          # deprecated, as in Keras
        return LayerNormalization(rms_scaling=True)


CODEGEN = [
    _seq(ReLU()), _seq(ReLU(max_value=0.3, negative_slope=0.2, threshold=0.1)),
    _seq(ReLU(max_value=0.4)), _seq(LeakyReLU(0.1)), _seq(ELU(0.7)), _seq(ELU()),
    _seq(PReLU(shared_axes=[1])), _seq(PReLU()), _seq(Softmax()), _seq(Softmax(axis=1)),
    *[_seq(Activation(a)) for a in ("log_softmax", "leaky_relu", "mish", "hard_silu", "celu",
                                    "hard_tanh", "hard_shrink", "soft_shrink", "log_sigmoid",
                                    "sparse_plus", "sparse_sigmoid", "squareplus", "tanh_shrink",
                                    "silu", "relu6")],
    _seq(Conv1D(3, 3)), _seq(Conv1D(3, 2, strides=2, padding="same", activation="mish")),
    _seq(Conv1D(5, 3, padding="causal", dilation_rate=2, use_bias=False)),
    _seq(Conv1D(2, 3, strides=3, padding="same", dilation_rate=1), T=10),
    _seq(MaxPooling1D(2)), _seq(MaxPooling1D(3, strides=2, padding="same"), T=10),
    _seq(AveragePooling1D(2)), _seq(AveragePooling1D(3, strides=2, padding="same"), T=10),
    _seq(AveragePooling1D(4, strides=1, padding="same")),
    _seq(GlobalMaxPooling1D(), head=False), _seq(GlobalAveragePooling1D(), Dense(2), head=False),
    _seq(GlobalMaxPooling1D(keepdims=True)),
    _seq(LayerNormalization()), _seq(LayerNormalization(axis=[1, 2], epsilon=0.01)),
    _seq(LayerNormalization(center=False, scale=False)), _seq(_rms_layer_norm()),
    _seq(BatchNormalization()), _seq(BatchNormalization(axis=1, center=False)),
    _seq(UnitNormalization()), _seq(UnitNormalization(axis=[1, 2])),
    _seq(GaussianNoise(0.5), GaussianDropout(0.3), SpatialDropout1D(0.4), ActivityRegularization(0.1)),
    _seq(Permute((2, 1)), F=4), _seq(ZeroPadding1D((2, 1))), _seq(Cropping1D((1, 2))),
    _seq(UpSampling1D(3)),
    _attention(Attention, False, False), _attention(Attention, True, False, use_scale=True),
    _attention(Attention, False, True, score_mode="concat", use_scale=True),
    _attention(Attention, True, True, score_mode="concat"),
    _attention(AdditiveAttention, False, False), _attention(AdditiveAttention, True, True),
    _attention(AdditiveAttention, False, False, use_scale=False),
]


@pytest.mark.parametrize("build", CODEGEN, ids=lambda b: b.__name__)
def test_generated_code_of_companion_layers_equals_predict(build):
    model, x = build()
    vary(model)
    source = to_numpy_code(model)
    ns = run_fresh(source)
    got, want = ns["predict"](x), model.predict(x, verbose=0)
    for g, e in zip(got if isinstance(want, list) else [got], want if isinstance(want, list) else [want]):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert set(re.findall(r"^\s*(?:import|from) (\w+)", source, re.M)) <= {"numpy", "argparse"}
    assert sorted(a.tobytes() for a in ns["W"].values()) == sorted(
        w.numpy().tobytes() for w in model.weights)


def test_generated_code_numbers_are_literals_and_hostile_names_stay_data():
    name = '"""\nraise SystemExit(3)\n"""'
    i = Input((8, 2), name=name + "_in")
    h = Conv1D(3, 2, padding="causal", name=name)(i)
    h = LayerNormalization(epsilon=0.25, name=name + "ln")(LSTM(4, return_sequences=True)(h))
    h = Attention(use_scale=True, name="class")([h, h])
    model = vary(Model(i, Dense(1)(GRU(2)(h)), name=name))
    code = to_numpy_code(model)
    tree = ast.parse(code)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert all(n.isascii() and n.isidentifier() for n in names)
    assert "var + 0.25)" in code                             # the epsilon, as a literal
    model_name = [n.value for n in tree.body if isinstance(n, ast.Assign)
                  and ast.unparse(n.targets[0]) == "MODEL_NAME"][0]
    assert ast.literal_eval(model_name) == name
    x = x3(2, 8, 2)
    np.testing.assert_allclose(run_fresh(code)["predict"](x), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_scalar_weights_are_written_bit_exactly():
    from unrolled.explain.codegen import array_literal

    for v in (np.float32(0.1), np.float32(-3.4e38), np.float64(1 / 3)):
        text = array_literal(np.asarray(v))
        back = eval(text, {"np": np})  # noqa: S307  (a literal this test just wrote)
        assert back.shape == () and back.dtype == v.dtype and back.tobytes() == np.asarray(v).tobytes()


def test_uncovered_companion_layers_are_refused_by_name():
    i = Input((8, 4))
    h = LSTM(4, return_sequences=True)(i)
    h = Conv1D(4, 3, groups=2, name="grouped")(h)
    h = SeparableConv1D(2, 3, name="sep")(h)
    h = Activation("gelu", name="gel")(h)
    h = MultiHeadAttention(2, 2, name="mha")(h, h)
    with pytest.raises(ValueError, match=r"'grouped' \(Conv1D: groups=2.*'sep' \(SeparableConv1D: "
                                         r"no code writer.*'gel' \(Activation: activation 'gelu'.*"
                                         r"'mha' \(MultiHeadAttention: no code writer"):
        to_numpy_code(Model(i, GRU(2)(h)))
    j = Input((5, 2))
    noisy = GaussianNoise(0.3, name="noisy")(j, training=True)
    with pytest.raises(ValueError, match=r"'noisy' \(GaussianNoise: called with training=True"):
        to_numpy_code(Model(j, LSTM(2)(noisy)))


# --- 4. equations: one line per companion layer ---------------------------------------------
def test_equations_of_companion_layers_show_the_traced_numbers():
    from unrolled.explain import equations

    i = Input((8, 2))
    h = Conv1D(3, 2, strides=2, activation="tanh", name="conv")(i)
    h = LSTM(4, return_sequences=True)(LayerNormalization(name="ln")(h))
    a = Attention(name="att")([h, h])
    m = MultiHeadAttention(2, 2, name="mha")(a, a)
    model = vary(Model(i, Dense(1)(GlobalMaxPooling1D(name="gmax")(m))))
    tr = trace(model, x3(3, 8, 2))
    eq = equations(tr["conv"], t=2, sample=1)
    assert "output step t=2 of 4" in eq.title and "tanh(sum_j x[t*2 + j*1]" in str(eq)
    np.testing.assert_array_equal(eq.values["y"], tr["conv"].output[1, 2])
    eq = equations(tr["att"], t=1, units=[0, 3])
    np.testing.assert_array_equal(eq.values["w"], tr["att"].weights[0, 1])
    np.testing.assert_array_equal(eq.values["y"], tr["att"].output[0, 1, [0, 3]])
    eq = equations(tr["mha"], sample=2)
    for h in range(2):
        np.testing.assert_array_equal(eq.values[f"w[head {h}]"], tr["mha"].weights[2, -1, h])
    eq = equations(tr["gmax"])
    np.testing.assert_array_equal(eq.values["y"], tr["gmax"].output[0])
    assert "<table class='equations'>" in eq._repr_html_() and "aligned" in eq._repr_latex_()
    with pytest.raises(ValueError, match=r"t=4 is out of range.*\[0, 3\]"):
        equations(tr["conv"], t=4)
    with pytest.raises(ValueError, match="no time axis"):
        equations(tr["gmax"], t=2)
    long_model, x = _attention_model(T=30)
    eq = equations(trace(long_model, x)["attn"], t=29)
    assert list(eq.values) == ["w (keys 0-11 of 30)", "y"] and len(eq.values["w (keys 0-11 of 30)"]) == 12


def test_generated_code_of_companion_layers_in_float64():
    f = {"dtype": "float64"}
    i = Input((9, 3), dtype="float64")
    h = LSTM(4, return_sequences=True, **f)(i)
    h = Conv1D(3, 2, padding="causal", dilation_rate=2, **f)(h)
    h = BatchNormalization(**f)(LayerNormalization(**f)(h))
    h = AveragePooling1D(2, padding="same", **f)(UnitNormalization(**f)(h))
    h = AdditiveAttention(**f)([h, h], use_causal_mask=True)
    model = vary(Model(i, Dense(2, **f)(GRU(3, **f)(h))))
    x = RNG.standard_normal((3, 9, 3))
    got, want = run_fresh(to_numpy_code(model))["predict"](x), model.predict(x, verbose=0)
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
