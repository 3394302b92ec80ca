"""Progress of long phases, reported one way everywhere: what is being done, n/N and a rate.

Query-time KV cache builds, profiling and execution can each take minutes. A `Progress` shows a tqdm
bar on stderr when progress is asked for, and logs the same facts (phase, n/N, rate) at INFO: every
LOG_EVERY_S seconds while there is no bar, and once when a phase that took at least QUIET_S seconds
ends, so a run's log says where its time went even without a terminal. `phase()` names the enclosing
step ("profiling qwen-0.5b@.../none@0.00 (2/6)"), so a backend's bar says which step it belongs to.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator

from tqdm.auto import tqdm

log = logging.getLogger("stretto.progress")
LOG_EVERY_S = 30.0  # seconds between log lines of a phase shown without a bar
QUIET_S = 5.0  # a phase shorter than this ends without a log line

_phases: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("stretto_phases", default=())


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Name the step that the progress reported inside belongs to (nested steps are joined with ': ')."""
    token = _phases.set((*_phases.get(), name))
    try:
        yield
    finally:
        _phases.reset(token)


def label(desc: str) -> str:
    """`desc` prefixed with the enclosing phases."""
    return ": ".join(p for p in (*_phases.get(), desc) if p)


class Progress:
    """n of `total` units done, shown as a bar (when enabled) and in log lines with n/N and a rate."""

    def __init__(self, total: int, desc: str, *, unit: str = "row", enabled: bool = True) -> None:
        self.total, self.unit, self.desc = int(total), unit, label(desc)
        self.n = 0
        self.began = self._logged = time.perf_counter()
        self.bar = tqdm(total=self.total, desc=self.desc, unit=unit, disable=not enabled)
        self.closed = False

    def line(self) -> str:
        elapsed = time.perf_counter() - self.began
        rate = f"{self.n / elapsed:.2f}" if elapsed > 0 else "-"
        return f"{self.desc}: {self.n}/{self.total} {self.unit}s in {elapsed:.1f} s ({rate} {self.unit}s/s)"

    def update(self, n: int = 1) -> None:
        self.n += n
        self.bar.update(n)
        now = time.perf_counter()
        if self.bar.disable and self.n < self.total and now - self._logged >= LOG_EVERY_S:
            self._logged = now
            log.info("%s", self.line())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.bar.close()
        if self.total and time.perf_counter() - self.began >= QUIET_S:
            log.info("%s", self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
