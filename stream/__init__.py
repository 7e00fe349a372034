"""The Kafka runtime. A consumed batch flows forward through its stages, a package each:

- ``ingest``: the batch's bytes to columns in one numba scan (the per-event path for the rest);
- ``join``: predictions joined to their labels on columns;
- ``detect``: each partition's series, detectors and windows, and what joined pairs say;
- ``alert``: one path from a finding to a published alert, and retrain requests;
- ``state``: the partitions' offsets and checkpoints, and the compacted topics behind them.

``service`` holds the consume loop and the rebalance callbacks; settings, metrics, the embedded
broker, the CLI, the demo and the simulator sit beside the stages.
"""

if __name__ != "driftwire.stream":
    # Imported as a top-level package (from the repository's root folder), numba would cache
    # its kernels under that module name, and every later run of the installed one would fail.
    raise ImportError(f"import this package as driftwire.stream, not {__name__}: run from outside the "
                      "repository's root folder, or as python -m driftwire...")
