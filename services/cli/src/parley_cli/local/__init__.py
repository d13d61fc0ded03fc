"""The embedded default: a Kafka-protocol broker and PostgreSQL started from wheels, and
the Parley processes, on free loopback ports."""
