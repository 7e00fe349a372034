"""numba's on-disk cache, made forgiving: an entry that cannot be loaded is compiled again.

    import driftwire.detectors   # installs it; so does driftwire.stream.ingest.scan

A cache entry written by another numba or under another module name, or truncated by a full
disk, makes numba raise from the first call of a kernel (``UnpicklingError``,
``ModuleNotFoundError``). Treated as a miss instead, the kernel is compiled and its entry
written anew, at the cost of the compilation; the warning names the kernel.
"""

from __future__ import annotations

import logging

from numba.core import caching

log = logging.getLogger("driftwire")


def tolerate_unreadable_entries() -> None:
    """Make every numba cache lookup in this process treat an unreadable entry as a miss."""
    load = caching.Cache.load_overload
    if getattr(load, "tolerant", False):
        return

    def load_overload(self, sig, target_context):
        try:
            return load(self, sig, target_context)
        except Exception as exc:  # noqa: BLE001 - whatever the entry holds, compiling again is right
            log.warning("numba cache entry of %s could not be loaded (%s: %s): compiling it again",
                        self._name, type(exc).__name__, exc)
            return None

    load_overload.tolerant = True
    caching.Cache.load_overload = load_overload
