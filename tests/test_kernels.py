"""The generated per-detector loops are the template's current output."""

from pathlib import Path

from driftwire.detectors import kernels


def test_loops_module_is_current():
    generated = Path(kernels.__file__).with_name("loops.py").read_text()
    assert generated == kernels.loops_source(), "run: python -m driftwire.detectors.kernels"


def test_every_detector_has_its_loops():
    from driftwire.detectors import make

    for name in kernels.NAMES:
        loops = make(name).loops
        assert {loops.one.__name__, loops.many.__name__, loops.bank.__name__} == {
            f"one_{name}", f"many_{name}", f"bank_{name}"
        }
