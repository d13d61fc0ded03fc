"""I/O of the scheduler: its PostgreSQL schema and the Kafka publisher."""
