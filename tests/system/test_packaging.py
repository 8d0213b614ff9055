"""Packaging (issue 24.14): the sdist carries the license and what running its tests needs,
and its metadata declares the license as the SPDX expression setuptools >= 77 writes."""
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_sdist_holds_the_license_and_the_test_suite(tmp_path):
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    src = tmp_path / "src-tree"
    for name in files:                     # a copy: building writes egg-info beside the code
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-c", "import setuptools.build_meta as b, sys; "
                    "print(b.build_sdist(sys.argv[1]))", str(out)], cwd=src, check=True,
                   capture_output=True, text=True)
    (sdist,) = out.glob("unrolled-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        pkg_info = tar.extractfile(next(m for m in tar.getmembers()
                                        if m.name.endswith("/PKG-INFO"))).read().decode()
    for needed in ("LICENSE", "Makefile", "pyproject.toml", "tests/conftest.py",
                   "tests/keras_ref.py", "tests/gradcheck.py", "tests/data/hanging_global_heap.h5",
                   "benchmarks/__main__.py", "docs/security.md",
                   "src/unrolled/data/files/co2_mauna_loa_monthly.csv"):
        assert needed in names, needed
    assert not any("__pycache__" in n or n.endswith((".pyc", ".nbi", ".nbc")) for n in names)
    assert "License-Expression: MIT" in pkg_info and "License-File: LICENSE" in pkg_info
