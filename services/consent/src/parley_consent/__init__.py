"""Parley consent."""

__version__ = "0.1.0"
