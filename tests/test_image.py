"""The container image, built from the real Dockerfile and run: deploy/image/verify.sh builds a
python:3.11-slim-like base from Debian's packages, builds the image on it with podman (chroot
isolation, no Docker engine), runs `driftwire run` from the image's filesystem mounted read-only
as uid 10001 against the embedded broker, and reports what it saw. Needs root, podman and
debootstrap (Debian packages), and the package registries for the build: minutes of work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy/image/verify.sh"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.image,
    pytest.mark.skipif(os.geteuid() != 0, reason="building and mounting images needs root"),
    pytest.mark.skipif(
        not (shutil.which("podman") and shutil.which("debootstrap")),
        reason="podman and debootstrap not installed (Debian: apt-get install podman debootstrap)",
    ),
]


def summary(output: str) -> dict[str, str]:
    """The key=value lines after '== summary ==' in the script's output."""
    _, _, tail = output.partition("== summary ==\n")
    return dict(line.split("=", 1) for line in tail.splitlines() if "=" in line)


@pytest.mark.timeout(3000)
def test_the_image_builds_and_runs_read_only_as_uid_10001_alerts_on_drift_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, "DRIFTWIRE_HOST_PYTHON": sys.executable}
    script = subprocess.Popen(["bash", str(SCRIPT), "--logs", str(tmp_path / "logs")], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = script.communicate(timeout=2700)
    except subprocess.TimeoutExpired:
        script.terminate()  # its trap unmounts and removes what it made
        output, _ = script.communicate(timeout=120)
        pytest.fail(f"deploy/image/verify.sh did not finish within 2700 s:\n{output[-5000:]}")
    print(output)
    assert script.returncode == 0, output[-5000:]
    figures = summary(output)
    assert figures["result"] == "PASS", output[-5000:]
    assert float(figures["image_size_mb"]) > 0
    assert figures["read_only_root"] == "yes" and figures["uid"] == "10001"
    assert figures["alert"].startswith("fraud-detector/amount data_drift"), figures
    assert figures["exit_code"] == "0"
    # The kernels baked into the image are loaded, not compiled again: the metrics endpoint is up
    # well within the time the build's warm-up took to compile them.
    assert float(figures["healthy_seconds"]) < float(figures["warm_up_seconds"]) / 2, figures
    assert float(figures["ready_seconds"]) < 60, figures
