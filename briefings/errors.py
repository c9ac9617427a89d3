"""The few exceptions the core raises. Only cli.py turns them into messages and exit codes."""

from __future__ import annotations


class BriefingsError(Exception):
    """An error a user can act on: a message and, where there is one, the fix."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(BriefingsError):
    """config.toml is missing or malformed; the message names file, line and key."""

    exit_code = 2


class StoreError(BriefingsError):
    """The state file cannot be opened, migrated or locked."""


class FeedError(BriefingsError):
    """One feed could not be fetched or parsed. Never fatal for a run."""


class DeliveryError(BriefingsError):
    """A briefing could not be written or sent."""
