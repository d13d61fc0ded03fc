"""Helpers the test suite shares: running apps in-process, serving them, reading topics."""
