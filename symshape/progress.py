"""Feedback on a terminal for long commands: a progress bar and an elapsed-time line on stderr,
shown only when stderr is a terminal (nothing in pipes, files and CI logs)."""
from __future__ import annotations

import sys

__all__ = ["progress_bar", "busy"]


def progress_bar(stream=None):
    """A ``progress(done, total)`` callable that draws a bar on *stream* (stderr) when it is a
    terminal, else None (nothing is drawn in pipes, files and CI logs)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None

    def draw(done: int, total: int) -> None:
        filled = 30 * done // max(total, 1)
        stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}" + ("\n" if done >= total else ""))
        stream.flush()
    return draw


class busy:
    """A context manager that, on a terminal (stderr), shows ``label… N s`` once the work has
    taken more than *after* seconds, and clears it at the end; nothing in pipes, files and CI logs."""

    def __init__(self, label: str, stream=None, after: float = 1.0, every: float = 0.5):
        self.label, self.stream, self.after, self.every = label, stream or sys.stderr, after, every
        self._done = None
        self._thread = None
        self.shown = False

    def __enter__(self):
        if self.stream.isatty():
            import threading
            import time

            self._done = threading.Event()
            start = time.monotonic()

            def run():
                if self._done.wait(self.after):
                    return
                while True:
                    self.shown = True
                    self.stream.write(f"\r{self.label}… {time.monotonic() - start:.0f} s")
                    self.stream.flush()
                    if self._done.wait(self.every):
                        return

            self._thread = threading.Thread(target=run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self._done.set()
            self._thread.join()
            if self.shown:
                self.stream.write("\r\033[K")
                self.stream.flush()
        return False
