"""The explain report stays readable for real models (issue 24.9).

An LSTM(128) reading 40 characters of a 60-character vocabulary, and a Bidirectional
LSTM(128) stacked under another LSTM(128), next to the 8-unit demo: in headless Chromium
no table or picture widens the page (each fits, or sits in a container that scrolls
sideways), measured by a script in a copy of the page; no tick labels collide in any
picture; the per-unit line plots draw the top 8 units by max |h| with a legend and say so.
The choices themselves (``tick_step``, ``tick_values``, ``top_units``) are pure functions,
tested against brute-force enumerations.
"""
import itertools
import json
import math
import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from chromium import console_problems, open_in_chromium
from unrolled.explain import (gradient_flow, plot_attention, plot_cell_state, plot_forecast,
                              plot_gates, plot_gradient_flow, plot_hidden_states, plot_history,
                              report, trace)
from unrolled.explain.demo import demo_model
from unrolled.explain.readable import (elide, max_ticks, tick_step, tick_values, top_units,
                                       units_caption)
from unrolled.layers import LSTM, Bidirectional, Dense, Embedding, Input
from unrolled.models import Model
from unrolled.utils import set_random_seed

VOCAB, T, UNITS = 60, 40, 128


# --- the pure functions -----------------------------------------------------------------------
def one_two_five():
    return [m * 10 ** d for d in range(7) for m in (1, 2, 5)]


def multiples(lo, hi, step):
    return [v for v in range(math.ceil(lo), math.floor(hi) + 1) if v % step == 0]


def test_tick_step_is_the_smallest_1_2_5_step_that_fits():
    for lo, hi, room in itertools.product([0, 1, -3, 0.5, -0.5], [0, 9, 19.5, 39, 127, 399, 4999],
                                          [1, 2, 4, 6, 10]):
        if hi < lo:
            continue
        step = tick_step(lo, hi, room)
        fitting = [s for s in one_two_five() if len(multiples(lo, hi, s)) <= room]
        assert step == fitting[0], (lo, hi, room)
    assert [tick_step(0, 39, n) for n in (10, 8, 4, 2, 1)] == [5, 5, 10, 20, 50]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_ticks"):
            tick_step(0, 10, bad)


def test_tick_values_fit_the_axis_length():
    # a gate panel about 1.7 inches wide: 40 steps labelled every 10
    assert tick_values(-0.5, 39.5, 1.7).tolist() == [0, 10, 20, 30]
    assert tick_values(-0.5, 39.5, 3.5).tolist() == list(range(0, 40, 5))
    assert tick_values(-0.5, 19.5, 7.0).tolist() == list(range(0, 20, 2))   # at most 10 labels
    assert tick_values(1, 15, 5.0).tolist() == [2, 4, 6, 8, 10, 12, 14]       # epochs 1..15
    assert tick_values(0, 0, 2.0).tolist() == [0]
    assert tick_values(0, np.nan, 2.0).tolist() == []
    assert tick_values(3, 1, 2.0).tolist() == [] and tick_values(0.2, 0.8, 2.0).tolist() == []
    for inches, lo, hi, vertical in itertools.product([0.5, 1.0, 2.2, 4.0, 9.0], [-0.5, 0, 3],
                                                      [9, 39.5, 127.5, 399, 12000], [False, True]):
        ticks = tick_values(lo, hi, inches, vertical)
        room = max_ticks(inches, lo, hi, vertical)
        assert 1 <= len(ticks) <= room <= 10
        assert all(lo <= t <= hi for t in ticks) and len(set(np.diff(ticks))) <= 1
        if not vertical:        # the labels' widths (digits at 6.5 pt + a gap) fit the length
            chars = max(len(str(int(t))) for t in ticks)
            assert len(ticks) * (6.5 * chars + 12) <= 72 * inches or len(ticks) <= 2
    # longer labels need more room: 3-digit labels get fewer ticks than 1-digit ones
    assert max_ticks(2.0, 0, 400) < max_ticks(2.0, 0, 9)
    assert max_ticks(2.0, 0, 400, vertical=True) == max_ticks(2.0, 0, 9, vertical=True)


def brute_top(values, k):
    """The k units by max |value| over time, the largest first, ties by index, NaN largest."""
    peaks = []
    for u in range(values.shape[1]):
        col = [abs(float(v)) for v in values[:, u]]
        peaks.append((math.inf if any(math.isnan(v) for v in col) else max(col), u))
    order = sorted(peaks, key=lambda p: (-p[0], p[1]))
    return [u for _, u in order[:k]]


def test_top_units_picks_the_largest_magnitudes(rng):
    for shape in [(40, 128), (5, 300), (1, 9), (40, 8), (40, 3)]:
        values = rng.standard_normal(shape) * rng.uniform(0.1, 3, shape[1])
        got = top_units(values, 8)
        if shape[1] <= 8:
            assert got.tolist() == list(range(shape[1]))        # all of them, in index order
        else:
            assert got.tolist() == brute_top(values, 8)
    planted = np.zeros((6, 20))
    planted[2, 17], planted[4, 3], planted[0, 11] = -5.0, 4.0, 4.0     # a negative peak counts
    planted[1, 9] = np.nan
    assert top_units(planted, 4).tolist() == [9, 17, 3, 11]            # NaN first; tie by index
    assert top_units(planted, 4).tolist() == brute_top(planted, 4)
    with pytest.raises(ValueError, match="top=0 must be a positive integer"):
        top_units(planted, 0)
    with pytest.raises(ValueError, match=r"shape \(steps, units\)"):
        top_units(planted[0], 3)


def test_captions_and_elided_vectors():
    assert units_caption(8, 128, "h") == "top 8 of 128 units by max |h|"
    assert units_caption(8, 8, "c") == "all 8 units"
    assert units_caption(1, 1, "h") == "all 1 unit"
    assert elide([0.5, -1.0]) == "[0.5000, -1.0000]"
    long = elide(np.arange(60) / 10, digits=1, limit=3)
    assert long == "[0.0, 0.1, 0.2, ...] (60 values, the first 3 shown)"


# --- the pictures -------------------------------------------------------------------------------
def char_lstm():
    set_random_seed(3)
    i = Input((T,), name="chars")
    h = Embedding(VOCAB, 32, name="embed")(i)
    h = LSTM(UNITS, name="lstm")(h)
    model = Model(i, Dense(VOCAB, activation="softmax", name="next_char")(h), name="char_lstm")
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    rng = np.random.default_rng(7)
    x = rng.integers(0, VOCAB, (2, T))
    y = np.eye(VOCAB, dtype="float32")[rng.integers(0, VOCAB, 2)]
    return model, x, y


def bidirectional_stack():
    set_random_seed(4)
    i = Input((T, VOCAB), name="one_hot")
    h = Bidirectional(LSTM(UNITS, return_sequences=True, name="lstm_1"), name="bi")(i)
    h = LSTM(UNITS, name="lstm_2")(h)
    model = Model(i, Dense(VOCAB, activation="softmax", name="next_char")(h), name="bi_stack")
    rng = np.random.default_rng(8)
    x = np.eye(VOCAB, dtype="float32")[rng.integers(0, VOCAB, (2, T))]
    return model, x


@pytest.fixture(scope="module")
def big():
    model, x, y = char_lstm()
    return model, x, y, trace(model, x)


def drawn(fig):
    """Draw ``fig`` as the report does (80 dpi, the layout run); return its renderer."""
    fig.set_dpi(80)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def collisions(fig):
    """Pairs of tick labels, on one axis of one panel, whose boxes overlap once drawn."""
    renderer = drawn(fig)
    found = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            eps = 1e-9 * max(1.0, abs(hi - lo))
            ticks = zip(axis.get_majorticklocs(), axis.get_major_ticks())
            boxes = sorted((loc, t.label1.get_window_extent(renderer)) for loc, t in ticks
                           if lo - eps <= loc <= hi + eps and t.label1.get_visible()
                           and t.label1.get_text())
            for (l1, a), (l2, b) in zip(boxes, boxes[1:]):
                if a.overlaps(b):
                    found.append((ax.get_title() or ax.get_ylabel(), axis.axis_name, l1, l2))
    return found


def line_panel(fig):
    """The per-unit panel: the axes with a legend titled "unit"."""
    [ax] = [a for a in fig.axes if a.get_legend() and a.get_legend().get_title().get_text() == "unit"]
    return ax


def test_many_units_show_the_top_8_by_magnitude_with_a_legend(big):
    model, x, y, tr = big
    lt = tr["lstm"]
    for plot, q in ((plot_hidden_states, "h"), (plot_cell_state, "c")):
        fig = plot(tr, "lstm", sample=1)
        ax = line_panel(fig)
        values = lt[q][1]
        want = brute_top(values, 8)
        lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        assert [ln.get_label() for ln in lines] == [str(u) for u in want]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(u) for u in want]
        for ln, u in zip(lines, want):
            np.testing.assert_array_equal(ln.get_ydata(), values[:, u])
        assert ax.get_title() == f"{q} per unit: top 8 of 128 units by max |{q}|"
        heat = [a for a in fig.axes if a.images][0]           # the heat map keeps every unit
        assert heat.images[0].get_array().shape == (UNITS, T)
        assert collisions(fig) == []
    fig = plot_hidden_states(tr, "lstm", top=3)
    assert len(line_panel(fig).get_legend().get_texts()) == 3
    assert "top 3 of 128 units" in line_panel(fig).get_title()
    with pytest.raises(ValueError, match="top=0"):
        plot_cell_state(tr, "lstm", top=0)


def test_a_small_layer_draws_all_its_units():
    model, x, y, history = demo_model(epochs=1)
    tr = trace(model, x[:2])
    fig = plot_hidden_states(tr)
    ax = line_panel(fig)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(u) for u in range(8)]
    assert ax.get_title() == "h per unit: all 8 units"
    assert collisions(fig) == []


def test_no_tick_labels_collide_on_big_layers_and_long_sequences(big):
    model, x, y, tr = big
    figs = [plot_gates(tr, "lstm"), plot_forecast(np.tile(y, (60, 1)), np.tile(y, (60, 1)))]
    # 500 steps, 300 units: three-digit labels on every axis
    set_random_seed(5)
    i = Input((500, 3))
    long = Model(i, Dense(1, name="d")(LSTM(300, name="long")(i)))
    xl = np.random.default_rng(0).standard_normal((1, 500, 3)).astype("float32")
    lt = trace(long, xl)["long"]
    figs += [plot_gates(lt), plot_cell_state(lt), plot_hidden_states(lt),
             plot_history({"loss": np.linspace(1, 0.1, 250), "val_loss": np.linspace(1, 0.2, 250)})]
    for fig in figs:
        assert collisions(fig) == [], fig.axes[0].get_title()
    ax = [a for a in figs[2].axes if a.images][0]            # the input gate, 500 steps
    assert 2 <= len([t for t in ax.get_xticks() if 0 <= t < 500]) <= 5


def test_gradient_flow_and_attention_ticks_do_not_collide():
    set_random_seed(6)
    i = Input((150, 2))
    h = LSTM(6, return_sequences=True, name="first")(i)
    model = Model(i, Dense(1, name="d")(LSTM(6, name="second")(h)))
    xf = np.random.default_rng(2).standard_normal((1, 150, 2)).astype("float32")
    flow = gradient_flow(model, xf, np.ones((1, 1), "float32"), loss="mse")
    fig = plot_gradient_flow(flow)
    assert collisions(fig) == []
    assert len(fig.axes[0].get_legend().get_texts()) == 2
    from unrolled.layers import MultiHeadAttention
    i = Input((120, 4))
    a = MultiHeadAttention(num_heads=2, key_dim=2, name="attn")(i, i)
    att = Model(i, Dense(1, name="d")(a))
    xa = np.random.default_rng(1).standard_normal((1, 120, 4)).astype("float32")
    assert collisions(plot_attention(trace(att, xa))) == []


def test_the_collision_check_can_fail():
    """A panel two inches wide with all 40 steps labelled is caught."""
    fig = Figure(figsize=(2.5, 2), layout="constrained")
    ax = fig.subplots()
    ax.plot(np.arange(40))
    ax.set_xticks(range(40))
    assert collisions(fig)


# --- the page in Chromium ---------------------------------------------------------------------
# Appended to a copy of the report (the report itself holds no script): after the load,
# every element either fits the viewport or sits in a container that scrolls sideways and
# itself fits; the result is written into the page for --dump-dom to print.
MEASURE = """<script>
window.addEventListener('load', function () {
  var W = document.documentElement.clientWidth;
  var out = {width: W, innerWidth: window.innerWidth,
             scrollWidth: document.documentElement.scrollWidth, overflowing: [], scrolling: [],
             shrunk: [], images: 0};
  function scroller(el) {
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      var s = getComputedStyle(p).overflowX;
      if (s === 'auto' || s === 'scroll') return p;
    }
    return null;
  }
  document.body.querySelectorAll('*').forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 || (r.right <= W + 0.5 && r.left >= -0.5)) return;
    var box = scroller(el);
    if (box && box.getBoundingClientRect().right <= W + 0.5) return;
    out.overflowing.push(el.tagName + '.' + el.className + ': ' + el.textContent.slice(0, 60));
  });
  document.querySelectorAll('.scroll, .equations, pre').forEach(function (el) {
    if (el.scrollWidth > el.clientWidth + 1) out.scrolling.push(el.className || el.tagName);
  });
  document.querySelectorAll('img').forEach(function (img) {
    out.images += 1;
    if (img.width < 0.9 * img.naturalWidth) out.shrunk.push(img.alt);
  });
  var pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def measure(page, tmp_path, width):
    """Open a copy of ``page`` with the measuring script at ``width`` CSS pixels."""
    copy = tmp_path / f"measured-{width}-{page.name}"
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"),
                    encoding="utf-8")
    dom, log = open_in_chromium(copy, tmp_path, f"--window-size={width},900", "--dump-dom")
    assert console_problems(log) == []
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def check_readable(page, tmp_path, images):
    desktop = measure(page, tmp_path, 1100)
    assert desktop["overflowing"] == [] and desktop["scrollWidth"] <= desktop["width"]
    assert desktop["scrollWidth"] <= desktop["innerWidth"]
    assert desktop["images"] == images
    assert desktop["scrolling"] == []           # at desktop width, tables wrap: nothing scrolls
    assert desktop["shrunk"] == []              # and the pictures are shown at their size
    narrow = measure(page, tmp_path, 640)       # half a laptop screen: scroll boxes, no page overflow
    assert narrow["overflowing"] == [] and narrow["scrollWidth"] <= narrow["width"]
    return desktop, narrow


def test_the_measure_catches_a_page_wider_than_the_window(tmp_path):
    wide = tmp_path / "wide.html"
    row = "".join(f"<td>{v:.4f}</td>" for v in np.linspace(0, 1, 200))
    wide.write_text("<html><body><table class='trace'><tr>" + row + "</tr></table>"
                    "<div class='scroll' style='overflow-x: auto'><table><tr>" + row +
                    "</tr></table></div></body></html>")
    got = measure(wide, tmp_path, 800)
    assert got["scrollWidth"] > got["width"]
    assert len([o for o in got["overflowing"] if o.startswith("TABLE.trace")]) == 1   # not the boxed one


def test_small_model_report_is_readable_in_chromium(tmp_path):
    model, x, y, history = demo_model(epochs=2)
    page = tmp_path / "small.html"
    report(model, x[:4], y[:4], path=page, history=history)
    text = page.read_text()
    assert "right: all 8 units, one line each" in text
    check_readable(page, tmp_path, images=6)


def test_char_lstm_128_report_is_readable_in_chromium(big, tmp_path):
    model, x, y, _ = big       # no targets: the gradient flow's Jacobians of 256 states take long
    page = tmp_path / "char.html"
    report(model, x, path=page)
    text = page.read_text()
    assert text.count("top 8 of 128 units by max |h|") == 1
    assert text.count("top 8 of 128 units by max |c|") == 1
    assert "(units [0, 1, 2, 3] of 128)" in text
    assert "(32 values, the first 12 shown)" in text           # the embedded x_t, cut
    assert "step t=39 of 40" in text
    check_readable(page, tmp_path, images=3)


def test_bidirectional_stack_report_is_readable_in_chromium(tmp_path):
    model, x = bidirectional_stack()
    page = tmp_path / "bi.html"
    report(model, x, path=page, sample=1)
    text = page.read_text()
    for name in ("bi/forward_lstm_1", "bi/backward_lstm_1", "lstm_2"):
        assert f"{name} hidden states" in text, name
    assert text.count("top 8 of 128 units by max |h|") == 3
    assert "(256 values, the first 12 shown)" in text          # lstm_2 reads both directions
    check_readable(page, tmp_path, images=9)
