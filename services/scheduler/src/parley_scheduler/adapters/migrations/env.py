from parley_scheduler.adapters.database import SCHEMA, metadata
from parley_shared.database import run_migrations_in_env

run_migrations_in_env(metadata, SCHEMA)
