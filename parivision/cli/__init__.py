"""The ``parivision`` command line: thin commands that parse options and call library code.

A face of the system, on top of the layers (README, "Layout"): commands may use every package;
nothing below imports them.  Each module holds one group of commands on the one Typer ``app``.
"""

from __future__ import annotations

from parivision.cli.common import app

# Imported for their commands, in the order ``--help`` lists them.
# isort: off
from parivision.cli import services, training  # noqa: F401
from parivision.cli import pipeline, retraining  # noqa: F401
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    from parivision.cli.children import die_with_parent

    die_with_parent()  # a child of `demo` or `stream --workers` ends with its parent
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
