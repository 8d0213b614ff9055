"""The benchmark harness in its seconds-long smoke mode (CI times nothing; `make bench` does).

It runs unrolled, PyTorch and Keras each in its own process on the smoke workloads and
must print a full table: a time for every framework and a ratio on every row.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_smoke_prints_a_complete_table():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    header, body = rows[0], rows[1:]
    assert "PyTorch" in header and "Keras" in header
    from benchmarks.workloads import all_workloads, name
    assert [r.split(" | ")[0][2:] for r in body] == [name(w) for w in all_workloads(smoke=True)]
    for row in body:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(re.fullmatch(r"[\d.]+ (us|ms|s)", c) for c in cells[1:4]), row
        assert float(cells[4]) > 0, row
        assert cells[5] == "-", row                      # one round: no per-round range
    assert re.search(r"GEMM \(1024\^3\): [\d.]+ GFLOP/s", proc.stdout)
