"""The benchmarks in load_tests/ run end to end and report what they measure.

Their numbers are not checked here (a shared machine's speed is no test); that each script runs,
against the real embedded broker where it needs one, and prints its rates and ratios is.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(module: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return float(match.group(1).replace(",", ""))


def test_bench_service_reports_three_rates_and_their_ratios():
    out = run("load_tests.bench_service", "--events", "500000", "--river-events", "5000", "--rounds", "1")
    bare = number(r"bare consumer\s+([\d,]+) events/s", out)
    driftwire = number(r"driftwire run\s+([\d,]+) events/s", out)
    river = number(r"river ADWIN\+PH\s+([\d,]+) events/s", out)
    assert min(bare, driftwire, river) > 0
    # the ratios printed to two decimals, of the rates printed to the event
    assert abs(number(r"driftwire / bare consumer \(numeric mix: [^)]*\):\s+([\d.]+)x", out)
               - driftwire / bare) <= 0.0051
    assert abs(number(r"driftwire / river:\s+([\d.]+)x", out) - driftwire / river) <= 0.0051
    off = number(r"windows off\s+([\d,]+) events/s", out)
    assert abs(number(r"windows on / windows off:\s+([\d.]+)x", out) - driftwire / off) <= 0.0051
    # one round: the median of the rounds' own ratios is that round's ratio
    assert abs(number(r"median of the rounds' own ratios ([\d.]+)x", out) - driftwire / off) <= 0.0051


def test_bench_detectors_compares_every_detector_with_river():
    out = run("load_tests.bench_detectors", "--n", "20000", "--river-max", "5000", "--skip-memory")
    for check in ("speed vs river", "identical drifts on river's prefix", "bank within 2x of one series"):
        assert re.search(rf"^(PASS|FAIL)\s+{re.escape(check)}", out, re.MULTILINE), out


def test_bench_router_compares_per_message_and_whole_batch_routing():
    out = run("load_tests.bench_router", "--events", "5000", "--repeat", "1")
    assert number(r"add \(per message\)\s+best\s+([\d.]+)", out) > 0
    assert number(r"add_batch\s+best\s+([\d.]+)", out) > 0


def test_bench_windows_compares_the_window_bank_with_numpy_per_slide():
    out = run("load_tests.bench_windows", "--series", "3", "--events", "24000", "--window", "4000",
              "--slides", "1,4", "--repeat", "1")
    for slide in (1, 4):
        line = re.search(rf"^\s+{slide}\s+(\d+)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)x", out, re.MULTILINE)
        assert line, out
        closes, numba, numpy_rate, ratio = (float(g.replace(",", "")) for g in line.groups())
        assert closes == (6 if slide == 1 else 21) and min(numba, numpy_rate) > 0
        assert abs(ratio - numba / numpy_rate) <= 0.01 * ratio + 0.006
        assert re.search(rf"^(PASS|FAIL)\s+numba / numpy at slide {slide}:", out, re.MULTILINE), out


def test_bench_join_reports_pairs_per_second_beside_the_plain_rate_and_accounts_for_every_record():
    out = run("load_tests.bench_join", "--events", "150000")
    plain = number(r"plain events \(join off\)\s+([\d,]+) events/s", out)
    pairs = number(r"joined pairs\s+([\d,]+) pairs/s", out)
    assert min(plain, pairs) > 0
    assert abs(number(r"\(([\d.]+)x the plain event rate", out) - pairs / plain) <= 0.0051
    joined = re.search(r"joined ([\d,]+) of the ([\d,]+) predictions with a label", out)
    assert joined and joined.group(1) == joined.group(2), out
    for side in ("predictions", "labels"):
        line = re.search(rf"^{side}\s+([\d,]+) produced, ([\d,]+) accounted for$", out, re.MULTILINE)
        assert line and line.group(1) == line.group(2), out
    assert number(r"peak RSS of the join run: ([\d,]+) MiB at half", out) > 0


def test_bench_recovery_reports_the_hand_over_with_both_assignors():
    out = run("load_tests.bench_recovery", "--only", "handover", "--session", "6")
    rows = re.findall(r"^handover\s+dynamic\s+(range|cooperative-sticky)\s+6 s\s+([\d.]+) s\s+([\d.]+) s\s+"
                      r"([\d.]+) s\s+(yes|no)$", out, re.MULTILINE)
    assert sorted(r[0] for r in rows) == ["cooperative-sticky", "range"], out
    for assignor, consuming, every, paused, revoked in rows:
        assert float(consuming) == float(every) > 0 and float(paused) > 0
        # an eager rebalance takes the survivor's partitions too; a cooperative one leaves them
        assert revoked == ("yes" if assignor == "range" else "no"), out
