"""The stages' command-line shell: `cli` wraps a stage main so a UserError is one line and exit
status 2, never a traceback, Ctrl-C and SIGTERM unwind with a hint, and --help prints the stage's
docstring; and where the library's progress lines and warnings go (its loggers, on stderr)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from transferlab.errors import EXIT_USER_ERROR, UserError

F = TypeVar("F", bound=Callable[..., object])


class _Plain(logging.Formatter):
    """'warning: …' for warnings and worse, the bare message for progress lines."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno < logging.WARNING else f"warning: {message}"


class _Stderr(logging.StreamHandler):
    """A handler that writes to sys.stderr as it is when a record comes, not as it was when
    the handler was made: a main called in a process whose stderr is replaced later (the
    bench, a test) never logs into a closed stream."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass  # always the current sys.stderr


def show_logs() -> None:
    """Send the library's log records (the `transferlab` loggers) to stderr, once."""
    logger = logging.getLogger("transferlab")
    if not logger.handlers:
        handler = _Stderr()
        handler.setFormatter(_Plain())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def cli(main: F) -> F:
    """Wrap a stage main: UserError prints 'error: …' to stderr and exits 2."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> object:
        if {"-h", "--help"} & set(sys.argv[1:]) and _command(main).startswith("stages."):
            with contextlib.suppress(BrokenPipeError):  # `--help | head` closes the pipe early
                print(usage(main), flush=True)  # a stage takes no options: its docstring
            sys.exit(0)
        show_logs()
        # SIGTERM (schedulers, `kill`) unwinds like Ctrl-C, so temporary files are removed.
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            if recovery_hint():
                print(recovery_hint(), file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            print(
                "interrupted; DVC has not recorded this stage's outputs, so `dvc repro` reruns it.",
                file=sys.stderr,
            )
            sys.exit(130)
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)

    return wrapper  # type: ignore[return-value]


def usage(main: Callable[..., object]) -> str:
    """A stage's help: its module's docstring, which says what it does and takes."""
    module = sys.modules.get(main.__module__)
    spec = getattr(module, "__spec__", None)
    name = spec.name if spec else main.__module__
    doc = (module.__doc__ or "").strip() if module else ""
    return (
        f"python -m {name}\n\n{doc}\n\nIts params come from params.yaml: run it with `dvc repro`."
    )


def _command(main: Callable[..., object]) -> str:
    """The module `python -m` ran `main` from (its own name even when run as __main__)."""
    spec = getattr(sys.modules.get(main.__module__), "__spec__", None)
    return spec.name if spec else main.__module__


def recovery_hint() -> str:
    """Under `dvc repro`, how to get back the outputs DVC removed before the stage ran."""
    stage = os.environ.get("DVC_STAGE", "")
    if not stage or stage == "validate" or os.environ.get("RANK", "0") != "0":
        return ""
    return (
        f"hint: DVC removed {stage}'s previous outputs before running it; `dvc checkout "
        f"{stage}` restores the cached ones and `git checkout -- reports/` the reports."
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
