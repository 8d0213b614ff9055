"""The fast path: compiled float32 kernels (numba), there only for speed.

``steps`` holds the fused step math (forward and backward, the vectorized ``tanh``),
``blas`` the call into NumPy's own BLAS, ``sequences`` the whole-sequence inference loops,
``training`` the training forward and BPTT loops; ``cells`` what each built-in cell runs
on them, and ``planning`` the one hook between them and the time loop (``plan``), which
chooses per call. ``kernels`` says which kernels this process has, and holds the switch
(``set_enabled``, ``UNROLLED_COMPILED=0``) and ``unfused``; ``load`` is how it gets them.
``threads`` (no numba: threadpoolctl) chooses how many threads NumPy's BLAS uses for each
kind of step; the models' loops enter it. Nothing outside this package imports numba, and
the rest of unrolled imports it only when it runs (``activations``' tanh, the time loop's
``plan``), ``threads`` excepted (``tests/unit/test_layout.py`` checks both).

Compiled once per machine. Every kernel is compiled on its first call and cached on disk
by numba (``cache=True``: beside these files in ``__pycache__`` when that is writable,
else in numba's per-user cache directory; ``NUMBA_CACHE_DIR`` moves it), so later
processes load machine code instead of compiling: the first ``predict`` of a fresh process
costs milliseconds, not seconds. numba keys its cache by each file's time stamp, the
argument types and the CPU, but not by the files a kernel calls into; ``load`` therefore
keeps a digest of all four files (and numba's version) beside the cache and drops the
cache of these modules when it changes, and says on stderr when a machine compiles.
"""
import hashlib
import os
import sys


def plan(cell, dtype, batch, *, training, rec_mask, dp_mask):
    """The hook the time loop calls: a plan that runs this call's whole sequence compiled,
    or None (``planning.plan`` says when). ``planning`` is imported at the first call."""
    global _planning
    if _planning is None:
        from . import planning as _planning
    return _planning.plan(cell, dtype, batch, training=training, rec_mask=rec_mask,
                          dp_mask=dp_mask)


_planning = None

_MODULES = ("steps", "blas", "sequences", "training")
_STAMP = "unrolled-fast.stamp"


def load():
    """The table of compiled kernels, name -> function, or False when numba is missing or
    cannot cache (then the NumPy path runs). Without NumPy's own BLAS the table holds only
    the step kernels (no ``matmul``), and the layers run step by step."""
    try:
        import numba
    except ImportError:
        return False
    try:
        from . import blas, sequences, steps, training
    except RuntimeError as e:            # numba: "cannot cache function ...: no locator"
        print(f"unrolled: the compiled kernels are off: numba cannot cache them ({e}); "
              "set NUMBA_CACHE_DIR to a writable directory to use them",
              file=sys.stderr)
        return False
    _check_stamp(steps.simple_forward.stats.cache_path, numba.__version__)
    table = _dispatchers(steps)
    if blas.register():
        for module in (blas, sequences, training):
            table.update(_dispatchers(module))
    return table


def _dispatchers(module):
    from numba.core.registry import CPUDispatcher
    return {name: f for name, f in vars(module).items() if isinstance(f, CPUDispatcher)}


def _digest(numba_version):
    h = hashlib.sha256(numba_version.encode())
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _MODULES:
        with open(os.path.join(here, name + ".py"), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def _check_stamp(cache_dir, numba_version):
    """Drop these modules' cached kernels when any of the four files (or numba) changed, and
    say when this machine is about to compile them."""
    digest = _digest(numba_version)
    stamp = os.path.join(cache_dir, _STAMP)
    try:
        with open(stamp, encoding="ascii") as f:
            if f.read().strip() == digest:
                return
    except (OSError, UnicodeDecodeError):
        pass
    try:
        for entry in os.listdir(cache_dir):
            if entry.split(".")[0] in _MODULES and entry.endswith((".nbi", ".nbc")):
                os.remove(os.path.join(cache_dir, entry))
    except OSError:
        pass
    print("unrolled: compiling the fast kernels for this machine, once: each on its first "
          "call (about 4 s for a first predict and 4 s for a first fit of each cell type); "
          f"they are cached in {cache_dir}", file=sys.stderr)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{stamp}.{os.getpid()}"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(digest + "\n")
        os.replace(tmp, stamp)
    except OSError:
        pass
