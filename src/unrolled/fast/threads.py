"""How many threads NumPy's BLAS uses for a model's steps: chosen by timing them.

A recurrent layer calls BLAS once per time step, on products as small as (32 x 64) @
(64 x 256). OpenBLAS splits such a product over all cores and joins its threads at every
call. On a quiet machine that pays (2 threads were 10-40% faster than 1 at every LSTM size
measured on a 2-core Zen 4, from 32 units and 32 rows up); beside one other busy process
it costs dearly (the Dante example took 36 s on 2 threads and 14 s on 1), because each
step waits for a thread that is not running. Neither the product's size nor a fixed count
is right on both machines, so the steps are timed.

``limit(model, rows, kind)`` is the context manager every step enters (a training or test
batch, a predict batch, a ``*_on_batch`` call). For each (model, rows, kind) a
``Choice`` times its steps per row: after a warm-up step, a few steps on one thread and as
many on all, alternating; it keeps the count found faster (see ``Choice``) for a while,
then times both again (the machine's load changes). Products too small for OpenBLAS to
split (below ``TINY_WORK`` multiply-adds) skip all this. A step on all threads is timed only
when no other process holds a core at that moment (Linux's count of runnable threads,
``_others_busy``): beside a busy process one such step cost 0.3-4 s where one thread's took
36 ms, so probing alone made the Dante example 2-4x slower than ``OPENBLAS_NUM_THREADS=1``.

The user's choice is kept: ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS`` or ``BLIS_NUM_THREADS`` set, or a thread count already below the
machine's cores (threadpoolctl's ``threadpool_limits``, ``openblas_set_num_threads``),
turn the timing off; so does ``UNROLLED_BLAS_THREADS=off``. It uses threadpoolctl, the
well-kept library for this (``pip install 'unrolled[fast]'``); without it the threads are
left alone and the first step that would have been timed says so once. It changes a
process-wide setting, so steps of two models run at once from two Python threads may see
each other's choice (never a wrong number, only a slower step).
"""
import os
import sys
import time

TINY_WORK = 2 ** 16        # multiply-adds per product below which OpenBLAS runs one thread
PERIOD = 100               # steps between two timings of both counts at first
RECHECK_SECONDS = 4.0      # ... or this long, whichever comes first
MAX_PERIOD = 3200          # ... doubled while the timings agree, up to these
MAX_SECONDS = 64.0
SAMPLES = 3                # steps timed on each count; their medians are compared
MARGIN = 0.85              # all threads must be this much faster: losing is dearer than winning
GIVE_UP = 1.5              # an all-threads step this much slower than one thread's ends it
JUMP = 2.0                 # a step this much slower than the chosen count's median: time again

_USER_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                   "BLIS_NUM_THREADS")
_controllers = None     # NumPy's BLAS libraries (threadpoolctl), or () when the policy is off
_said = False
_choices = {}           # (id(model), rows, kind) -> Choice
_parts = 1              # row groups the current step may run in parallel (``split_rows``)
_pool = None            # the threads that run them


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                       # not Linux
        return os.cpu_count() or 1


def _numpy_blas():
    """threadpoolctl's controllers of the BLAS libraries NumPy loaded, or () when the
    policy is off (turned off, chosen by the user, one core, or threadpoolctl missing)."""
    global _controllers, _said
    if _controllers is not None:
        return _controllers
    _controllers = ()
    if os.environ.get("UNROLLED_BLAS_THREADS", "auto") == "off":
        return _controllers
    if any(os.environ.get(v) for v in _USER_VARIABLES) or _cores() < 2:
        return _controllers
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        if not _said:
            _said = True
            print("unrolled: BLAS threads are left as they are; on a busy machine small models "
                  "may run several times slower than on one thread. pip install "
                  "'unrolled[fast]' (threadpoolctl) lets unrolled choose, or set "
                  "OPENBLAS_NUM_THREADS=1", file=sys.stderr)
        return _controllers
    import numpy
    blas = ThreadpoolController().select(user_api="blas").lib_controllers
    here = os.path.dirname(os.path.dirname(numpy.__file__))      # site-packages
    own = [c for c in blas if os.path.abspath(c.filepath).startswith(
        os.path.join(here, "numpy"))]                              # numpy/ or numpy.libs/
    _controllers = tuple(own or blas)
    return _controllers


def work(model, rows):
    """Multiply-adds of the model's largest product: its largest 2-D weight (a kernel or a
    recurrent kernel) times ``rows``."""
    largest = max((w.value.size for w in model.weights if w.value.ndim == 2), default=0)
    return largest * rows


def _others_running():
    """Threads of other processes running or runnable right now (Linux: the kernel's count
    in /proc/loadavg less this process's threads in state R), or None where unknown."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        ours = 0
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
            ours += stat[stat.rindex(")") + 2] == "R"
    except (OSError, ValueError, IndexError):
        return None
    return running - ours


def _others_busy(threads):
    """True when other processes' runnable threads leave fewer than ``threads`` cores free,
    read three times 1 ms apart (the smallest count: a command that just ran is not load)."""
    counts = []
    for i in range(3):
        if i:
            time.sleep(0.001)
        n = _others_running()
        if n is None:
            return False
        counts.append(n)
    return _cores() - min(counts) < threads


class Choice:
    """One or ``all_threads`` threads for a kind of step, from the steps' own times.

    ``threads()`` says which count the next step runs on; ``record(threads, seconds)``
    takes its time. The first step warms up (compiling, first allocations), on one thread,
    and is not counted; then steps alternate between one thread and all, ``SAMPLES`` on each. All
    threads are kept when their median time is under ``MARGIN`` times one thread's, else
    one thread. Step times on a shared machine are noisy (a thread waits for a busy core now
    and then), and a wrong choice of all threads costs more (a step 2-5x slower, measured)
    than a wrong choice of one (at most 1.4x), hence medians and the margin; and an
    all-threads step slower than ``GIVE_UP`` times one thread's ends the timing at once.

    The choice holds for ``period`` steps or ``seconds``, then both are timed again, since
    the machine's load changes. A timing that confirms the last choice doubles both (up to
    ``MAX_PERIOD`` and ``MAX_SECONDS``); one that changes it starts again from ``PERIOD`` and
    ``RECHECK_SECONDS``. Under a steady load, timing then costs a few steps a minute. A step
    more than ``JUMP`` times slower than the chosen count's median (another process took a
    core) starts a timing at once."""

    def __init__(self, all_threads, clock=time.perf_counter):
        self.all = all_threads
        self.clock = clock
        self.best = None                 # the count chosen, None while timing
        self.last = None                 # the previous timing's choice
        self.times = {1: [], all_threads: []}
        self.warm = False
        self.steps, self.since = 0, 0.0
        self.period, self.seconds = PERIOD, RECHECK_SECONDS

    def threads(self):
        if self.best is not None:
            return self.best
        if not self.warm:
            return 1                      # (a warm-up on all threads could cost seconds)
        ones, alls = len(self.times[1]), len(self.times[self.all])
        return 1 if ones <= alls else self.all

    def record(self, threads, seconds):
        if self.best is not None:
            self.steps += 1
            jump = seconds > JUMP * self.typical          # the load changed: time them now
            if jump or self.steps >= self.period or self.clock() - self.since >= self.seconds:
                self.best, self.times = None, {1: [], self.all: []}
                if jump:
                    self.period, self.seconds, self.last = PERIOD, RECHECK_SECONDS, None
            return
        if not self.warm:
            self.warm = True
            return
        self.times[threads].append(seconds)
        ones, alls = sorted(self.times[1]), sorted(self.times[self.all])
        if ones and alls and alls[0] > GIVE_UP * ones[len(ones) // 2]:
            self._choose(1)
        elif len(ones) >= SAMPLES and len(alls) >= SAMPLES:
            self._choose(self.all if alls[SAMPLES // 2] < MARGIN * ones[SAMPLES // 2] else 1)

    def busy(self):
        """Another process holds a core now: settle on one thread without timing a step on
        all of them (on a busy machine one such step cost 0.3-4 s where one thread's took
        36 ms). Only between a one-thread sample and an all-threads one."""
        if self.times[1]:
            self._choose(1)

    def _choose(self, n):
        if n == self.last:
            self.period = min(2 * self.period, MAX_PERIOD)
            self.seconds = min(2 * self.seconds, MAX_SECONDS)
        else:
            self.period, self.seconds = PERIOD, RECHECK_SECONDS
        self.best = self.last = n
        self.steps, self.since = 0, self.clock()
        times = sorted(self.times[n])
        self.typical = times[len(times) // 2]


class limit:
    """Run the block (one step of ``model`` on ``rows`` rows) on the BLAS thread count its
    ``Choice`` gives, and put the count back after. (A class rather than a generator: it is
    entered at every step, and a small model's step lasts tens of microseconds.)

    Whether a (model, rows, kind) is too small to time is decided at its first step and
    remembered: a model rebuilt larger afterwards keeps the first answer, which at worst
    leaves its threads as they were."""

    __slots__ = ("model", "rows", "kind", "choice", "n", "before", "start", "parts")

    def __init__(self, model, rows, kind="predict"):
        self.model, self.rows, self.kind, self.choice = model, rows, kind, None

    def __enter__(self):
        controllers = _controllers if _controllers is not None else _numpy_blas()
        if not controllers:
            return
        key = (id(self.model), self.rows, self.kind)
        choice = _choices.get(key, False)
        if choice is False:
            if len(_choices) >= 256:             # models come and go: forget the oldest
                del _choices[next(iter(_choices))]
            tiny = work(self.model, self.rows) < TINY_WORK
            choice = _choices[key] = None if tiny else Choice(_cores())
        if choice is None:
            return
        before = [c.num_threads for c in controllers]
        if min(before) < choice.all:             # the user lowered it: theirs to choose
            return
        n = choice.threads()
        if n > 1 and choice.best is None and _others_busy(choice.all):
            choice.busy()                        # no all-threads step while a core is taken
            n = choice.threads()
        self.choice, self.before, self.n = choice, before, n
        if self.n != min(before):
            for c in controllers:
                c.set_num_threads(self.n)
        global _parts
        self.parts, _parts = _parts, self.n
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        choice = self.choice
        if choice is None:
            return False
        global _parts
        _parts = self.parts
        seconds = time.perf_counter() - self.start
        if self.n != min(self.before):
            for c, m in zip(_controllers, self.before):
                c.set_num_threads(m)
        choice.record(self.n, seconds / max(self.rows, 1))
        return False


# --- row groups in parallel -------------------------------------------------------------------
# The rows of a batch are independent sequences. Where a step is chosen to run on all cores,
# a recurrent layer's compiled inference gives each core its own group of rows, a whole
# sequence each, with BLAS on one thread: no join per time step, and the gate loops (one
# thread otherwise) run on every core. Measured on a 2-core Zen 4 (OpenBLAS SkylakeX), per
# predict_on_batch, against OpenBLAS's own two threads: LSTM (256,100,32,256) 91-94 ms
# against 113-137 ms, (128,50,16,128) 7.1-7.4 against 8.7-9.1, GRU (256,100,32,256) 71-77
# against 78-129, SimpleRNN (256,100,32,256) 23-24 against 31-50; equal at (1024,100,64,
# 512). Small groups lose: in-process A/B against OpenBLAS's two threads, LSTM
# (32,50,16,64) 1.0-1.6 ms against 0.95 and (64,50,16,128) 0.9-1.6x, while (128,50,16,128)
# gave 0.87-1.07x and (64,100,32,256) 0.72-0.91x: a group needs SPLIT_MIN_MACS multiply-
# adds a step (and SPLIT_MIN_ROWS rows: one row is a different BLAS call). OpenBLAS's
# SkylakeX kernels give each row the same sums whatever the number of rows (from 2 up), so
# there the outputs keep their bits; its Haswell kernels do not (last bits differ, `make
# test-matrix`), so the tests compare within float32 rounding.
SPLIT_MIN_ROWS = 16
SPLIT_MIN_MACS = 2 ** 22


def split_rows(rows, row_macs):
    """The row groups ``[(r0, r1), ...]`` for this step, whose rows each cost ``row_macs``
    multiply-adds a time step: one group per thread when the current step (``limit``) runs
    on several and each group is large enough, else ``[(0, rows)]``."""
    parts = min(_parts, rows // SPLIT_MIN_ROWS, rows * row_macs // SPLIT_MIN_MACS)
    if parts < 2:
        return [(0, rows)]
    bounds = [rows * k // parts for k in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def run_parallel(tasks):
    """Run the callables ``tasks`` at once, the first in this thread, and return their
    results in order; BLAS runs one thread per call meanwhile (each task is one thread of
    work). An exception in any task is raised here, after all have ended."""
    global _pool
    from concurrent.futures import wait
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _pool = ThreadPoolExecutor(max_workers=max(1, _cores() - 1),
                                   thread_name_prefix="unrolled-rows")
    controllers = _controllers or ()
    before = [c.num_threads for c in controllers]
    for c in controllers:
        c.set_num_threads(1)
    try:
        futures = [_pool.submit(task) for task in tasks[1:]]
        try:
            first = tasks[0]()
        finally:
            wait(futures)                        # (no task outlives the call)
        return [first] + [f.result() for f in futures]   # a task's exception is raised here
    finally:
        for c, n in zip(controllers, before):
            c.set_num_threads(n)
