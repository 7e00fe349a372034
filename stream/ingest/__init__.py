"""The ingest stage: a batch's bytes to columns, in one numba scan (:mod:`.scan`), with the
per-event path for what the scan cannot read."""
