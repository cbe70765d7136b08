"""The error hierarchy shared by every stage; the CLI and job runner turn these into exit codes and messages."""

from __future__ import annotations

EXIT_OK = 0
EXIT_VALIDATION_FAILED = 1
EXIT_BAD_INPUT = 2


class DiffuseLLMError(Exception):
    """Base of every error the product raises on purpose.

    `message` says what went wrong; `hint` says what the user can do about it.
    """

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class InputError(DiffuseLLMError):
    """Bad input from the user: a spec, a path, a config value, a target. Exit code 2."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(InputError):
    """A configuration file or override is invalid."""


class SpecError(InputError):
    """A spec file or issue block is invalid."""


class RepositoryError(InputError):
    """The repository given cannot be used (not git, dirty in the way, unreadable)."""


class OperationError(InputError):
    """A refactor operation cannot be done safely; nothing was changed."""


class SandboxError(DiffuseLLMError):
    """The sandbox itself could not run (missing bubblewrap, bad mount); not a failing check."""

    exit_code = EXIT_BAD_INPUT


class ValidationFailedError(DiffuseLLMError):
    """The change was made but introduced new failures in validation. Exit code 1."""

    exit_code = EXIT_VALIDATION_FAILED
