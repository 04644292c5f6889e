"""The live progress line of a run (``python -m benchmarks.live``)."""

from __future__ import annotations

import sys


class Progress:
    """A live one-line progress report on stderr (a line per phase if no TTY)."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self._label = label
        self._enabled = enabled
        self._live = enabled and sys.stderr.isatty()
        self._last = ""

    @property
    def live(self) -> bool:
        """``True`` if updates overwrite one line (worth sending often)."""
        return self._live

    def update(self, text: str) -> None:
        """Show *text* as the current state."""
        if not self._enabled or text == self._last:
            return
        self._last = text
        if self._live:
            sys.stderr.write(f"\r\x1b[K{self._label}: {text}")
            sys.stderr.flush()
        elif not text[-1:].isdigit():  # phase changes only, not counters
            sys.stderr.write(f"{self._label}: {text}\n")

    def close(self) -> None:
        """End the live line."""
        if self._live and self._last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
