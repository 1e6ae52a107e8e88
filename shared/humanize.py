"""Human-readable values shared by the status page and the terminal table."""

from __future__ import annotations


def format_age(seconds: float | None, missing: str = "never") -> str:
    """``0.4s``, ``12.0s``, ``3m 5s``, ``2h 10m``; ``missing`` when there is no age."""
    if seconds is None:
        return missing
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60)}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60)}m"


def format_window(seconds: float) -> str:
    """A window's length as /status names its windows: ``1h``, ``24h``, ``7d``; else an age."""
    if seconds > 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g}d"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    return format_age(seconds)
