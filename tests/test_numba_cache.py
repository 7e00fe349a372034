"""The packages import only as driftwire.*, and an unreadable numba cache entry is compiled again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "from driftwire import detectors; d = detectors.make('page_hinkley'); print(d.update(1.0))"


def python(code: str, cwd, cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("package", ["detectors", "stream", "schemas"])
def test_a_package_imported_from_the_repository_root_is_refused_before_any_kernel_is_cached(package, tmp_path):
    run = python(f"import {package}", ROOT, tmp_path)
    assert run.returncode != 0
    assert f"import this package as driftwire.{package}" in run.stderr
    assert not list(tmp_path.rglob("*.nb[ic]"))


def test_an_unreadable_cache_entry_is_compiled_again(tmp_path):
    first = python(KERNEL, tmp_path, tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    entries = list((tmp_path / "cache").rglob("*.nbc"))
    assert entries
    for entry in entries:
        entry.write_bytes(b"not a pickle")
    second = python(KERNEL, tmp_path, tmp_path / "cache")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == first.stdout.strip() == "False"
    assert "could not be loaded" in second.stderr and "compiling it again" in second.stderr
    # compiled again, the entries are readable once more
    third = python(KERNEL, tmp_path, tmp_path / "cache")
    assert third.returncode == 0 and "could not be loaded" not in third.stderr
