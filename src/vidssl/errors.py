"""Error types shared by the whole package.

`UserError` is for mistakes a user can cause (bad path, bad config key, wrong checkpoint, missing
split file). Its message is one line that names the thing and what was expected; the CLI prints it
and exits with code 2, without a traceback. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input; printed as one line by the CLI (exit code 2)."""


class ConfigError(UserError):
    """An unknown config key or an invalid value."""


class DataError(UserError):
    """A dataset root, split file or annotation that is missing or malformed."""


class CheckpointError(UserError):
    """A checkpoint that cannot be read or does not match the expected layout."""


class CorruptVideoError(Exception):
    """A single video (or frame folder / LMDB record) cannot be decoded.

    Datasets catch this, count it, log it once per video and return another sample; it is not a
    `UserError` because one bad file must never stop a run.
    """
