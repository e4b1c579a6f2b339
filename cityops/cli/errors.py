"""How the CLI reports an error a person can act on (cityops.errors.UserError): one line on stderr and a
non-zero exit."""
from __future__ import annotations

import sys

from rich.console import Console

err = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)
