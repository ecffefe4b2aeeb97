"""Small helpers for log and error messages."""

from typing import Sequence


def preview(items: Sequence, k: int = 3) -> str:
    """Render the first ``k`` items of a list for a log or error message."""
    items = list(items)
    shown = ', '.join(repr(str(i)) for i in items[:k])
    more = f', ... ({len(items) - k} more)' if len(items) > k else ''
    return f'[{shown}{more}]'
