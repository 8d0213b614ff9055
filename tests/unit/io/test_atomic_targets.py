"""Atomic saves never replace what is not a plain file (issue 26, item 2).

The old ``atomic_write`` renamed its temporary file over any target: ``--out /dev/null``
turned the device into a regular file (as root, that breaks the machine), a FIFO's reader
never got the bytes, a symlink became a plain file, an overwritten file lost its mode, and
new files were 0600. These run as the user saving a model and the command line would.
"""
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from unrolled.io.atomic import _tmp_prefix, atomic_write
from unrolled.layers import Dense, Input, SimpleRNN
from unrolled.models import Model, load_model


def _model():
    i = Input((3, 2))
    return Model(i, Dense(1)(SimpleRNN(2)(i)))


def test_a_character_device_is_written_in_place_not_replaced(tmp_path):
    # /dev/null itself: the old code, as root, replaced it with a regular file. The write
    # goes through a symlink to it here, so that a failure is caught without harm: the
    # check below is of /dev/null's type after the write.
    link = tmp_path / "null-link"
    link.symlink_to("/dev/null")
    with atomic_write(link) as f:
        f.write(b"x" * 100)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert link.is_symlink()


def test_a_fifo_gets_the_bytes_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    with atomic_write(fifo) as f:
        f.write(b"hello")
    reader.join(10)
    assert got == [b"hello"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_the_command_line_writes_predictions_to_dev_stdout(tmp_path):
    model = _model()
    model.save(tmp_path / "m.unrolled.npz")
    np.save(tmp_path / "x.npy", np.ones((2, 3, 2), "float32"))
    run = subprocess.run([sys.executable, "-m", "unrolled", "predict", str(tmp_path / "m.unrolled.npz"),
                          str(tmp_path / "x.npy"), "--out", "/dev/stdout"],
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    rows = run.stdout.decode().split()                    # no .npy suffix: CSV, one row each
    np.testing.assert_allclose([float(v) for v in rows], model.predict(np.ones((2, 3, 2), "float32"),
                                                                       verbose=0).ravel(), rtol=1e-6)


def test_dev_stdout_redirected_to_a_file_is_written_through_not_replaced(tmp_path):
    """``unrolled predict ... --out /dev/stdout >> log``: /dev/stdout leads to a regular
    file; the rows are appended to it and /dev/stdout stays what it was (the old code
    renamed a new file over the link's target: on this machine /dev/stdout itself ended up
    a regular file)."""
    model = _model()
    model.save(tmp_path / "m.unrolled.npz")
    np.save(tmp_path / "x.npy", np.ones((2, 3, 2), "float32"))
    log = tmp_path / "log.txt"
    log.write_text("head\n")
    before = os.lstat("/dev/stdout")
    with open(log, "ab") as out:
        run = subprocess.run([sys.executable, "-m", "unrolled", "predict",
                              str(tmp_path / "m.unrolled.npz"), str(tmp_path / "x.npy"),
                              "--out", "/dev/stdout"], stdout=out, stderr=subprocess.PIPE,
                             timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    after = os.lstat("/dev/stdout")
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    head, *rows = log.read_text().split()
    assert head == "head"
    np.testing.assert_allclose([float(v) for v in rows], model.predict(
        np.ones((2, 3, 2), "float32"), verbose=0).ravel(), rtol=1e-6)


def test_a_symlink_stays_a_link_and_its_file_is_replaced(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.unrolled.npz"
    link = tmp_path / "m.unrolled.npz"
    link.symlink_to(target)
    model = _model()
    model.save(link)
    assert link.is_symlink() and target.is_file()
    x = np.ones((1, 3, 2), "float32")
    np.testing.assert_array_equal(load_model(link).predict(x, verbose=0), model.predict(x, verbose=0))


def test_modes_kept_on_overwrite_and_the_umasks_on_a_new_file(tmp_path):
    old = os.umask(0o027)
    try:
        new = tmp_path / "new.bin"
        with atomic_write(new) as f:
            f.write(b"1")
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o640
        os.chmod(new, 0o604)
        with atomic_write(new) as f:
            f.write(b"2")
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o604 and new.read_bytes() == b"2"
    finally:
        os.umask(old)


def test_a_killed_saves_leftover_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "m.bin"
    code = ("import os, sys\nfrom unrolled.io.atomic import atomic_write\n"
            "with atomic_write(sys.argv[1]) as f:\n    f.write(b'half'); f.flush(); os._exit(9)\n")
    run = subprocess.run([sys.executable, "-c", code, str(target)], timeout=60)
    assert run.returncode == 9
    prefix = _tmp_prefix("m.bin")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(prefix)]   # left behind
    live = tmp_path / f"{prefix}{os.getpid()}-live"            # a live writer's: kept
    live.write_bytes(b"")
    with atomic_write(target) as f:
        f.write(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.bin", live.name])


@pytest.mark.parametrize("length", [240, 255])
def test_names_up_to_the_file_systems_limit(tmp_path, length):
    target = tmp_path / ("m" * (length - len(".bin")) + ".bin")
    with atomic_write(target) as f:
        f.write(b"ok")
    assert target.read_bytes() == b"ok"
