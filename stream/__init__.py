"""The Kafka runtime: settings, the consume -> detect -> publish service, metrics, broker, CLI."""

if __name__ != "driftwire.stream":
    # Imported as a top-level package (from the repository's root folder), numba would cache
    # its kernels under that module name, and every later run of the installed one would fail.
    raise ImportError(f"import this package as driftwire.stream, not {__name__}: run from outside the "
                      "repository's root folder, or as python -m driftwire...")
