"""Where each partition stands, and its checkpoints: the one owner of offsets.

    book = Checkpoints(group_id, state_topic)
    keep = book.take(key, offsets)    # the records not taken before; the partition moves past them
    book.processed()                  # the batch is processed in full: a checkpoint may record it
    commits = book.write(keys, snapshot, publisher)  # state records for the group to commit after

A partition has three offsets: ``taken``, after the last record taken (records below it were
taken already: fetched again before a rebalance, they are dropped); ``processed``, after the last
record whose batch was processed in full, the only offset a checkpoint records; and
``checkpointed``, that of its last checkpoint. A partition whose state changed without a record
of its own (labels joined into its store) is ``dirty``: it is checkpointed all the same.

A checkpoint is one compacted record per partition on the state topic, keyed by group and
partition: the partition's state with the offset it corresponds to. The group's offsets are
committed only after it is acknowledged, so a replica that takes a partition over resumes from
a state and an offset that agree.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from driftwire.stream.state.compacted import read_to_end

#: the format of a checkpoint record
STATE_FORMAT = 1


@dataclass
class Position:
    """Where one partition stands (see the module doc)."""

    taken: int = -1
    processed: int = -1
    checkpointed: int = -1
    dirty: bool = False


class Checkpoints:
    """The positions of the assigned partitions and their checkpoints on the state topic."""

    def __init__(self, group_id: str, state_topic: str):
        self.group_id = group_id
        self.state_topic = state_topic
        self.positions: dict[tuple[str, int], Position] = {}

    # -- positions -----------------------------------------------------------------------
    def start(self, key: tuple[str, int], offset: int | None = None, checkpointed: bool = False) -> None:
        """Partition ``key`` is assigned; it resumes at ``offset`` (None: from the group's start)."""
        start = -1 if offset is None else offset
        self.positions[key] = Position(start, start, start if checkpointed else -1)

    def drop(self, key: tuple[str, int]) -> None:
        self.positions.pop(key, None)

    def taken(self, key: tuple[str, int]) -> int:
        return self.positions[key].taken

    def take(self, key: tuple[str, int], offsets: np.ndarray) -> np.ndarray:
        """Which of a run's records (``offsets``, in fetch order) were not taken before: those
        above every earlier one. The partition's position moves past them."""
        position = self.positions[key]
        before = np.maximum.accumulate(np.concatenate(([position.taken - 1], offsets[:-1])))
        keep = offsets > before
        if keep.any():
            position.taken = max(position.taken, int(offsets.max()) + 1)
        return keep

    def touch(self, key: tuple[str, int]) -> None:
        """The partition's state changed without a record of its own."""
        self.positions[key].dirty = True

    def processed(self) -> None:
        """Every record taken so far is processed."""
        for position in self.positions.values():
            position.processed = position.taken

    # -- checkpoints ---------------------------------------------------------------------
    def write(self, keys, snapshot, publisher) -> list[TopicPartition]:
        """Produce the checkpoint of each of ``keys`` that moved since its last one
        (``snapshot(key, offset)`` its state); return the offsets to commit once they are
        acknowledged (then call :meth:`written`)."""
        commits = []
        for key in keys:
            position = self.positions[key]
            # The offset after the last record processed, not the consumer's position: a
            # rebalance can run while fetched records still wait to be processed.
            offset = position.processed
            if (offset < 0 or offset == position.checkpointed) and not position.dirty:
                continue
            position.dirty = False
            if offset < 0:
                # labels wait in the store of a partition none of whose records came yet: keep
                # them, and start from the partition's beginning as an uncommitted group does
                offset = OFFSET_BEGINNING
            record = {"format": STATE_FORMAT, "offset": offset, **snapshot(key)}
            # level 1: the large parts (windows, the join) are compressed already
            publisher.produce(self.state_topic, zlib.compress(orjson.dumps(record), 1), self._record_key(key))
            if offset >= 0:
                commits.append(TopicPartition(key[0], key[1], offset))
        return commits

    def written(self, commits: list[TopicPartition]) -> None:
        for tp in commits:
            position = self.positions.get((tp.topic, tp.partition))
            if position is not None:
                position.checkpointed = tp.offset

    def read(self, keys: set[tuple[str, int]], reader_config: dict) -> dict:
        """The newest checkpoint of each of ``keys`` on the state topic (read to its end)."""
        wanted = {self._record_key(k): k for k in keys}
        found: dict[tuple[str, int], dict] = {}

        def take(msg) -> None:
            k = wanted.get(msg.key()) if msg.error() is None else None
            if k is not None:
                found[k] = orjson.loads(zlib.decompress(msg.value()))

        reader = Consumer(reader_config)
        try:
            read_to_end(reader, self.state_topic, take)
        finally:
            reader.close()
        return found

    def _record_key(self, key: tuple[str, int]) -> bytes:
        return f"{self.group_id}/{key[0]}/{key[1]}".encode()
