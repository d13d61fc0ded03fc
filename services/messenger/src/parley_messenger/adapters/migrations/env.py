"""Alembic environment of the messenger: its tables, in its own schema."""

from parley_messenger.adapters.database import SCHEMA, metadata
from parley_shared.database import run_migrations_in_env

run_migrations_in_env(metadata, SCHEMA)
