"""Four end-to-end examples, three on real data, each a ``run(quick=False, out_dir=..., seed=0)``.

* ``sine``:  forecasting a noisy sine wave, SimpleRNN against LSTM, one step ahead and many
  steps ahead (predictions fed back as inputs).
* ``co2``:   forecasting monthly CO2 at Mauna Loa (real data shipped with the package),
  against the naive last-value forecast.
* ``dante``: a character-level LSTM language model on Dante's Inferno (Cantos I-III),
  sampled with temperature, min-char-rnn style.
* ``attention``: sequence to sequence with attention (encoder and decoder LSTMs,
  AdditiveAttention), reversing strings of digits, with the attention map.

``run`` prints its progress and results, saves its plots as PNG files in ``out_dir`` (when
matplotlib is installed; ``out_dir=None`` saves none) and returns a dict of the numbers it
printed. ``quick=True`` is a reduced version that finishes in seconds (the tests use it).
From the command line: ``unrolled example NAME`` (see ``example_main``).
"""
import importlib
import os
import time

EXAMPLES = {
    "sine": "sine-wave forecasting: SimpleRNN vs LSTM, one-step and multi-step",
    "co2": "Mauna Loa CO2, monthly 1965-2001: LSTM vs the naive last-value forecast",
    "dante": "character-level LSTM on Dante's Inferno, sampling with temperature",
    "attention": "seq2seq with attention reversing digit strings, and its attention map",
}


def example_main(name, quick=False, out_dir=None, seed=0):
    """Run example ``name`` as ``unrolled example NAME [--quick] [--out DIR]`` does; its
    figures and files go to ``out_dir``, by default ``./unrolled-examples/NAME/``.

    Returns a process exit code: 0 when the example ran, 2 for an unknown name (the
    known names are printed).
    """
    if name not in EXAMPLES:
        print(f"Unknown example {name!r}. Available examples:")
        for key, text in EXAMPLES.items():
            print(f"  {key:9s} {text}")
        return 2
    module = importlib.import_module(f"{__name__}.{name}")
    if out_dir is None:
        out_dir = os.path.join("unrolled-examples", name)
    print(f"Example {name!r}: figures and files go to {os.path.abspath(out_dir)}")
    start = time.perf_counter()
    module.run(quick=quick, out_dir=out_dir, seed=seed)
    print(f"\nExample {name!r} finished in {time.perf_counter() - start:.1f} s.")
    return 0


# --- small helpers shared by the examples ------------------------------------------------------

def section(title, verbose=True):
    if verbose:
        print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def say(verbose, *args):
    if verbose:
        print(*args)


class _Figures:
    """The part of pyplot the examples use, on plain ``matplotlib.figure.Figure`` objects:
    no backend is chosen or changed, so a caller's matplotlib setup stays as it was."""

    def subplots(self, *args, figsize=None, **kwargs):
        from matplotlib.figure import Figure
        fig = Figure(figsize=figsize)
        return fig, fig.subplots(*args, **kwargs)

    def close(self, fig):
        pass                                    # a Figure is not registered with pyplot


def pyplot(out_dir, verbose=True):
    """What the examples draw with (``subplots``, ``close``), or None (and why) if plots
    are off."""
    if out_dir is None:
        return None
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        say(verbose, "matplotlib is not installed, so no plots are saved "
                     "(pip install 'unrolled[plot]' to get them).")
        return None
    return _Figures()


def save(plt, fig, out_dir, filename, verbose=True):
    """Save ``fig`` as ``out_dir/filename`` (small PNG), close it, return the path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, filename)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    say(verbose, f"saved {path}")
    return path
