"""Optional dependencies (issue 24.6): without matplotlib, pandas or dask, the feature
that needs one says which extra installs it, before doing any work, in one line; the
examples skip their plots and report and say so. Each case blocks the module in a fresh
process (``sys.modules[name] = None`` makes its import fail)."""
import subprocess
import sys

import pytest

PROGRAM = r"""
import sys
sys.modules[sys.argv[1]] = None
import numpy as np
from unrolled import cli
what = sys.argv[2]
if what == "explain":
    print("exit", cli.main(["explain", "--demo", "--out", sys.argv[3] + "/r.html"]))
elif what == "dante":
    print("exit", cli.main(["example", "dante", "--quick", "--out-dir", sys.argv[3]]))
elif what == "dataframe":
    from unrolled.explain import trace
    import unrolled
    m = unrolled.Sequential([unrolled.Input((4, 2)), unrolled.layers.LSTM(3)])
    trace(m, np.zeros((1, 4, 2), np.float32)).to_dataframe()
elif what == "dask":
    import unrolled
    from unrolled.interop import score_with_dask
    m = unrolled.Sequential([unrolled.Input((4, 2)), unrolled.layers.LSTM(3)])
    score_with_dask(m, np.zeros((2, 4, 2)), chunks=1)
"""


@pytest.mark.parametrize("module,what,extra,code", [
    ("matplotlib", "explain", "plot", 1),
    ("pandas", "dataframe", "explain", None),
    ("dask", "dask", "dask", None),
])
def test_a_missing_dependency_names_its_extra_in_one_line(module, what, extra, code, tmp_path):
    out = subprocess.run([sys.executable, "-c", PROGRAM, module, what, str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    message = f"needs {module}, which is not installed: pip install 'unrolled[{extra}]'"
    assert message in out.stderr, out.stderr[-2000:]
    if code is not None:                          # the command: one line, exit 1, no work done
        assert out.stdout.strip().endswith(f"exit {code}")
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
        assert not list(tmp_path.iterdir())


def test_dante_without_matplotlib_trains_and_says_what_it_skipped(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROGRAM, "matplotlib", "dante", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("exit 0"), out.stderr[-2000:]
    assert "no explain report is written (pip install 'unrolled[plot]'" in out.stdout
    assert "no plots are saved" in out.stdout
