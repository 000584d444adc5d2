"""A one-line progress display on stderr for long command-line runs.

It is silent unless stderr is a terminal (so logs, pipes and tests see nothing) and can be
switched off with ``enabled=False`` (the CLI's ``--quiet``). The line is redrawn in place at most
``1 / min_interval`` times per second and erased when the display closes, so it never mixes with
the results printed on stdout.

    with Progress("verify", total=3) as bar:
        bar.update(done=1, text="lower -0.12  open 40")
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from typing import TextIO


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class Progress:
    """A redrawn status line: ``label [####----] done/total  text  elapsed``.

    ``total`` may be None (no bar, only the text and the elapsed time). With ``tick`` a
    background thread redraws the line twice a second, so the elapsed time keeps moving while a
    single long step runs. All methods are no-ops when the display is disabled.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        tick: bool = False,
        min_interval: float = 0.1,
        width: int = 20,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(enabled) and _is_terminal(self.stream)
        self.label = label
        self.total = total
        self.done: int | None = None
        self.text = ""
        self.width = width
        self.min_interval = min_interval
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.enabled and tick:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(
        self,
        done: int | None = None,
        total: int | None = None,
        text: str | None = None,
        force: bool = False,
    ) -> None:
        """Record new values and redraw (rate-limited unless ``force``)."""
        if not self.enabled:
            return
        with self._lock:
            if done is not None:
                self.done = int(done)
            if total is not None:
                self.total = int(total)
            if text is not None:
                self.text = text
            now = time.perf_counter()
            if force or now - self._last >= self.min_interval:
                self._last = now
                self._draw(now)

    def close(self) -> None:
        """Stop the ticker and erase the line."""
        if not self.enabled:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        with self._lock:
            self._write("\r\033[K")
            self.enabled = False

    # ------------------------------------------------------------------ internals
    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                if self.enabled:
                    self._draw(time.perf_counter())

    def _draw(self, now: float) -> None:
        parts = [self.label]
        if self.total:
            done = min(max(self.done or 0, 0), self.total)
            filled = round(self.width * done / self.total)
            parts.append(f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total}")
        elif self.done is not None:
            parts.append(str(self.done))
        if self.text:
            parts.append(self.text)
        parts.append(f"{now - self.t0:.1f} s")
        line = "  ".join(parts)
        cols = shutil.get_terminal_size((80, 24)).columns
        self._write("\r\033[K" + line[: max(cols - 1, 10)])

    def _write(self, s: str) -> None:
        try:
            self.stream.write(s)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
