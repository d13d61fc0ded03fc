"""The messenger's I/O: PostgreSQL, provider SDKs, template files."""
