"""How the scheduler is reached: Kafka subscribers and HTTP routes."""
