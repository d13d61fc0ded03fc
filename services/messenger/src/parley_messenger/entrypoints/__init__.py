"""How work reaches the messenger: Kafka subscribers."""
