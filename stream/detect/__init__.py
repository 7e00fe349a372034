"""The detect stage: a partition's series, detectors and windows (:mod:`.monitor`), what the
joined pairs say (:mod:`.outcomes`, :mod:`.compare`), the rules of closed windows."""
