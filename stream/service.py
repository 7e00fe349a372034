"""The service loop: consume -> decode -> route -> detect -> publish -> checkpoint -> commit.

Delivery is at-least-once. Offsets are committed only at a checkpoint, after every alert and dead
letter produced so far has been acknowledged and the detector state of each assigned partition
(with the offset it corresponds to) has been written to the state topic. A replica that takes a
partition over, or restarts after a crash, restores that state and resumes from its offset, so
no alert is lost; records after the checkpoint are processed again and produce the same alert
ids, which consumers use to deduplicate.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from operator import itemgetter

import numpy as np
import orjson
from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from driftwire.detectors import kernels, standardize, window
from driftwire.stream.alert.publish import Cooldown, Publisher
from driftwire.stream.alert.retrain import RetrainPlanner
from driftwire.stream.alert.stage import AlertStage
from driftwire.stream.detect.monitor import PartitionMonitor, SeriesBudget
from driftwire.stream.detect.stage import Batch, DetectStage
from driftwire.stream.ingest import decode as dec
from driftwire.stream.ingest import scan, vocabulary
from driftwire.stream.ingest.labels import LabelRouter
from driftwire.stream.ingest.router import Router
from driftwire.stream.join import table as jointable
from driftwire.stream.metrics import HealthState, Metrics, MetricsServer
from driftwire.stream.settings import DetectionConfig, Settings
from driftwire.stream.state.checkpoints import Checkpoints
from driftwire.stream.state.references import ReferenceReader, load_profile_files

log = logging.getLogger("driftwire")

#: A partition's checkpoint holds every series' detectors: allow records far above Kafka's 1 MB default.
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024
#: A reference profile keeps a sketch of a few thousand numbers per numeric signal.
MAX_REFERENCE_BYTES = 16 * 1024 * 1024


class FatalError(RuntimeError):
    """The service cannot go on without risking a lost alert; it exits non-zero and restarts."""


def client_config(settings: Settings, config: DetectionConfig, role: str) -> dict:
    """librdkafka configuration of a consumer or producer: driftwire's defaults, then the
    environment's ``DRIFTWIRE_KAFKA_*``, then the config file's ``kafka:`` and ``consumer:``/``producer:``."""
    conf: dict = {"bootstrap.servers": settings.bootstrap_servers}
    if role == "consumer":
        conf.update({
            "group.id": settings.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            # Once the local queue holds queued.min.messages, librdkafka waits this long before
            # fetching again (1 s by default): a consumer that processes while it consumes then
            # drains the queue and idles. Check again soon instead.
            "fetch.queue.backoff.ms": 10,
            # A batch is at most what the local queue holds: with large messages, librdkafka's
            # defaults (64 MiB queued, 50 MiB a fetch) made batches whose scan took ~1 GiB.
            "queued.max.messages.kbytes": 16384,
            "fetch.max.bytes": 16 * 1024 * 1024,
        })
    else:
        conf.update({"enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.type": "lz4",
                     "message.max.bytes": MAX_CHECKPOINT_BYTES + 1024,
                     # bounds what dead letters and alerts can hold in memory while the broker lags
                     # (librdkafka's default is 1 GiB); room for one checkpoint record
                     "queue.buffering.max.kbytes": 2 * MAX_CHECKPOINT_BYTES // 1024})
    conf.update(settings.kafka_properties())
    conf.update(config.kafka)
    conf.update(config.consumer if role == "consumer" else config.producer)
    return conf


def connection_config(conf: dict) -> dict:
    """The properties of a client configuration that say where the bus is and how to log in:
    what an admin client needs of a consumer's or producer's configuration."""
    return {k: v for k, v in conf.items()
            if k == "bootstrap.servers" or k.startswith(("security.", "sasl.", "ssl.", "socket.", "client."))}


def member_config(settings: Settings, config: DetectionConfig) -> dict:
    """client_config of the consumer that joins the group (the state and references readers are
    assigned, never members): with ``group.instance.id`` when the settings give one."""
    conf = client_config(settings, config, "consumer")
    if settings.group_instance_id:
        conf.setdefault("group.instance.id", settings.group_instance_id)
    if cooperative(conf) and config.join.enabled is not False:
        log.warning("a cooperative assignment (%s) does not give partition p of the predictions and labels "
                    "topics to one replica: labels whose predictions another replica reads are not joined "
                    "(counted as no_predictions_partition)",
                    conf.get("partition.assignment.strategy") or "group.protocol=consumer")
    return conf


def cooperative(conf: dict) -> bool:
    """Whether librdkafka rebalances incrementally under ``conf`` (confluent-kafka does not
    expose its rebalance_protocol()): a cooperative assignor, or the KIP-848 group protocol."""
    if str(conf.get("group.protocol", "classic")).lower() == "consumer":
        return True
    strategies = str(conf.get("partition.assignment.strategy", "")).split(",")
    return "cooperative-sticky" in {s.strip() for s in strategies}


#: librdkafka statistics once a second: what readiness learns the leaders' silence from
STATISTICS_INTERVAL_MS = 1000


def leader_idle(stats: dict, assigned) -> float | None:
    """Seconds since the leaders of the ``assigned`` (topic, partition)s last answered, from
    librdkafka's statistics: the least ``rxidle`` among them. A fetch is a long poll answered
    every fetch.wait.max.ms even without records, so a serving leader stays well under a
    second. 0 while records of those partitions wait in the local queue (a full queue pauses
    fetching, not consumption); None when no leader is known or none has answered on its
    current connection."""
    leaders = set()
    for topic, t in stats.get("topics", {}).items():
        for p, part in t.get("partitions", {}).items():
            if (topic, int(p)) in assigned:
                if part.get("fetchq_cnt", 0) > 0:
                    return 0.0
                leaders.add(part.get("leader", -1))
    idle = [b["rxidle"] for b in stats.get("brokers", {}).values()
            if b.get("nodeid", -1) >= 0 and b["nodeid"] in leaders and b.get("rxidle", -1) >= 0]
    return min(idle) / 1e6 if idle else None


def ensure_topics(settings: Settings, config: DetectionConfig) -> None:
    """Create driftwire's topics where missing (the state topic compacted)."""
    admin_conf = {k: v for k, v in client_config(settings, config, "producer").items()
                  if k not in ("enable.idempotence", "acks", "linger.ms", "compression.type", "message.max.bytes",
                                "queue.buffering.max.kbytes")}
    admin = AdminClient(admin_conf)
    n = settings.topic_partitions
    wanted = [
        NewTopic(settings.predictions_topic, n),
        NewTopic(settings.features_topic, n),
        NewTopic(settings.labels_topic, n),
        NewTopic(settings.alerts_topic, n),
        NewTopic(settings.retrain_topic, n),
        NewTopic(settings.dlq_topic, n),
        NewTopic(settings.state_topic, n,
                 config={"cleanup.policy": "compact", "max.message.bytes": str(MAX_CHECKPOINT_BYTES)}),
        # a profile with a thousand-item sketch per signal can pass the 1 MiB default
        NewTopic(settings.references_topic, 1,
                 config={"cleanup.policy": "compact", "max.message.bytes": str(MAX_REFERENCE_BYTES)}),
    ]
    existing = admin.list_topics(timeout=10).topics
    missing = [t for t in wanted if t.topic not in existing]
    for future in admin.create_topics(missing).values() if missing else []:
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def check_copartitioning(settings: Settings, config: DetectionConfig) -> bool:
    """Warn when the predictions and labels topics have different partition counts: the label
    join then misses the labels that land in another partition number than their prediction."""
    admin = AdminClient(connection_config(client_config(settings, config, "consumer")))
    topics = admin.list_topics(timeout=10).topics
    counts = {t: len(topics[t].partitions) for t in (settings.predictions_topic, settings.labels_topic)
              if t in topics}
    if len(set(counts.values())) > 1:
        log.warning("the label join needs co-partitioned topics, but %s: labels are matched to predictions "
                    "only within one partition number (producers key both by event_id)",
                    ", ".join(f"{t} has {n} partitions" for t, n in counts.items()))
        return False
    return True


class DriftService:
    """driftwire's consumer service. ``run()`` blocks until ``stop()`` or SIGTERM/SIGINT."""

    def __init__(self, settings: Settings, config: DetectionConfig | None = None, metrics: Metrics | None = None,
                 stop: threading.Event | None = None):
        self.settings = settings
        self.config = config or DetectionConfig()
        self.metrics = metrics or Metrics(max_models=settings.max_models)
        self.health = HealthState(settings.fetch_stall_timeout)
        self.metrics.last_fetch_age.set_function(self.health.fetch_age)
        self.budget = SeriesBudget(settings.max_series, self.metrics.models)
        self.monitors: dict[tuple[str, int], PartitionMonitor] = {}
        # One cooldown for the whole replica: a model whose events spread over several
        # partitions drifts in all of them at once, and one alert says so.
        self.cooldown = Cooldown()
        self.routers: dict[tuple[str, int], Router] = {}
        self._kind = {settings.predictions_topic: dec.PREDICTION, settings.features_topic: dec.FEATURE,
                      settings.labels_topic: dec.LABEL}
        self.planner = RetrainPlanner(self.config.retrain, settings.labels_topic)
        #: the one owner of the partitions' offsets and checkpoints
        self.checkpoints = Checkpoints(settings.group_id, settings.state_topic)
        #: the one way from a finding to an alert (its publisher comes with the producer)
        self.alerts = AlertStage(None, self.cooldown, self.planner, self.metrics)
        #: (start, end, event ids) of each run of the batch being processed
        self._batch_ids: list = []
        #: what each batch's values, windows and joined pairs find
        self.detect = DetectStage(settings, self.config, self.metrics, self.alerts, self.planner)
        self._allowed = frozenset(self.config.allowed_models)
        #: reference profiles by (model, version), from the config's files and the references topic
        self.profiles = load_profile_files(self.config.references)
        self._references: ReferenceReader | None = None
        #: partitions paused by the join's alignment (see _align_join)
        self._paused: set[tuple[str, int]] = set()
        self._asked_marks: dict[tuple[str, int], tuple[float, tuple[int, int] | None]] = {}
        self._offsets = np.empty(0, dtype=np.int64)
        self._times = np.empty(0)
        self._stop = stop or threading.Event()
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._publisher: Publisher | None = None
        self._http: MetricsServer | None = None
        self._last_checkpoint = 0.0
        #: the loop failed: its state may be ahead of its offsets, and nothing more is checkpointed
        self._failed = False
        #: the group rebalances incrementally (cooperative-sticky): partitions are added, not replaced
        self._cooperative = False
        self._last_lag = 0.0
        self._last_stats = 0.0
        self.metrics_port: int | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def stop(self, *_args) -> None:
        self._stop.set()

    def start_metrics_server(self) -> int:
        self._http = MetricsServer(self.metrics, self.health, self.settings.metrics_host, self.settings.metrics_port)
        self._http.start()
        self.metrics_port = self._http.port
        return self.metrics_port

    def warm_up(self) -> float:
        """Load the compiled detector loops, standardizer and scanner (compiling them on a cold
        numba cache) now, rather than while the first batch waits on them; returns the seconds it
        took. Once loaded, a second call costs under a millisecond."""
        return warm_up_kernels({spec.name for spec in self.config.detector_specs()})

    def run(self) -> int:
        """Consume until stopped; returns the exit code (0 after a clean stop)."""
        s = self.settings
        if self._http is None:
            self.start_metrics_server()
        if s.auto_create_topics:
            ensure_topics(s, self.config)
        if self.config.join.enabled:
            check_copartitioning(s, self.config)
        self.warm_up()
        self._references = ReferenceReader(client_config(s, self.config, "consumer"), s.references_topic,
                                           self._use_profile, self.metrics)
        self._references.read_to_end()
        self._producer = Producer(client_config(s, self.config, "producer"))
        self._publisher = Publisher(self._producer, s.alerts_topic, s.dlq_topic, self.metrics)
        self.alerts.publisher = self.detect.publisher = self._publisher
        member = member_config(s, self.config)
        self._cooperative = cooperative(member)
        self._consumer = Consumer({**member, "error_cb": self._on_client_error,
                                   "statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": self._on_stats})
        topics = s.input_topics if self.config.join.enabled else [t for t in s.input_topics if t != s.labels_topic]
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)
        freeze_start_up_heap()
        log.info("consuming %s from %s as group %s; metrics on :%s/metrics",
                 s.input_topics, s.bootstrap_servers, s.group_id, self.metrics_port)
        try:
            while not self._stop.is_set():
                msgs = self._consumer.consume(s.batch_size, s.batch_timeout)
                if msgs:
                    self.health.connected = True
                    self.process(msgs)
                    self._align_join()
                self._producer.poll(0)
                self._maybe_checkpoint()
                self._maybe_report()
            self.checkpoint()
            return 0
        except BaseException:
            # A batch may be partly applied to the detectors, or alerts left unacknowledged: no
            # checkpoint may follow (not even the one a revocation at close would write). The
            # partitions' next owner resumes at the last checkpoint and processes it all again.
            self._failed = True
            raise
        finally:
            self.health.alive = False
            self._references.close()
            self._consumer.close()
            self._producer.flush(10)
            if self._http:
                self._http.stop()
            gc.unfreeze()  # the heap is the collector's again: a process may go on after a service stops

    def _align_join(self) -> None:
        """Pause the partition of predictions or labels whose event time runs more than
        ``join.max_skew`` ahead of its twin while the twin has records left to read; resume it
        once the twin catches up or runs dry. Catching up on a backlog, one topic would
        otherwise be read far ahead of the other and its events wait (or be evicted) in the
        join store; in real time both are at their end and nothing is paused."""
        if not self.config.join.enabled:
            return
        skew, labels_topic = self.config.join.max_skew, self.settings.labels_topic
        wanted = set()
        for (topic, partition), monitor in self.monitors.items():
            store = monitor.join
            if store is None or (labels_topic, partition) not in self.routers:
                continue
            if store.label_clock > store.prediction_clock + skew and self._has_backlog(topic, partition):
                wanted.add((labels_topic, partition))
            elif store.prediction_clock > store.label_clock + skew and self._has_backlog(labels_topic, partition):
                wanted.add((topic, partition))
        if wanted - self._paused:
            self._consumer.pause([TopicPartition(t, p) for t, p in wanted - self._paused])
        if self._paused - wanted:
            self._consumer.resume([TopicPartition(t, p) for t, p in self._paused - wanted])
        self._paused = wanted

    def _has_backlog(self, topic: str, partition: int) -> bool:
        """Records of the partition wait beyond what was taken, by the watermarks of the last
        fetch response; a partition without one yet (an empty one may never get one) is asked
        the broker, at most once a second."""
        tp = TopicPartition(topic, partition)
        low, high = self._consumer.get_watermark_offsets(tp, cached=True)
        if high < 0:
            asked, marks = self._asked_marks.get((topic, partition), (-math.inf, None))
            if time.monotonic() - asked >= 1.0:
                marks = self._watermarks(tp, timeout=1.0)
                self._asked_marks[(topic, partition)] = (time.monotonic(), marks)
            if marks is None:
                return False
            low, high = marks
        taken = self.checkpoints.taken((topic, partition))
        return high > (taken if taken >= 0 else low)

    def _on_stats(self, text: str) -> None:
        """librdkafka's statistics, served by consume(): when the partitions' leaders last answered."""
        try:
            idle = leader_idle(orjson.loads(text), self.monitors.keys() - self._paused)
        except Exception as exc:  # noqa: BLE001 - raised here, it would leave consume() and stop the service
            log.warning("librdkafka statistics not understood: %r", exc)
            return
        if idle is not None:
            self.health.fetched(time.monotonic() - idle)

    def _on_client_error(self, err) -> None:
        # librdkafka retries by itself; readiness reflects whether any broker is reachable.
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.health.connected = False
        log.warning("kafka client: %s", err)

    # -- rebalance -----------------------------------------------------------------------
    def _on_assign(self, consumer, partitions) -> None:
        self.health.connected = True
        reader = client_config(self.settings, self.config, "consumer")
        reader.update({"group.id": f"{self.settings.group_id}-state-reader", "enable.auto.commit": False})
        snapshots = self.checkpoints.read({(tp.topic, tp.partition) for tp in partitions}, reader)
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=10)}
        for tp in partitions:
            key = (tp.topic, tp.partition)
            monitor = PartitionMonitor(tp.topic, tp.partition, self.config, self.budget, self.profiles)
            kind = self._kind[tp.topic]
            if kind == dec.LABEL:
                router = LabelRouter(self.settings.max_message_bytes, self._allowed)
            else:
                router = Router(monitor, kind, self.settings.max_message_bytes, self._allowed)
            if kind == dec.PREDICTION and self.config.join.enabled:
                monitor.enable_join(self.config.join.ttl, self.config.join.max_pending)
            snap = snapshots.get(key)
            if snap is not None:
                monitor.set_state(snap["monitor"])
                self.cooldown.restore(snap["cooldown"])
                self.planner.restore(snap.get("retrain", {}))
                tp.offset = snap["offset"]
                self.checkpoints.start(key, snap["offset"], checkpointed=True)
                log.info("restored %s[%d]: %d series, resuming at offset %d",
                         tp.topic, tp.partition, len(monitor.series), snap["offset"])
            elif committed.get(key, OFFSET_INVALID) >= 0:
                self.checkpoints.start(key, committed[key])
            else:
                self.checkpoints.start(key)
            if monitor.join is not None and not (snap is not None and monitor.join.active):
                monitor.join.active = self.config.join.enabled is True or self._labels_exist(tp.partition)
            self.monitors[key] = monitor
            self.routers[key] = router
        self._assign(consumer, partitions)
        self.health.assigned = bool(self.monitors)
        self.metrics.assigned_partitions.set(len(self.monitors))
        self.metrics.series_tracked.set(self.budget.used)

    def _assign(self, consumer, partitions) -> None:
        """Start fetching ``partitions`` from the offsets set on them. A cooperative rebalance
        hands over only the partitions that move, and they are added to those kept."""
        if self._cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        if partitions:  # the leaders' silence before the partitions were ours is no stall
            self.health.fetched(time.monotonic())

    def _watermarks(self, tp: TopicPartition, timeout: float) -> tuple[int, int] | None:
        """(low, high) watermarks of a partition, asked the broker; None when it cannot say."""
        try:
            return self._consumer.get_watermark_offsets(tp, timeout=timeout)
        except KafkaException as exc:
            log.warning("watermarks of %s[%d]: %s", tp.topic, tp.partition, exc)
            return None

    def _labels_exist(self, partition: int) -> bool:
        """Whether the labels topic's partition ``partition`` holds a record (join.enabled auto)."""
        marks = self._watermarks(TopicPartition(self.settings.labels_topic, partition), timeout=5.0)
        return marks is not None and marks[1] > marks[0]

    def _on_revoke(self, consumer, partitions) -> None:
        try:
            self.checkpoint([(tp.topic, tp.partition) for tp in partitions])
        finally:
            self._drop(partitions)

    def _on_lost(self, consumer, partitions) -> None:
        # Another replica owns these now: its checkpoint, not ours, is authoritative.
        self._drop(partitions)

    def _drop(self, partitions) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._paused.discard(key)
            monitor = self.monitors.pop(key, None)
            if monitor is not None:
                monitor.close()
            self.routers.pop(key, None)
            self.checkpoints.drop(key)
            self.metrics.consumer_lag.remove(tp.topic, str(tp.partition))
        for router in self.routers.values():
            if isinstance(router, Router):
                router.forget_shapes()  # series the cap turned away may fit now
        self.health.assigned = bool(self.monitors)
        self.metrics.assigned_partitions.set(len(self.monitors))
        self.metrics.series_tracked.set(self.budget.used)

    # -- the batch -----------------------------------------------------------------------
    def process(self, msgs) -> None:
        """Decode, route, detect and publish one consumed batch; its records count as processed
        (a checkpoint may record their offsets) only once all of it is."""
        self._process(msgs)
        self.checkpoints.processed()

    def _process(self, msgs) -> None:
        started = time.perf_counter()
        routers = self.routers
        self._batch_ids = []
        if self._offsets.shape[0] < len(msgs):
            self._offsets = np.empty(len(msgs), dtype=np.int64)
            self._times = np.empty(len(msgs))
        labels = []
        batch = Batch(msgs, self._times, self._offsets, self._event_id)
        for start, end, key in _runs(msgs):
            if key is None:
                self._consumer_error(msgs[start].error())
            elif key in routers:
                if routers[key].kind == dec.LABEL:
                    labels.append((start, end, key))  # after the predictions they may join
                else:
                    self._take(key, msgs, start, end)
        for start, end, key in labels:
            self._take_labels(key, msgs, start, end)
        # Events are counted once the whole batch is processed: a scrape that sees them counted
        # sees what they did (joins, alerts) too.
        counted = []
        for key, router in routers.items():
            monitor = self.monitors[key]
            if monitor.join is not None:
                self.detect.joined(key, monitor, batch)
            if not router.counts:
                continue
            counted.append((key[0], router.counts))
            if router.kind == dec.LABEL:
                router.counts = {}
                continue
            series, values, messages, capped = router.flush()
            if capped:
                self.metrics.series_dropped.inc(capped)
            if values.size:
                self.detect.values(monitor, batch, series, values, messages)
            events, groups = router.take_events()
            categories = router.take_categories()
            if events.size:
                self.detect.windows(key, monitor, batch, groups, events, series, values, messages, categories)
        for topic, counts in counted:
            for model, n in counts.items():
                self.metrics.events.labels(topic, self.metrics.model_label(model)).inc(n)
        self.metrics.series_tracked.set(self.budget.used)
        self.metrics.batch_events.observe(len(msgs))
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _take(self, key, msgs, start: int, end: int) -> None:
        """Route ``msgs[start:end]``, records of one partition, and dead-letter the invalid ones."""
        run = msgs[start:end]
        offsets = self._offsets[start:end] = np.fromiter(map(Message.offset, run), dtype=np.int64, count=end - start)
        # Record times in seconds; the router puts each event's own timestamp in their place where
        # it has one (the schema's rule). They are the clock of time windows (see detectors.window).
        self._times[start:end] = np.fromiter(map(_MS, map(Message.timestamp, run)), dtype=np.float64,
                                             count=end - start)
        self._times[start:end] *= 0.001
        router = self.routers[key]
        keep = self.checkpoints.take(key, offsets)
        indices = np.arange(start, end, dtype=np.int64)
        if not keep.all():
            indices = indices[keep]
            run = [run[k] for k in np.flatnonzero(keep).tolist()]
            if not run:
                return
        values = list(map(Message.value, run))
        errors = router.add_batch(values, indices, self._times)
        self.metrics.events_read_one_by_one.labels(key[0]).inc(router.read_one_by_one)
        self._batch_ids.append((start, end, router.event_ids()))
        self._dead_letters(run, errors)
        store = router.monitor.join
        if store is not None and store.active and router.kind == dec.PREDICTION:
            buf, rows = router.join_rows(router.monitor.joins, self._times)
            if rows.size:
                store.add_predictions(buf, rows)

    def _dead_letters(self, run, errors) -> None:
        for k, exc in errors:
            msg = run[k]
            self.metrics.invalid_events.labels(msg.topic(), exc.reason).inc()
            self._publisher.dead_letter(msg, exc.reason, exc.message)

    def _take_labels(self, key, msgs, start: int, end: int) -> None:
        """Join ``msgs[start:end]``, records of one labels partition, into the join store of the
        predictions partition with its number."""
        router = self.routers[key]
        run = msgs[start:end]
        offsets = np.fromiter(map(Message.offset, run), dtype=np.int64, count=end - start)
        self._times[start:end] = np.fromiter(map(_MS, map(Message.timestamp, run)), dtype=np.float64,
                                             count=end - start)
        self._times[start:end] *= 0.001
        keep = self.checkpoints.take(key, offsets)
        if not keep.any():
            return
        indices = np.arange(start, end, dtype=np.int64)[keep]
        run = [m for m, k in zip(run, keep.tolist()) if k]
        owner = self.monitors.get((self.settings.predictions_topic, key[1]))
        store = owner.join if owner is not None else None
        if store is not None and not store.active:
            store.active = True
            log.info("labels arrived on %s[%d]: the predictions of %s[%d] join from offset %d on", key[0], key[1],
                     owner.topic, owner.partition, self.checkpoints.taken((owner.topic, owner.partition)))
        errors = router.add_batch(list(map(Message.value, run)), indices, offsets[keep], self._times, owner)
        self.metrics.events_read_one_by_one.labels(key[0]).inc(router.read_one_by_one)
        self._batch_ids.append((start, end, router.event_ids()))
        self._dead_letters(run, errors)
        if store is None:
            self.metrics.join_events.labels("no_predictions_partition").inc(len(run) - len(errors))
        else:
            self.checkpoints.touch((owner.topic, owner.partition))

    def _consumer_error(self, err) -> None:
        if err.fatal():
            raise FatalError(f"consumer error: {err}")
        log.warning("consumer error: %s", err)

    def _event_id(self, message: int) -> str | None:
        """The event id of message ``message`` of the batch, from its run's scan."""
        for start, end, ids in self._batch_ids:
            if start <= message < end:
                return ids.get(message)
        return None

    def _use_profile(self, profile) -> None:
        """A reference profile from the topic: used from now on by windows of its model version."""
        self.profiles[(profile.model, profile.model_version)] = profile
        for monitor in self.monitors.values():
            monitor.profile_published(profile)

    # -- periodic work -------------------------------------------------------------------
    def _maybe_checkpoint(self) -> None:
        if time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_interval:
            self.checkpoint()

    def checkpoint(self, keys=None) -> None:
        """Flush, write detector state with its offsets, then commit those offsets."""
        self._last_checkpoint = time.monotonic()
        keys = list(self.monitors) if keys is None else [k for k in keys if k in self.monitors]
        if not keys or self._consumer is None or self._failed:
            return
        self._publisher.flush()
        commits = self.checkpoints.write(keys, self._snapshot, self._publisher)
        if not commits:
            return
        try:
            self._publisher.flush()
        except Exception:
            self.metrics.checkpoints.labels("failed").inc()
            raise
        self.checkpoints.written(commits)
        try:
            self._consumer.commit(offsets=commits, asynchronous=False)
        except KafkaException as exc:
            # A commit refused mid-rebalance (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, ...) loses
            # nothing: the next owner resumes from the checkpoint just written, not the commit.
            log.warning("offset commit failed, the checkpoint stands: %s", exc)
            self.metrics.checkpoints.labels("commit_failed").inc()
            return
        self.metrics.checkpoints.labels("ok").inc()

    def _snapshot(self, key) -> dict:
        """What a checkpoint holds of partition ``key``'s state."""
        monitor = self.monitors[key]
        return {"monitor": monitor.get_state(), "cooldown": self.cooldown.get_state(monitor.series),
                "retrain": self.planner.get_state()}

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if now - self._last_lag >= self.settings.lag_interval:
            self._last_lag = now
            self._report_lag()
        if now - self._last_stats >= 1.0:
            self._last_stats = now
            self._report_statistics()
            self._references.poll()

    def _report_lag(self) -> None:
        tps = [TopicPartition(t, p) for t, p in self.monitors]
        if not tps:
            return
        for tp in self._consumer.position(tps):
            # The high watermark of the last fetch response: asking the broker instead costs a
            # round trip per partition, which queues behind a fetch waiting for data.
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:  # no fetch response for this partition yet
                try:
                    _, high = self._consumer.get_watermark_offsets(tp, timeout=1.0)
                except KafkaException as exc:
                    log.warning("watermarks of %s[%d]: %s", tp.topic, tp.partition, exc)
                    continue
            position = tp.offset if tp.offset >= 0 else None
            if position is None:
                try:
                    committed = self._consumer.committed([tp], timeout=1.0)[0].offset
                except KafkaException as exc:
                    # e.g. while a cooperative rebalance runs, which leaves partitions assigned
                    log.warning("committed offset of %s[%d]: %s", tp.topic, tp.partition, exc)
                    continue
                position = committed if committed >= 0 else 0
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(high - position, 0))

    def _report_statistics(self) -> None:
        stores = [m.join for m in self.monitors.values() if m.join is not None]
        self.metrics.join_pending.labels("predictions").set(sum(s.pending_predictions for s in stores))
        self.metrics.join_pending.labels("labels").set(sum(s.pending_labels for s in stores))
        gauge, thresholds = self.metrics.drift_statistic, self.metrics.drift_threshold
        for monitor in self.monitors.values():
            for series, spec, statistic, threshold in monitor.statistics():
                labels = (self.metrics.model_label(series.model), series.model_version, series.signal, spec.name)
                gauge.labels(*labels).set(statistic)
                if threshold is not None:
                    thresholds.labels(*labels).set(threshold)



def warm_up_kernels(detectors=kernels.NAMES) -> float:
    """Load, or on a cold numba cache compile, the bank loops of ``detectors`` (registry names),
    the standardizer, the scanner and the windows; returns the seconds it took."""
    started = time.perf_counter()
    kernels.warm_up_banks(detectors)
    standardize.warm_up()
    scan.warm_up()
    vocabulary.warm_up()
    jointable.warm_up()
    window.warm_up()
    return time.perf_counter() - started


def freeze_start_up_heap() -> None:
    """Keep the objects alive at start-up (numba's and llvmlite's compiled code, river, pydantic:
    hundreds of thousands) out of Python's cyclic garbage collector.

    A batch allocates thousands of short-lived, GC-tracked ``Message`` objects. Each time their
    count triggers a full collection, the collector walks the whole heap, start-up objects
    included: that walk cost the service more per event than creating the messages did. Frozen
    objects are never walked; everything allocated after start-up is collected as before.
    """
    gc.collect()
    gc.freeze()


def _runs(msgs):
    """(start, end, (topic, partition)) of each run of consecutive records of one partition, in
    order; key None for a record carrying a consumer error (a run of its own)."""
    n = len(msgs)
    if not n:
        return []
    # map over the unbound methods: the per-record field reads are a fair share of a batch's cost
    topics = list(map(Message.topic, msgs))
    # any(): a KafkaError is always truthy (and refuses == None, so list.count cannot tell).
    if any(map(Message.error, msgs)):
        bad = [i for i, m in enumerate(msgs) if m.error() is not None]
        partitions = list(map(Message.partition, msgs))
        for i in bad:
            partitions[i] = -1  # an error record may have no partition
        codes = np.fromiter(partitions, dtype=np.int64, count=n)
    else:
        bad = []
        codes = np.fromiter(map(Message.partition, msgs), dtype=np.int64, count=n)
    if topics.count(topics[0]) != n:
        numbers: dict = {}
        codes += np.fromiter([numbers.setdefault(t, len(numbers)) for t in topics], dtype=np.int64, count=n) << 32
    if bad:
        codes[bad] = -1 - np.array(bad)  # distinct negative codes: each error is a run of its own
    starts = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist()]
    ends = [*starts[1:], n]
    # a valid record's code holds its partition in the low 32 bits
    return [(s, e, None if codes[s] < 0 else (topics[s], int(codes[s]) & 0xFFFFFFFF)) for s, e in zip(starts, ends)]


_MS = itemgetter(1)
