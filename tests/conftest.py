"""Shared fixtures: one real embedded broker (Tansu) per test session, and names of a test's own."""

from __future__ import annotations

import uuid

import pytest

from driftwire.stream.broker import EmbeddedBroker
from driftwire.stream.settings import Settings


@pytest.fixture(scope="session")
def broker():
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def names():
    """Topic and group names of a test's own, so tests sharing the broker do not meet."""
    tag = uuid.uuid4().hex[:8]
    return {
        "group_id": f"g-{tag}",
        "predictions_topic": f"predictions-{tag}",
        "features_topic": f"features-{tag}",
        "labels_topic": f"labels-{tag}",
        "alerts_topic": f"alerts-{tag}",
        "dlq_topic": f"dlq-{tag}",
        "state_topic": f"state-{tag}",
        "references_topic": f"references-{tag}",
        "retrain_topic": f"retrain-{tag}",
    }


@pytest.fixture
def settings(broker, names):
    return Settings(bootstrap_servers=broker.bootstrap_servers, metrics_port=0, metrics_host="127.0.0.1",
                    batch_timeout=0.2, lag_interval=0.5, checkpoint_interval=1.0, **names)
