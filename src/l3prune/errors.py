"""The one exception type users see for bad input; the CLI turns it into a single line."""

from __future__ import annotations


class L3PruneError(ValueError):
    """Bad input or an unsupported request. The message says what was wrong and how to fix it."""
