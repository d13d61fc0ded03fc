"""How work reaches the consent service: Kafka subscribers and HTTP routes."""
