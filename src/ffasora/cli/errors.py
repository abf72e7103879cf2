"""One rule for the whole command line: bad input is a short message and a non-zero exit, never a traceback.

Commands check what they can before loading a model or touching data and raise :class:`UserError` (or let the
library's ``ValueError`` through: the library raises it, naming the value, for input it cannot use). The root
command group (:class:`CommandGroup`) turns those into ``error: ...`` on stderr and exit status 2; an
``OSError`` (a file that cannot be read or written, a full disk) into the same with status 1; a usage error
of click into one line plus the hint to ``--help``. Anything else is a bug in ffasora: its traceback is shown
with a note asking for a report. Commands that write share :func:`check_output_path` and
:func:`refuse_overwrite` (a file is replaced only with ``--overwrite``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer._click.core import Context  # typer vendors click (0.29+)
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperGroup

from ffasora import __version__

USER_ERROR = 2  # like click's usage errors
ENVIRONMENT_ERROR = 1
BUG_NOTE = (
    f"This is a bug in ffasora {__version__}, not a problem with your input: please report it with the "
    "command you ran and this output."
)


class UserError(Exception):
    """Input that cannot be used; the message names the input and says what would be right."""


def check_output_path(path: Path, option: str, *, folder: bool = False) -> None:
    """Refuse an output path that cannot be written: one under a file, or a file where a folder is wanted
    (and the other way round)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {path}: {parent} is a file, not a folder")
            break
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file; expected a folder")
    if not folder and path.is_dir():
        raise UserError(f"{option} {path} is a folder; expected a file name")


def refuse_overwrite(paths: list[Path], overwrite: bool) -> None:
    """Refuse to replace existing files unless ``--overwrite`` was given."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} exists{more}; pass --overwrite to replace it")


def _show(message: str, hint: str | None = None) -> None:
    lines = " ".join(message.split()) if "\n" not in message.strip() else message.strip()
    typer.echo(f"error: {lines}", err=True)
    if hint:
        typer.echo(hint, err=True)


def os_error_message(err: OSError) -> str:
    """``PATH: reason`` for an ``OSError`` (its file name first, when it has one)."""
    reason = err.strerror or str(err)
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


class CommandGroup(TyperGroup):
    """The root group: every subcommand runs inside :meth:`invoke`, so its errors are handled here once."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except UsageError as err:
            sub = err.ctx or ctx
            _show(err.format_message(), f"Try '{sub.command_path} --help' for help.")
            raise typer.Exit(err.exit_code) from None
        except ClickException:
            raise
        except (UserError, ValueError) as err:
            _show(str(err))
            raise typer.Exit(USER_ERROR) from None
        except OSError as err:
            _show(os_error_message(err))
            raise typer.Exit(ENVIRONMENT_ERROR) from None
        except Exception as err:
            err.add_note(BUG_NOTE)
            raise
