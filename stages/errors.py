"""User-facing failures: a clear message and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input or environment that they can fix."""


def cli(main: F) -> F:
    """Wrap a stage main: UserError prints 'error: …' to stderr and exits 2."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            print("interrupted; no output was written for this stage.", file=sys.stderr)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
