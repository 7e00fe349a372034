"""Reference profiles: read from files at start-up and from the compacted references topic.

A training job publishes a model version's :class:`~driftwire.schemas.ReferenceProfile` as JSON
to the references topic (default ``drift-references``), keyed ``model/model_version``, when it
ships the model. Every replica reads the whole topic at start-up, before it consumes events, and
then keeps reading it: a new profile applies to the next window of its model version. A record
that is not a valid profile is logged and counted, and reading goes on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
from confluent_kafka import Consumer, KafkaException
from pydantic import ValidationError

from driftwire.schemas import ReferenceProfile
from driftwire.stream.state.compacted import read_to_end

log = logging.getLogger("driftwire")


def load_profile_files(paths) -> dict[tuple[str, str], ReferenceProfile]:
    """Profiles by (model, version) from JSON files; a bad file stops start-up with its name."""
    profiles = {}
    for path in paths:
        try:
            profile = ReferenceProfile.model_validate_json(Path(path).read_bytes())
        except (OSError, ValidationError) as exc:
            raise ValueError(f"reference profile {path}: {exc}") from exc
        profiles[(profile.model, profile.model_version)] = profile
    return profiles


class ReferenceReader:
    """Reads the references topic from its beginning, with no consumer group (every replica reads
    all of it), and hands each valid profile to ``use``."""

    def __init__(self, consumer_conf: dict, topic: str, use, metrics):
        # assigned, never subscribed: the group id is only what librdkafka requires
        conf = {**consumer_conf, "group.id": "driftwire-references", "enable.auto.commit": False}
        self.topic = topic
        self.use = use
        self.metrics = metrics
        self.consumer = Consumer(conf)
        self._assigned = False

    def read_to_end(self, timeout: float = 30.0) -> int:
        """Apply every profile on the topic now; returns how many were applied."""
        applied = 0

        def take(msg) -> None:
            nonlocal applied
            applied += self._take(msg)

        try:
            self._assigned = read_to_end(self.consumer, self.topic, take, timeout)
        except KafkaException as exc:
            log.warning("references topic %s not readable: %s", self.topic, exc)
        return applied

    def poll(self) -> int:
        """Apply the profiles published since the last call."""
        if not self._assigned:
            return self.read_to_end(timeout=0.0)
        return sum(self._take(msg) for msg in self.consumer.consume(100, 0))

    def _take(self, msg) -> int:
        if msg.error() is not None:
            log.warning("references topic: %s", msg.error())
            return 0
        if msg.value() is None:
            return 0  # a tombstone: the profile stays until another replaces it
        try:
            profile = ReferenceProfile.model_validate(orjson.loads(msg.value()))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            self.metrics.references.labels("topic", "invalid").inc()
            log.error("invalid reference profile at %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(),
                      str(exc)[:500])
            return 0
        self.metrics.references.labels("topic", "ok").inc()
        log.info("reference profile for %s from %s[%d]@%d", profile.key, msg.topic(), msg.partition(), msg.offset())
        self.use(profile)
        return 1

    def close(self) -> None:
        self.consumer.close()
