"""The examples in the docstrings run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import driftwire.detectors

MODULES = sorted(
    f"driftwire.detectors.{m.name}" for m in pkgutil.iter_modules(driftwire.detectors.__path__)
) + ["driftwire.detectors", "driftwire.stream.join.store"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest failures in {name}"
