"""Headless Chromium for the report tests (tests/system/explain, tests/reference/explain)."""
import os
import shutil
import subprocess

import pytest


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium():
    """The chromium binary. CI installs it (.ci/run), so there a missing browser is a failure."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed, but CI must have it: apt-get install -y chromium")
    pytest.skip("chromium is not installed here (apt-get install -y chromium); CI runs this test")


def open_in_chromium(page, tmp_path, *args):
    """Run headless Chromium on ``page``; return (stdout, stderr)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
           "--v=0", *args, f"file://{page}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def console_problems(stderr):
    """Console messages (uncaught errors, failed loads, console.* calls) in Chromium's log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
