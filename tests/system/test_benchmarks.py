"""The benchmark harness in its seconds-long smoke mode (CI times nothing; `make bench` does).

It runs unrolled, PyTorch and Keras each in its own process on the smoke workloads and
must print a full table: a time for every framework and a ratio on every row.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_prints_a_complete_table():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = [[line for line in block.splitlines() if line.startswith("| ") and "---" not in line]
              for block in proc.stdout.split("\n\n")]
    tables = [t for t in tables if t]
    rows, cold = tables[0], tables[-1]
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
    # The CPU the numbers belong to: its vector extensions and OpenBLAS's kernels.
    assert re.search(r"^CPU: .+; AVX2 (yes|no), AVX-512 .+, AMX .+; .*core type \w+",
                     proc.stdout, re.M), proc.stdout
    # Cold starts: a time for each framework and the ratios, for both models.
    from benchmarks.cold import MODELS
    assert "cold start" in cold[0]
    assert [r.split(" | ")[0][2:] for r in cold[1:]] == list(MODELS)[:1]     # smoke: one
    for row in cold[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(re.fullmatch(r"[\d.]+ s", c) for c in cells[1:4]), row
        assert float(cells[4]) > 0 and float(cells[5]) > 0, row


def test_the_rate_table_times_the_product_the_layer_issues(monkeypatch):
    """Folded layers issue [x_t | h] @ [W; U], (B, F+M) @ (F+M, G*M); the others h @ U."""
    from benchmarks.__main__ import recurrent_rates
    from unrolled.fast import kernels
    from unrolled.fast.cells import LSTMSequence, SimpleRNNSequence
    monkeypatch.setattr(SimpleRNNSequence, "fold_min_macs", 0)
    monkeypatch.setattr(LSTMSequence, "fold_min_macs", 0)
    rows, reference = recurrent_rates([(8, 2, 3, 4)], repeats=1)
    folded = kernels.folds("float32")
    expected = {"SimpleRNN": "[x\\|h] @ [W;U]: (8x7) @ (7x4)" if folded else "(8x4) @ (4x4)",
                "LSTM": "[x\\|h] @ [W;U]: (8x7) @ (7x16)" if folded else "(8x4) @ (4x16)",
                "GRU": "(8x4) @ (4x12)"}
    assert {cell: product for cell, _, product, _ in rows} == expected
    assert reference > 0 and all(rate > 0 for *_, rate in rows)
    monkeypatch.setattr(SimpleRNNSequence, "fold_min_macs", 2 ** 24)
    rows, _ = recurrent_rates([(8, 2, 3, 4)], repeats=1)
    assert rows[0][2] == "(8x4) @ (4x4)"                # too small to fold by default


def test_the_profile_times_the_parts_of_a_call(monkeypatch):
    """``benchmarks.profile``: the whole call and its products, folded or not."""
    from benchmarks.profile import breakdown
    from unrolled.fast import kernels
    from unrolled.fast.cells import LSTMSequence
    (whole, products, projection), folded = breakdown("GRU", 4, 3, 2, 5, repeats=3)
    assert not folded and whole > 0 and products > 0 and projection > 0
    monkeypatch.setattr(LSTMSequence, "fold_min_macs", 0)
    (whole, products, projection), folded = breakdown("LSTM", 4, 3, 2, 5, repeats=3)
    assert folded == kernels.folds("float32") and whole > 0 and products > 0


def test_end_to_end_smoke_prints_every_example_in_every_framework():
    """``benchmarks.endtoend --smoke``: one round of the three examples (reduced data, one
    epoch), each framework in its own process; a wall time, a ratio and final losses on every
    row, the threads each used, and where each run's time went."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.endtoend", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = [[line for line in block.splitlines() if line.startswith("| ") and "---" not in line]
              for block in proc.stdout.split("\n\n")]
    walls, phases = [t for t in tables if t]
    assert "PyTorch" in walls[0] and "Keras" in walls[0] and "final loss" in walls[0]
    assert [r.split(" ")[1] for r in walls[1:]] == ["sine", "co2", "dante"]
    for row in walls[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(re.fullmatch(r"[\d.]+ s", c) for c in cells[1:4]), row
        assert float(cells[4]) > 0 and cells[5] == "-", row     # one round: no range
        losses = [[float(v) for v in part.split(",")] for part in cells[6].split(" / ")]
        assert len(losses) == 3 and all(0 < v < 10 for part in losses for v in part), row
        assert len({len(part) for part in losses}) == 1, row   # sine: two models in each
    assert re.search(r"^Threads .*unrolled: BLAS \d+ threads.*PyTorch: torch \d+ intra-op.*"
                     r"Keras: TensorFlow intra-op", proc.stdout, re.M), proc.stdout
    assert re.search(r"^CPU: .+; AVX2 (yes|no), AVX-512 .+, AMX .+; .*core type \w+",
                     proc.stdout, re.M), proc.stdout
    assert len(phases) == 1 + 9 and all(re.fullmatch(r"[\d.]+ s", c.strip())
                                        for row in phases[1:] for c in row.split("|")[3:9])
