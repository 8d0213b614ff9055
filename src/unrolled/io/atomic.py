"""Atomic file writes: write a temporary file beside the target, fsync, then rename.

A reader — or a crash at any moment — sees either the old file or the new one, never a
half-written file: ``os.replace`` is atomic on POSIX and Windows. What the rename must not
do is replace something that is not a plain file, so:

- a target that exists and is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO,
  a character device), or any name under /dev or /proc (``/dev/stdout`` when the output
  is redirected to a file), is written in place: there is nothing to make atomic, and
  replacing it by a regular file would break the device. ``/dev/stdout``, ``/dev/fd/N``
  and ``/proc/self/fd/N`` are written through the descriptor the process already holds,
  so ``>> log`` appends;
- a symbolic link is followed: the file it points to is replaced, atomically in that
  file's directory, and the link stays a link;
- an overwritten file keeps its permission bits (and its owner, where the process may set
  it); a new file gets the mode ``open`` would give it (0o666 less the umask), not
  ``mkstemp``'s 0o600;
- the temporary name is short (``.tmp-<hash of the name>-<pid>-<random>``) so that a target
  name near the file system's 255-byte limit still has room, and it names its writer's
  process: a save removes the leftovers of earlier saves to the same path whose process is
  gone (killed mid-save), never a live writer's file;
- a save that cannot start (a missing directory, no permission) raises the ``OSError``
  that ``open`` would, naming the target, not the temporary file.
"""
import contextlib
import hashlib
import os
import stat
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_prefix(name):
    return ".tmp-" + hashlib.sha1(os.fsencode(name)).hexdigest()[:10] + "-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_leftovers(directory, name):
    """Temporary files of earlier saves to ``name`` whose writing process has exited."""
    prefix = _tmp_prefix(name)
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if not entry.name.startswith(prefix):
                continue
            pid = entry.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _system_path(path):
    """True for a name under /dev or /proc, or one that leads there: ``/dev/stdout`` is a
    link to the process's stdout, which may be a regular file (``> out.csv``), and must be
    written through, not replaced by a new file at /dev/stdout."""
    names = (os.path.abspath(path), os.path.realpath(path))
    return any(n == d or n.startswith(d + os.sep) for n in names for d in ("/dev", "/proc"))


_STREAMS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def _open_descriptor(path):
    """The descriptor that ``/dev/stdout``, ``/dev/fd/N`` or ``/proc/self/fd/N`` names, or
    None: writing through it, not reopening the name, keeps ``>>``'s append and does not
    truncate what the shell opened."""
    path = os.path.abspath(path)
    if path in _STREAMS:
        return _STREAMS[path]
    for prefix in ("/dev/fd/", "/proc/self/fd/", f"/proc/{os.getpid()}/fd/"):
        if path.startswith(prefix) and path[len(prefix):].isdigit():
            return int(path[len(prefix):])
    return None


@contextlib.contextmanager
def _in_place(path, mode):
    fd = _open_descriptor(path)
    if fd is not None:
        with os.fdopen(os.dup(fd), mode) as f:
            yield f
        return
    with open(path, mode) as f:
        yield f


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """``with atomic_write(path) as f: f.write(...)`` — the file appears complete or not at all."""
    path = os.fspath(path)
    try:
        before = os.stat(path)                         # follows links, as open() would
    except FileNotFoundError:
        before = None
    if before is not None and (not stat.S_ISREG(before.st_mode) or _system_path(path)):
        with _in_place(path, mode) as f:               # a device or a FIFO: never replaced
            yield f
        return
    path = os.path.realpath(path)                      # through symlinks: replace the file
    directory, name = os.path.split(path)
    _remove_leftovers(directory, name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(name)}{os.getpid()}-", dir=directory)
    except OSError as e:                  # name the file asked for, not the temporary one
        raise type(e)(e.errno, e.strerror, path) from None
    try:
        if before is not None:
            os.chmod(tmp, stat.S_IMODE(before.st_mode))
            if hasattr(os, "chown") and (before.st_uid, before.st_gid) != os.stat(tmp)[4:6]:
                with contextlib.suppress(OSError):
                    os.chown(tmp, before.st_uid, before.st_gid)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # make the rename itself durable
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
