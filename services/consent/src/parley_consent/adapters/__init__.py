"""Adapters to the outside world: the PostgreSQL store and its migrations."""
