"""explain plots, the HTML report (opened in headless Chromium), the CLI and the demo."""
import base64
import io
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from unrolled import cli
from unrolled.explain import (gradient_flow, plot_cell_state, plot_forecast, plot_gates,
                              plot_gradient_flow, plot_hidden_states, plot_history, report, trace)
from unrolled.explain.demo import demo_model
from unrolled.layers import GRU, Input, SimpleRNN
from unrolled.models import Model

from chromium import CHROMIUM_FLAGS, chromium, console_problems, open_in_chromium  # noqa: F401



@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    model, x, y, history = demo_model(epochs=3)
    path = tmp_path_factory.mktemp("report") / "report.html"
    report(model, x[:6], y[:6], path=path, steps=[0, 7, 19], history=history)
    return model, x[:6], y[:6], history, path


def test_plots_return_figures(demo):
    model, x, y, history, _ = demo
    tr = trace(model, x)
    figs = [plot_hidden_states(tr), plot_gates(tr, "lstm", sample=2), plot_cell_state(tr),
            plot_gradient_flow(gradient_flow(model, x, y)), plot_history(history),
            plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}),
            plot_forecast(y, model.predict(x, verbose=0))]
    assert all(isinstance(f, Figure) and f.axes for f in figs)
    i = Input((5, 2))
    g = GRU(3, return_sequences=True, name="g")(i)
    other = trace(Model(i, SimpleRNN(2, name="s")(g)), np.zeros((1, 5, 2)))
    assert isinstance(plot_gates(other, "g"), Figure)
    with pytest.raises(ValueError, match="SimpleRNN, which has no gates"):
        plot_gates(other, "s")
    with pytest.raises(ValueError, match="no cell state; only LSTM"):
        plot_cell_state(other, "g")
    with pytest.raises(ValueError, match="must match"):
        plot_forecast(np.zeros(4), np.zeros(5))
    with pytest.raises(ValueError, match="History"):
        plot_history({})


def test_report_is_one_self_contained_file(demo):
    *_, path = demo
    page = path.read_text()
    assert not re.search(r"https?://|<script|<link rel=.stylesheet|@import|url\(", page)
    images = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert len(images) == 6        # h, gates, c, gradient flow, forecast, training
    from matplotlib.image import imread
    for src in images:
        assert src.startswith("data:image/png;base64,")
        pixels = imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert pixels.shape[0] > 100 and pixels.std() > 0
    for text in ("Summary", "step t=0 of 20", "step t=7 of 20", "step t=19 of 20",
                 "f * c_prev + i * g", "Gradient flow through time", "Training",
                 "def predict(x):"):
        assert text in page, text


def test_report_renders_in_chromium_without_console_errors(demo, tmp_path):
    *_, path = demo
    dom, log = open_in_chromium(path, tmp_path, "--dump-dom")
    assert console_problems(log) == []
    assert "Gradient flow through time" in dom and dom.count("<img") == 6
    shot = tmp_path / "shot.png"
    _, log = open_in_chromium(path, tmp_path, "--window-size=1100,1600", f"--screenshot={shot}")
    assert console_problems(log) == []
    from matplotlib.image import imread
    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1100) and pixels.std() > 0.05


def test_console_check_catches_a_broken_page(tmp_path):
    """The check above can fail: a page with a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>notDefined();</script></body></html>")
    _, log = open_in_chromium(bad, tmp_path, "--dump-dom")
    assert any("notDefined" in line for line in console_problems(log))


def test_report_bad_inputs(demo, tmp_path):
    model, x, *_ = demo
    out = tmp_path / "r.html"
    with pytest.raises(ValueError, match=r"t=20 is out of range.*\[0, 19\]"):
        report(model, x, path=out, steps=[0, 20])
    with pytest.raises(ValueError, match=r"expected shape=\(None, 20, 1\)"):
        report(model, x[:, :5], path=out)
    with pytest.raises(ValueError, match="sample=9"):
        report(model, x, path=out, sample=9)
    with pytest.raises(TypeError, match="Model or Sequential"):
        report(model.get_layer("lstm"), x, path=out)
    assert not out.exists()                     # nothing written when the input is wrong


def test_cli_explain_demo_and_model_file(tmp_path, capsys, demo):
    out = tmp_path / "demo.html"
    assert cli.main(["explain", "--demo", "--out", str(out)]) == 0
    assert "Gradient flow" in out.read_text()
    model, x, y, *_ = demo
    try:
        from unrolled.models import load_model, save_model
        assert callable(load_model)
    except ImportError:
        assert cli.main(["explain", "m.npz", "--input", "x.npy"]) == 2
        assert "load_model is missing" in capsys.readouterr().err
        return
    save_model(model, tmp_path / "m.unrolled.npz")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    out = tmp_path / "file.html"
    assert cli.main(["explain", str(tmp_path / "m.unrolled.npz"), "--input", str(tmp_path / "data.npz"),
                     "--out", str(out), "--steps", "1,2"]) == 0
    assert "step t=2 of 20" in out.read_text()
    np.save(tmp_path / "bad.npy", np.zeros((2, 4, 3)))
    assert cli.main(["explain", str(tmp_path / "m.unrolled.npz"), "--input", str(tmp_path / "bad.npy")]) == 1
    assert "expected shape=(None, 20, 1)" in capsys.readouterr().err
    assert cli.main(["explain"]) == 2


def test_demo_shows_the_equations_and_the_generated_program_without_tensorflow():
    code = ("import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras'] = None\n"
            "from unrolled import cli\ncli._keras_available = lambda: False\n"
            "sys.exit(cli.demo())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "6. One step written out" in out and "h      = tanh(a)" in out
    assert "for t in range(x.shape[1]):" in out
    assert out.count("(matches to 1e-6)") == 2
    assert "TensorFlow/Keras is not installed" in out
