"""HDF5 files parsed in a separate process with a time limit, read back as a snapshot.

Why: a corrupted HDF5 file can make the HDF5 C library loop forever. tests/unit/io/test_fuzz.py
found one: a variable-length string attribute pointing into a mangled global heap. h5py
holds the GIL in that loop, so no thread, alarm or timeout of this process can stop it.

So ``open_h5`` hands the bytes to a persistent child process (``h5_worker``), which opens
the file, refuses links and outside storage, and reads every attribute and every dataset
that passes the size checks of ``safety.py``. While it parses, this process waits on the
pipe (``selectors``), which releases the GIL, so signals and alarms still work. If the
child takes longer than ``h5_timeout`` it is killed (a new one starts for the next file)
and the file is refused with ``ModelFileError``.

What comes back is an in-memory tree of ``H5Group`` and ``H5Dataset`` (``h5_snapshot``):
the part of h5py's API the readers use. Nothing is pickled (the child's module docstring
has the protocol).
h5py is imported in the child only, which starts on the first load and then serves every
later one, so ``import unrolled`` still needs NumPy alone.
"""
import atexit
import importlib.util
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import warnings

from . import safety
from .h5_snapshot import H5Dataset, H5Group, SnapshotFile
from .h5_worker import LENGTH
from .safety import (H5PY_MISSING, HDF5_MAGIC, ModelFileError, UnsafeModelError,
                     UnsupportedModelError, check_magic)

__all__ = ["H5Dataset", "H5Group", "H5_TIMEOUT", "STARTUP_TIMEOUT", "can_start_worker",
           "h5_timeout", "h5py_available", "open_h5", "worker_pid"]

H5_TIMEOUT = None        # seconds a file may take; None: 10 + size / (20 MB/s)
STARTUP_TIMEOUT = 120    # seconds for the child to import NumPy and h5py
ERRORS = {c.__name__: c for c in (ModelFileError, UnsafeModelError, UnsupportedModelError)}


def h5_timeout(nbytes):
    """Seconds the child may take over a file of ``nbytes``: ``UNROLLED_H5_TIMEOUT`` if set,
    else ``H5_TIMEOUT``, else ``10 + nbytes / 20e6``."""
    env = os.environ.get("UNROLLED_H5_TIMEOUT")
    if env:
        try:
            seconds = float(env)
        except ValueError:
            seconds = float("nan")
        if not seconds > 0:                      # (NaN too)
            raise ValueError(f"UNROLLED_H5_TIMEOUT must be a positive number of seconds, or "
                             f"inf for no limit; not {env!r}.") from None
        return seconds
    return H5_TIMEOUT if H5_TIMEOUT is not None else 10 + nbytes / 20e6


class _TimedOut(Exception):
    pass


class _Died(Exception):
    pass


class _Worker:
    """The child process; its pipes are non-blocking, so every wait has a deadline."""

    def __init__(self):
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen(   # cwd: `-m` puts it first on sys.path, so this unrolled
            [sys.executable, "-m", "unrolled.io.h5_worker", str(os.getpid())], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, cwd=src)
        self.wfd, self.rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)
        self.writable, self.readable = selectors.DefaultSelector(), selectors.DefaultSelector()
        self.writable.register(self.wfd, selectors.EVENT_WRITE)
        self.readable.register(self.rfd, selectors.EVENT_READ)

    @staticmethod
    def _wait(selector, deadline):
        left = deadline - time.monotonic()          # inf: no limit (UNROLLED_H5_TIMEOUT=inf)
        if left <= 0 or not selector.select(None if left == float("inf") else left):
            raise _TimedOut

    def send(self, parts, deadline):
        for part in parts:
            view = memoryview(part).cast("B")
            while view:
                self._wait(self.writable, deadline)
                try:
                    view = view[os.write(self.wfd, view):]
                except BlockingIOError:
                    continue
                except OSError:                  # BrokenPipeError: the child is gone
                    raise _Died from None

    def recv(self, deadline):
        """The next frame from the child (a bytearray)."""
        (n,) = LENGTH.unpack(self._read(LENGTH.size, deadline))
        return self._read(n, deadline)

    def _read(self, n, deadline):
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            self._wait(self.readable, deadline)
            try:
                k = os.readv(self.rfd, [view[got:]])
            except BlockingIOError:
                continue
            if k == 0:
                raise _Died
            got += k
        return buf

    def stop(self):
        """Kill the child at once; its exit status."""
        try:
            self.proc.kill()
        except OSError:
            pass
        status = self.proc.wait()
        self._close()
        return status

    def close(self):
        """End of stdin: the child exits by itself (killed if it does not within 2 s)."""
        self._close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.stop()

    def _close(self):
        for f in (self.writable, self.readable, self.proc.stdin, self.proc.stdout):
            f.close()


_lock = threading.Lock()
_worker = None


def _get_worker():
    global _worker
    if _worker is not None and _worker.proc.poll() is not None:      # it died between loads
        _worker.stop()
        _worker = None
    if _worker is None:
        worker = _Worker()
        try:
            ready = json.loads(worker.recv(time.monotonic() + STARTUP_TIMEOUT))
        except (_TimedOut, _Died, ValueError):
            worker.stop()
            raise RuntimeError(f"The HDF5 parsing process did not start; `{sys.executable} -m "
                               "unrolled.io.h5_worker < /dev/null` shows why.") from None
        except BaseException:
            worker.stop()
            raise
        if "error" in ready:
            worker.stop()
            raise ImportError(ready["message"])
        _worker = worker
    return _worker


def _stop_worker():
    global _worker
    worker, _worker = _worker, None
    return worker.stop()


@atexit.register
def _shutdown():
    global _worker
    worker, _worker = _worker, None
    if worker is not None:
        worker.close()


def _forget_after_fork():
    """In a forked child the parent's worker is not ours: drop our copies of its pipes."""
    global _lock, _worker
    worker, _worker, _lock = _worker, None, threading.Lock()
    if worker is not None:
        worker._close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def worker_pid():
    """The pid of the running parsing process, or None."""
    worker = _worker
    return worker.proc.pid if worker is not None and worker.proc.poll() is None else None


def h5py_available():
    try:
        return importlib.util.find_spec("h5py") is not None
    except ValueError:                           # imported, without a spec
        return True


def open_h5(data, path):
    """A snapshot ``H5Group`` of the HDF5 file ``data``, parsed in the child within
    ``h5_timeout``; refused files raise ``ModelFileError`` or ``UnsafeModelError``."""
    if not h5py_available():
        raise ImportError(H5PY_MISSING)
    name = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    check_magic(data, HDF5_MAGIC, name, "an HDF5 file")
    limit = h5_timeout(len(data))
    if not can_start_worker():
        return _open_in_process(data, name)
    header = json.dumps({"path": name, "max_attr_items": safety.MAX_ATTR_ITEMS,
                         "max_compression_ratio": safety.MAX_COMPRESSION_RATIO}).encode()
    with _lock:
        worker = _get_worker()
        deadline = time.monotonic() + limit
        try:
            worker.send([LENGTH.pack(len(header)), header, LENGTH.pack(len(data)), data], deadline)
            reply, blob = worker.recv(deadline), worker.recv(deadline)
        except _TimedOut:
            _stop_worker()
            raise ModelFileError(
                f"{name!r}: parsing took longer than {round(limit, 1):g} s, and was stopped (the "
                "HDF5 library runs in a separate process). A corrupted file can make it loop "
                "forever; a large file on a slow or busy machine may just need longer: "
                "UNROLLED_H5_TIMEOUT sets the limit in seconds (inf: none)."
            ) from None
        except _Died:
            status = _stop_worker()
            raise ModelFileError(
                f"{name!r}: the HDF5 parsing process ended (exit status {status}) before it "
                "finished; the file is corrupted. (A new process starts for the next file.)"
            ) from None
        except BaseException:                    # an alarm or Ctrl-C mid-request
            _stop_worker()
            raise
    reply = json.loads(reply)
    if "error" in reply:
        raise ERRORS.get(reply["error"], ModelFileError)(reply["message"])
    return H5Group(reply["tree"], SnapshotFile(name, blob), "/")


def can_start_worker():
    """False where ``sys.executable`` is not a Python that can run ``-m`` (a frozen
    application, an interpreter embedded in another program): starting the worker there
    would run the host program instead, and wait for its reply until STARTUP_TIMEOUT."""
    exe = sys.executable
    if getattr(sys, "frozen", False) or not exe or not os.path.isfile(exe):
        return False
    return any(word in os.path.basename(exe).lower() for word in ("python", "pypy"))


_warned_in_process = False


def _open_in_process(data, name):
    """``open_h5`` without the worker: the same snapshot, parsed in this process, without
    the protection of the time limit (said once, as a warning)."""
    global _warned_in_process
    if not _warned_in_process:
        _warned_in_process = True
        warnings.warn(f"unrolled: {sys.executable or 'this interpreter'!r} cannot start the "
                      "HDF5 parsing process (a frozen or embedded Python), so .h5/.keras files "
                      "are parsed in this process, without a time limit: a corrupted file can "
                      "hang it.", RuntimeWarning, stacklevel=3)
    from . import h5_worker
    limits = {"path": name, "max_attr_items": safety.MAX_ATTR_ITEMS,
              "max_compression_ratio": safety.MAX_COMPRESSION_RATIO}
    reply, parts = h5_worker.handle(limits, data)
    if "error" in reply:
        raise ERRORS.get(reply["error"], ModelFileError)(reply["message"])
    tree = json.loads(json.dumps(reply["tree"]))        # as the worker's reply reads
    return H5Group(tree, SnapshotFile(name, b"".join(parts)), "/")
