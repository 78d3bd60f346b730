"""The project's error classes, importable from every layer (cli, methods, stages, library, evaluation).

Each names the config key, file or line at fault; the CLI catches `SynpoError` and prints the message
without a traceback. Kept free of imports so that the lowest layers can raise them.
"""

from __future__ import annotations


class SynpoError(Exception):
    """Base of every error the `synpo` and `synpo-report` commands report as a one-line message."""


class ConfigError(SynpoError, ValueError):
    """A config value that composes but cannot work; the message names the key."""


class DataError(SynpoError, ValueError):
    """Bad input data; the message names the file and line."""


class ModelError(SynpoError, RuntimeError):
    """A model that cannot be found or loaded; the message says what to set."""


class JudgeError(SynpoError, RuntimeError):
    """A judge that cannot be used as configured; the message says what to set."""


class EvaluationError(SynpoError, ValueError):
    """Bad evaluation input (suite, task, file, checkpoint); the message names the config key."""


class ReportError(SynpoError, ValueError):
    """Run folders that cannot be reported on; the message names the folder or file."""
