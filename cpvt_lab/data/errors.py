"""DataError: a dataset that cannot be found or read, naming the config value to change."""
from __future__ import annotations


class DataError(RuntimeError):
    """A dataset that cannot be found or read; the message says where we looked and what to do,
    ``key`` names the config value to change."""

    def __init__(self, message: str, key: str = "data"):
        super().__init__(message)
        self.key = key
