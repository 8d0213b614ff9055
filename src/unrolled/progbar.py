"""A Keras-style progress line: ``1/1 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - loss: 0.1234``."""
import sys
import time


def _format_time(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def _format_per_step(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class Progbar:
    """Prints progress over ``target`` steps: a bar with ETA while running (verbose=1),
    or only the final line (verbose=2).

    As Keras's: the bar is redrawn in place only on a terminal or in Jupyter, at most every
    ``interval`` seconds (0.05); elsewhere (a pipe, a file, CI logs) only the final line is
    written. Each line ends once: with ``wait_for_finalize`` (``fit``, whose epoch line
    gets the validation metrics) at ``update(..., finalize=True)``, else at the last step."""

    width = 20
    interval = 0.05

    def __init__(self, target, verbose=1, stream=None, wait_for_finalize=False):
        self.target = target
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self._last_len = 0
        self._last_draw = -1.0
        self._done = False
        self.wait_for_finalize = wait_for_finalize
        isatty = getattr(self.stream, "isatty", None)
        self.dynamic = bool(isatty and isatty()) or "ipykernel" in sys.modules

    def _line(self, current, values, finished):
        elapsed = time.perf_counter() - self.start
        filled = int(self.width * current / max(1, self.target))
        bar = "━" * filled + " " * (self.width - filled)
        if finished:
            timing = f"{_format_time(elapsed)} {_format_per_step(elapsed / max(1, current))}"
        else:
            eta = elapsed / max(1, current) * (self.target - current)
            timing = f"{_format_time(elapsed)} {_format_per_step(elapsed / max(1, current))}" if current == 0 else f"ETA {_format_time(eta)}"
        metrics = "".join(f" - {k}: {v:.4f}" for k, v in (values or {}).items())
        width = len(str(self.target))
        return f"{current:>{width}}/{self.target} {bar} {timing}{metrics}"

    def update(self, current, values=None, finalize=False):
        if self.verbose == 0 or self._done:
            return
        finished = finalize or (current >= self.target and not self.wait_for_finalize)
        self._done = finished
        if self.verbose == 1:
            now = time.perf_counter()
            if not finished and (not self.dynamic or now - self._last_draw < self.interval):
                return
            self._last_draw = now
            line = self._line(current, values, finished)
            pad = " " * max(0, self._last_len - len(line))
            self.stream.write(("\r" if self.dynamic else "") + line + pad +
                              ("\n" if finished else ""))
            self._last_len = len(line)
            self.stream.flush()
        elif finished:
            elapsed = time.perf_counter() - self.start
            metrics = "".join(f" - {k}: {v:.4f}" for k, v in (values or {}).items())
            self.stream.write(f"{self.target}/{self.target} - {_format_time(elapsed)} - "
                              f"{_format_per_step(elapsed / max(1, self.target))}{metrics}\n")
            self.stream.flush()
