"""The Kafka runtime: settings, the consume -> detect -> publish service, metrics, broker, CLI."""
