"""Parley's shared library: the event contract and cross-cutting plumbing, no business rules."""

__version__ = "0.1.0"
