"""One exception type for every expected failure, printed as one line by the shells."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any


class RetrainError(Exception):
    """An expected failure: bad input, a refused command, a broken invariant."""

    exit_code = 1


class DataError(RetrainError):
    """A batch or prepared file breaks the data contract."""


class TooFewRows(DataError):
    """The labelled rows so far cannot give both training rows and a holdout."""


class RegistryError(RetrainError):
    """The champion pointer, a tag or a model's bytes are not what they should be."""


class Refused(RetrainError):
    """A command declined to act; nothing was changed."""

    exit_code = 3


def one_line(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a RetrainError raised by a shell's main into one stderr line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RetrainError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(err.exit_code) from None
        except BrokenPipeError:
            # The reader went away (`retrain history | head`): stop quietly, as other tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(141) from None
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            print(
                f"error: {err.filename or 'a file'}: no space left on the device; free some "
                "and run again (files are written whole or not at all: nothing recorded "
                "was changed)",
                file=sys.stderr,
            )
            raise SystemExit(1) from None

    return wrapper
