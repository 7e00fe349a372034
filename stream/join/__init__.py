"""The join stage: predictions and their labels joined on columns (:mod:`.table`), with the
per-event store (:mod:`.store`) as the reference the tests hold it to."""
