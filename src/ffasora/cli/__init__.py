"""The ``ffasora`` command line: one Typer app (:mod:`.app`), one module per command group.

Each module exposes ``register(app)``; commands parse arguments, build a config and call the library.
Heavy imports (torch, models) happen inside the commands so that ``ffasora --help`` stays instant. Errors
are handled once, by the root group (:mod:`ffasora.cli.errors`): bad input is one ``error:`` line and a
non-zero exit; a traceback means a bug.
"""

from ffasora.cli.app import app, main

__all__ = ["app", "main"]
