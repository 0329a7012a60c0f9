"""Progress of a sweep: a tqdm bar on a terminal, a periodic one-line status otherwise."""

from __future__ import annotations

import sys
import threading
import time

MODES = ("auto", "bar", "log", "off")


def resolve_mode(progress) -> str:
    """``progress`` (True/False/'auto'/'bar'/'log'/'off') → one of 'bar', 'log', 'off'."""
    if progress is True:
        return "bar" if sys.stderr.isatty() else "log"
    if progress is False or progress is None:
        return "off"
    if progress not in MODES:
        raise ValueError(
            f"progress must be True, False or one of {', '.join(MODES)}, got {progress!r}"
        )
    if progress == "auto":
        return "bar" if sys.stderr.isatty() else "log"
    return progress


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """Counts finished runs by outcome and shows them.

    ``mode='bar'``: a tqdm bar (runs done, failed, diverged, ETA).
    ``mode='log'``: a status line on stderr every ``interval`` seconds (from a
    background thread, so it also comes while a long batch runs) and once at
    the end. ``mode='off'``: nothing.
    """

    def __init__(
        self,
        total: int,
        mode: str = "log",
        *,
        interval: float = 30.0,
        label: str = "sweep",
        stream=None,
    ):
        self.total = total
        self.mode = mode
        self.interval = interval
        self.label = label
        self.stream = stream or sys.stderr
        self.counts = {"done": 0, "failed": 0, "diverged": 0, "lost": 0}
        self.start = time.monotonic()
        self.bar = None
        self._stop = threading.Event()
        self._ticker = None
        if mode == "log" and total:
            # A status line every `interval` seconds even while no batch finishes.
            self._ticker = threading.Thread(target=self._tick, name="sweep-status", daemon=True)
            self._ticker.start()
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                desc=label,
                unit="run",
                file=self.stream,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    @property
    def finished(self) -> int:
        return sum(self.counts.values())

    def update(self, statuses) -> None:
        for status in statuses:
            key = {"converged": "done", "max_iters": "done"}.get(status, status)
            self.counts[key if key in self.counts else "failed"] += 1
        if self.bar is not None:
            self.bar.update(len(statuses))
            self.bar.set_postfix(
                failed=self.counts["failed"], diverged=self.counts["diverged"], refresh=False
            )

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            print(self.status_line(), file=self.stream, flush=True)

    def status_line(self) -> str:
        elapsed = time.monotonic() - self.start
        n = self.finished
        rate = n / elapsed if elapsed > 0 else 0.0
        eta = (self.total - n) / rate if rate > 0 else float("nan")
        parts = [
            f"{self.label}: {n}/{self.total} runs",
            f"{self.counts['done']} done",
            f"{self.counts['failed']} failed",
            f"{self.counts['diverged']} diverged",
        ]
        if self.counts["lost"]:
            parts.append(f"{self.counts['lost']} lost")
        tail = f"{rate:.3g} runs/s, elapsed {_duration(elapsed)}"
        if n < self.total and rate > 0:
            tail += f", ETA {_duration(eta)}"
        return ", ".join(parts) + f" ({tail})"

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "log" and self.total:
            print(self.status_line(), file=self.stream, flush=True)
