"""Errors a person can act on: one line on stderr and a non-zero exit."""
from __future__ import annotations

import sys

from rich.console import Console

err = Console(stderr=True)


class UserError(Exception):
    """Raised with a message that says what to fix."""


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)
