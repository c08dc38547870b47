"""User-facing errors: each one is a single line that says what is wrong and how to fix it.

The CLI prints ``error: <message>`` for any :class:`MSABenchError` and exits with status 2, without a
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MSABenchError(Exception):
    """Base class of every error caused by user input (flags, configs, data files)."""


class UnknownNameError(MSABenchError, KeyError):
    """An unknown method, dataset, protocol, policy or config key."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        valid = sorted(valid)
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        kinds = f"{kind[:-1]}ies" if kind.endswith("y") and kind[-2:-1] not in "aeiou" else f"{kind}s"
        super().__init__(f"unknown {kind} '{name}'.{hint} Valid {kinds}: {', '.join(valid)}.")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConfigError(MSABenchError, ValueError):
    """A value out of range or inconsistent with another one."""


class DatasetNotFoundError(MSABenchError, FileNotFoundError):
    """A data file that is not where the user said it is."""


class DataFormatError(MSABenchError, ValueError):
    """A data file that does not follow the expected format (names the key or shape that is wrong)."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnsafePickleError(DataFormatError):
    """A pickle that tries to build an object outside numpy arrays, built-in containers and scalars."""


class DataWarning(UserWarning):
    """Data used after a repair (non-finite features zeroed, lengths clipped), or that looks mislabelled.

    The message says what was found, where (file, split, key) and what was done. The runner records every
    one in the run's ``status.json`` (``warnings``); the CLI prints each as one ``warning:`` line.
    """


class OutputError(MSABenchError, OSError):
    """An output location (results root, leaderboard file, export path) that cannot be created or written."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0])


class PluginError(MSABenchError):
    """A method or dataset asked for by name whose plugin (an installed package's entry point) won't load."""


class PluginWarning(UserWarning):
    """A plugin left out: its entry point failed to load, or its method's name is taken.

    The message is one line naming the distribution and the error; the other methods are unaffected.
    """


class UnknownKeyError(UnknownNameError):
    """An unknown config key: the message suggests the closest valid key, and how to list them all.

    A config has some seventy keys; listing them in the error line would bury the suggestion, so they are
    listed on request (``msabench list keys``).
    """

    def __init__(self, key: str, valid: Iterable[str], method: str | None = None) -> None:
        close = difflib.get_close_matches(key, list(valid), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        listing = f"msabench list keys --method {method}" if method else "msabench list keys"
        Exception.__init__(self, f"unknown config key '{key}'.{hint} `{listing}` lists the valid keys.")


class ResultsWarning(DataWarning):
    """A run left out of a leaderboard: its status record is missing, torn, or says it never ended.

    One ``warning:`` line per run, naming its directory; the other runs are aggregated.
    """
