"""The four examples in quick mode: each runs in seconds and must show a real outcome."""
import importlib.util

import numpy as np
import pytest

from unrolled.data import Vocabulary, load_inferno
from unrolled.examples import EXAMPLES, attention, co2, dante, example_main, sine

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def check_plots(result, out_dir, names):
    """With matplotlib: the PNG files exist; without: none are claimed."""
    if not HAVE_MATPLOTLIB:
        assert result["plots"] == []
        return
    assert [p.split("/")[-1] for p in result["plots"]] == names
    for name in names:
        assert (out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sine_forecasters_learn_and_beat_naive(tmp_path):
    r = sine.run(quick=True, out_dir=str(tmp_path), verbose=False)
    for name in ("SimpleRNN", "LSTM"):
        m = r[name]
        assert m["final_loss"] < m["first_loss"]
        assert m["one_step_mse"] < r["naive_one_step_mse"]
        assert np.isfinite(m["multi_step_mse"]) and np.isfinite(m["multi_step_mse_100"])
    check_plots(r, tmp_path, ["sine_forecasts.png"])


@pytest.fixture(scope="module")
def co2_main(tmp_path_factory):
    """``example_main("co2", quick=True, out_dir=...)`` run once, as ``unrolled example co2
    --quick --out DIR`` runs it: its exit code, what it printed, what ``co2.run`` returned
    and the folder. The example's outcome and the command's messages are asserted on this
    one run (a quick co2 run takes seconds)."""
    import contextlib
    import io
    out_dir = tmp_path_factory.mktemp("co2")
    returned = []

    def run(*args, real=co2.run, **kwargs):
        returned.append(real(*args, **kwargs))
        return returned[-1]
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(co2, "run", run)
        code = example_main("co2", quick=True, out_dir=str(out_dir))
    assert len(returned) == 1
    return code, printed.getvalue(), returned[0], out_dir


def test_co2_model_beats_the_naive_forecast_on_the_test_part(co2_main):
    _, _, r, tmp_path = co2_main
    assert r["model_mae"] < 0.6 * r["naive_mae"]
    assert r["model_rmse"] < r["naive_rmse"]
    assert r["naive_mae"] == pytest.approx(1.130, abs=1e-3)    # the data's own property
    assert r["train_loss"][-1] < r["train_loss"][0]
    assert np.isfinite(r["recursive_mae"])
    check_plots(r, tmp_path, ["co2_forecast.png"])


def test_dante_loss_falls_and_samples_decode(tmp_path):
    r = dante.run(quick=True, out_dir=str(tmp_path), verbose=False)
    losses = r["train_loss"]
    assert losses[-1] < losses[0] and losses[-1] < r["uniform_loss"]
    assert r["val_loss"][-1] < r["uniform_loss"] and np.isfinite(r["test_loss"])
    vocab = Vocabulary(load_inferno())
    assert set(r["samples"]) == {0.5, 1.0}
    for text in r["samples"].values():
        assert isinstance(text, str) and len(text) == 120
        assert vocab.decode(vocab.encode(text)) == text        # only known characters
    assert np.isfinite(r["verse_loss"])
    report = (tmp_path / "dante_verse_report.html").read_text()
    assert r["explain"].endswith("dante_verse_report.html") and "<html" in report.lower()
    check_plots(r, tmp_path, ["dante_training.png"])


def test_attention_learns_to_reverse_by_looking_at_the_mirrored_step(tmp_path):
    r = attention.run(quick=True, out_dir=str(tmp_path), verbose=False)
    assert r["loss"][-1] < 0.5 * r["loss"][0]
    assert r["digit_accuracy"] > 0.5                  # chance: 0.1; the full run reaches 1.0
    # the decoder's step t attends to the encoder's step L-1-t (uniform would be 1/L)
    assert r["attention_on_mirror"] > 4 / attention.L
    check_plots(r, tmp_path, ["attention_reverse.png"])


def test_sampling_temperature_sharpens_the_distribution():
    logits = np.array([2.0, 1.0, 0.0])
    cold, hot = dante.softmax(logits / 0.1), dante.softmax(logits / 10.0)
    assert cold[0] > 0.99 and np.ptp(hot) < 0.1
    np.testing.assert_allclose(dante.softmax(logits).sum(), 1.0)


def test_no_out_dir_saves_no_plots(tmp_path):
    r = co2.run(quick=True, out_dir=None, verbose=False)
    assert r["plots"] == []


def test_example_main(tmp_path, capsys, co2_main):
    assert example_main("nope", quick=True, out_dir=str(tmp_path)) == 2
    out = capsys.readouterr().out
    assert "Unknown example 'nope'" in out and all(name in out for name in EXAMPLES)
    code, out, _, out_dir = co2_main
    assert code == 0
    assert "naive: last value" in out and "Example 'co2' finished in" in out
    assert f"figures and files go to {out_dir}" in out


def test_the_command_writes_under_unrolled_examples_name_by_default(tmp_path):
    """issue 24.5: never into ./docs of whatever directory the user is in."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "unrolled", "example", "sine", "--quick"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    target = tmp_path / "unrolled-examples" / "sine"
    assert str(target) in out.stdout
    assert not (tmp_path / "docs").exists()
    if HAVE_MATPLOTLIB:
        assert list(target.glob("*.png"))


def test_run_leaves_the_callers_matplotlib_backend_alone(tmp_path):
    import subprocess
    import sys
    program = ("import matplotlib\nmatplotlib.use('svg')\n"
               "from unrolled.examples import sine\n"
               f"sine.run(quick=True, out_dir={str(tmp_path)!r}, verbose=False)\n"
               "print(matplotlib.get_backend())\n")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "svg"
