"""End to end: the three shipped examples' models trained for a fixed number of epochs, in
unrolled, PyTorch and Keras, each run a fresh process timed from the outside.

``python -m benchmarks.endtoend`` prints the table (``--write`` also puts it in
RESULTS.md, in the section of this machine's kind of CPU; ``--smoke`` is one tiny round:
reduced data, one epoch); ``make bench`` adds it to its run. For each example
(``sine``, ``co2``, ``dante``; ``unrolled.examples``) each framework runs
``benchmarks/e2e_<framework>.py`` in its own ``python`` process: imports, data, build,
``fit`` for ``EPOCHS[example]`` epochs (no early stopping), one ``predict`` on the test
windows, exit. The same architecture, data (checked: the runs report the sums of their
arrays), batch size 32, optimizer (Adam at the example's learning rate, Dante's
``clipnorm``) and epochs; each framework on its default settings (threads included:
printed below the table). After an untimed warm-up, the frameworks take turns, their order
rotating every round; ``ROUNDS`` rounds; the table keeps each one's median wall time, and
the ratio of each round (the frameworks ran back to back) shows the spread. A timed run in
which unrolled compiled kernels (numba's cache misses) is named under the table. The final training losses are
printed side by side: the same order of magnitude says the three trained the same thing
(their initializers and random streams differ, so it is not a parity test).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORKS = ("unrolled", "torch", "keras")
NAMES = {"unrolled": "unrolled", "torch": "PyTorch", "keras": "Keras"}
ROUNDS = 3
EPOCHS = {"sine": 20, "co2": 20, "dante": 10}
MODELS = {
    "sine": "SimpleRNN(32) and LSTM(32), 480 windows of 20",
    "co2": "LSTM(32), 286 windows of 24, validation",
    "dante": "Embedding(V,32) LSTM(128) Dense(V), 244 windows of 100, validation",
}
_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}


def run_one(framework, example, epochs, quick=False):
    """``(wall seconds, report)`` of one fresh process: ``report`` is the JSON line the
    script prints (phases, losses, data sums, threads); the wall time leaves out only the
    script's own reporting after ``predict`` (``bookkeeping``)."""
    command = [sys.executable, "-m", f"benchmarks.e2e_{framework}", example, str(epochs)]
    start = time.perf_counter()
    proc = subprocess.run(command + (["quick"] if quick else []), cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, **_ENV})
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{' '.join(command)} failed (exit code {proc.returncode}):\n"
                           + proc.stderr[-3000:])
    report = json.loads(lines[-1])
    return wall - report["bookkeeping"], report


def warm_up(frameworks, examples):
    """One untimed process per framework running every example on reduced data: fills the
    file cache and numba's kernel cache, as any earlier run on the machine would have (the
    first compile of unrolled's kernels happens once per machine, not once per run)."""
    for fw in frameworks:
        print(f"end to end, warm-up: {fw}", file=sys.stderr, flush=True)
        run_one(fw, ",".join(examples), 1, quick=True)


def run(frameworks=FRAMEWORKS, rounds=ROUNDS, examples=tuple(EPOCHS), quick=False):
    """``{example: {framework: [(wall, report) per round]}}``; in each round every example
    runs in every framework, the frameworks' order rotating from round to round, after a
    warm-up. ``quick`` (the smoke run): one process per framework runs every example on
    reduced data for one epoch, and each example's row gets that process's start-up."""
    times = {ex: {fw: [] for fw in frameworks} for ex in examples}
    if quick:
        for fw in frameworks:
            print(f"end to end, smoke: {fw}", file=sys.stderr, flush=True)
            wall, report = run_one(fw, ",".join(examples), 1, quick=True)
            shared = wall - sum(inside(report, ex) for ex in examples)
            for ex in examples:
                times[ex][fw].append((shared + inside(report, ex), report))
        check_same_data(times)
        return times
    warm_up(frameworks, examples)
    for r in range(rounds):
        order = list(frameworks[r % len(frameworks):]) + list(frameworks[:r % len(frameworks)])
        for ex in examples:
            for fw in order:
                print(f"end to end, round {r + 1}/{rounds}: {ex}, {fw}", file=sys.stderr,
                      flush=True)
                times[ex][fw].append(run_one(fw, ex, EPOCHS[ex]))
        check_same_data(times)
    return times


def inside(report, example):
    """Seconds the script spent on ``example`` (data, build, fit, predict)."""
    return sum(report["results"][example]["phases"].values())


def check_same_data(times):
    """Every framework's run of an example saw arrays of the same shapes and sums."""
    for ex, per in times.items():
        seen = {fw: runs[-1][1]["results"][ex]["data"] for fw, runs in per.items() if runs}
        first, reference = next(iter(seen.items()))
        for fw, data in seen.items():
            same = len(data) == len(reference) and all(
                s == rs and abs(v - rv) <= 1e-6 * max(1.0, abs(rv))
                for (s, v), (rs, rv) in zip(data, reference))
            if not same:
                raise RuntimeError(f"{ex}: {fw} trained on other data than {first}: "
                                   f"{data} against {reference}")


def _losses(report, ex):
    return ", ".join(f"{v:.4g}" for v in report["results"][ex]["losses"].values())


def table(times, quick=False):
    """The wall-time table, then each framework's threads and where its time went."""
    frameworks = list(next(iter(times.values())))
    others = [f for f in ("torch", "keras") if f in frameworks]
    lines = ["| end to end (fresh process: import, data, build, fit, predict) | "
             + " | ".join(NAMES[f] for f in frameworks)
             + " | unrolled / fastest other | per round | final loss: "
             + " / ".join(NAMES[f] for f in frameworks) + " |",
             "|---|" + "---:|" * len(frameworks) + "---:|---:|---:|"]
    for ex, per in times.items():
        median = {f: statistics.median(w for w, _ in per[f]) for f in frameworks}
        if "unrolled" in median and others:
            ratio = f"{median['unrolled'] / min(median[f] for f in others):.2f}"
            rounds = [per["unrolled"][r][0] / min(per[f][r][0] for f in others)
                      for r in range(len(per["unrolled"]))]
            spread = f"{min(rounds):.2f}-{max(rounds):.2f}" if len(rounds) > 1 else "-"
        else:
            ratio = spread = "-"
        epochs = 1 if quick else EPOCHS[ex]
        label = (f"{ex}: {MODELS[ex]}, {epochs} epochs" if not quick
                 else f"{ex} (smoke: reduced data), {epochs} epoch")
        lines.append(f"| {label} | " + " | ".join(f"{median[f]:.2f} s" for f in frameworks)
                     + f" | {ratio} | {spread} | "
                     + " / ".join(_losses(per[f][-1][1], ex) for f in frameworks) + " |")
    compiled, seen = [], set()          # (the smoke run's one process serves every example)
    for ex, per in times.items():
        for r, (_, report) in enumerate(per.get("unrolled", [])):
            if report.get("compiled") and id(report) not in seen:
                seen.add(id(report))
                compiled.append(f"{report['compiled']} in round {r + 1} of {ex}")
    if compiled:
        lines += ["", "unrolled compiled kernels during timed runs (their times include it): "
                  + ", ".join(compiled) + "."]
    lines += ["", "Threads (each framework's defaults): " + "; ".join(
        f"{NAMES[f]}: {next(iter(times.values()))[f][-1][1]['threads']}" for f in frameworks)
        + ".", "", "Where the time went (medians over the rounds; start-up and exit = the "
        "wall time less the phases timed inside the script; import is part of it):", "",
        "| example | framework | wall | start-up and exit | of it import | data and build "
        "| fit | predict | wall per round |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for ex, per in times.items():
        for f in frameworks:
            def med(key):
                return statistics.median(r["results"][ex]["phases"].get(key, 0.0)
                                         for _, r in per[f])
            wall = statistics.median(w for w, _ in per[f])
            start = statistics.median(w - inside(r, ex) for w, r in per[f])
            imports = statistics.median(r["import"] for _, r in per[f])
            lines.append(f"| {ex} | {NAMES[f]} | {wall:.2f} s | {start:.2f} s | "
                         f"{imports:.2f} s | {med('data') + med('build'):.2f} s | "
                         f"{med('fit'):.2f} s | {med('predict'):.2f} s | "
                         + ", ".join(f"{w:.2f}" for w, _ in per[f]) + " |")
    return lines


def intro(rounds):
    return ("End to end: the shipped examples' models trained for a fixed number of epochs, "
            "each framework in a fresh process, wall time from start to exit (imports, data, "
            f"build, fit, one predict), median of {rounds} rounds taking turns "
            "(`benchmarks/endtoend.py`; target: unrolled / fastest other at most 1.0):")


def load_note(before, after):
    """The machine's load around the run: other processes share these cores."""
    return (f"Load average (1 min) before and after the run: {before:.1f} and {after:.1f}, on "
            f"{os.cpu_count()} cores (the benchmark's own process counts 1; more means other "
            "work shared the machine: compare ratios within the run).")


def write(path, lines):
    """Put the end-to-end block in RESULTS.md, in this machine's section (before its
    training-memory table), replacing the block a previous run put there."""
    from .__main__ import cpu
    _, kind = cpu()
    with open(path) as f:
        text = f.read()
    head = f"\n## On {kind}\n"
    if head not in text:
        raise RuntimeError(f"RESULTS.md has no section for {kind!r}: run "
                           "`python -m benchmarks --write` first")
    start = text.index(head) + len(head)
    end = text.find("\n## On ", start)
    end = len(text) if end < 0 else end
    section = text[start:end]
    block = "\n".join(lines) + "\n"
    old = section.find("\nEnd to end: ")
    if old >= 0:
        stop = section.find("\n### ", old + 1)
        section = section[:old + 1] + block + (section[stop:] if stop >= 0 else "")
    else:
        at = section.find("\n### Training memory")
        at = len(section) if at < 0 else at
        section = section[:at].rstrip("\n") + "\n\n" + block + section[at:]
    with open(path, "w") as f:
        f.write(text[:start] + section + text[end:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="one round on reduced data, one epoch (what the tests run)")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--examples", default=",".join(EPOCHS))
    parser.add_argument("--write", action="store_true",
                        help="put the table in RESULTS.md (this CPU's section)")
    args = parser.parse_args(argv)
    if args.write and (args.smoke or args.frameworks != ",".join(FRAMEWORKS)
                       or args.examples != ",".join(EPOCHS)):
        parser.error("--write saves the full table: run it without --smoke, --frameworks "
                     "or --examples")
    frameworks = tuple(f for f in FRAMEWORKS if f in args.frameworks.split(","))
    examples = tuple(e for e in EPOCHS if e in args.examples.split(","))
    rounds = 1 if args.smoke else args.rounds
    from .__main__ import cpu
    lines = [intro(rounds), "", cpu()[0], "", f"Date: {time.strftime('%Y-%m-%d %H:%M')}", ""]
    before = os.getloadavg()[0]
    times = run(frameworks, rounds, examples, quick=args.smoke)
    lines += [load_note(before, os.getloadavg()[0]), ""] + table(times, quick=args.smoke)
    print("\n".join(lines))
    if args.write:
        write(os.path.join(ROOT, "benchmarks", "RESULTS.md"), lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
