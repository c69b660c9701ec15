"""Child processes under supervision: started, restarted with backoff when they exit, stopped with SIGTERM.

``beat up`` (``app/stack.py``) supervises its roles with it, and ``beat worker --processes N``
(``app/worker_processes.py``) its worker processes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# The first restart is immediate, the next ones wait twice as long each, up to this.
MAX_RESTART_DELAY = 30.0
# A child that ran this long before it exited starts its backoff again from the beginning: a crash a
# day is no crash loop.
STABLE_AFTER = 60.0

_PR_SET_PDEATHSIG = 1


def _terminate_with_parent() -> None:
    """In the child, before exec: SIGTERM (a drain) when the supervisor dies, so a supervisor killed
    with SIGKILL leaves no orphan consuming in its group."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One child process. Its output goes to ``log_path``, or to the supervisor's own when there is none.
    ``own_session`` keeps a terminal's Ctrl-C from reaching it: the supervisor decides how it stops."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path | None = None
    own_session: bool = False
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0

    def start(self) -> None:
        # preexec_fn is unsafe only in a process running threads; a supervisor runs none.
        preexec: Callable[[], None] | None = None
        if self.own_session and sys.platform == "linux":
            preexec = _terminate_with_parent
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") if self.log_path is not None else nullcontext() as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                start_new_session=self.own_session,
                preexec_fn=preexec,
            )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: signal.Signals) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code, after SIGKILL if the child is still running after ``timeout`` seconds."""
        assert self.proc is not None
        try:
            return self.proc.wait(max(0.0, timeout))
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not stop within %.0fs; killing it", self.name, self.proc.pid, timeout)
            self.proc.kill()
            return self.proc.wait()

    def stop(self, timeout: float) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        self.wait(timeout)


def restart_delay(child: Child, exited_at: float) -> float:
    """Seconds after its last start before ``child`` may start again: 0, 1, 2, 4, … up to
    MAX_RESTART_DELAY, counting afresh once it had run STABLE_AFTER seconds."""
    if exited_at - child.started_at >= STABLE_AFTER:
        child.restarts = 0
    return 0.0 if child.restarts == 0 else min(MAX_RESTART_DELAY, 2.0 ** (child.restarts - 1))


def restart_exited(children: Iterable[Child]) -> None:
    """Start again each child that exited and has waited out its backoff; log each restart."""
    now = time.monotonic()
    for child in children:
        if child.alive():
            continue
        if now - child.started_at < restart_delay(child, now):
            continue
        code = child.proc.returncode if child.proc is not None else None
        where = f" (see {child.log_path})" if child.log_path is not None else ""
        log.warning("%s (pid %s) exited with code %s; restarting it%s", child.name, child.pid, code, where)
        child.restarts += 1
        child.start()
