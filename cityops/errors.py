"""Errors a person can act on: the message says what to fix. The CLI prints one as a single line and exits
non-zero; a service logs it."""
from __future__ import annotations


class UserError(Exception):
    """Raised with a message that says what to fix."""
