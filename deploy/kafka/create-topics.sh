#!/bin/bash
# Creates driftwire's topics on the compose stack's Kafka. Input topics get the partitions that
# bound how many driftwire replicas can share the work; the state and references topics are
# compacted (a reference profile is kept per model version until a newer one replaces it).
set -euo pipefail
bootstrap="${BOOTSTRAP_SERVERS:-kafka:9092}"
partitions="${INPUT_PARTITIONS:-6}"
create() {
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --create --if-not-exists "$@"
}
create --topic predictions --partitions "$partitions" --replication-factor 1
create --topic features --partitions "$partitions" --replication-factor 1
create --topic labels --partitions "$partitions" --replication-factor 1
create --topic drift-alerts --partitions 3 --replication-factor 1
create --topic retrain-requests --partitions 3 --replication-factor 1
create --topic drift-dlq --partitions 3 --replication-factor 1
create --topic driftwire-state --partitions "$partitions" --replication-factor 1 \
  --config cleanup.policy=compact --config max.message.bytes=67108864
create --topic drift-references --partitions 1 --replication-factor 1 \
  --config cleanup.policy=compact --config max.message.bytes=16777216
/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --list
