"""Run a command as the command line would, with its output kept for one request.

The desk API answers remote commands by running the very code of the local
ones, so their output, refusals and exit codes cannot drift apart. Those
commands print; here each worker thread's prints go to its own buffer, while
every other thread (the daemon's console channel, logs) writes as before.
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
from dataclasses import dataclass
from typing import Any, TextIO

_local = threading.local()
_install = threading.Lock()


class _PerThread(io.TextIOBase):
    """A stand-in for sys.stdout or sys.stderr that a thread may redirect to a buffer of its own."""

    def __init__(self, name: str, fallback: TextIO) -> None:
        self._name = name
        self._fallback = fallback

    def _target(self) -> TextIO:
        buffers: dict[str, TextIO] | None = getattr(_local, "buffers", None)
        return buffers[self._name] if buffers else self._fallback

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._target().isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


@dataclass(frozen=True)
class Outcome:
    """What the command printed and the exit code it returned."""

    exit: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        """The refusal's sentence, as `statusd: …` printed it."""
        return self.stderr.strip().removeprefix("statusd: ").split("\n")[0]


def run(args: argparse.Namespace) -> Outcome:
    """`dispatch(args)` with this thread's stdout and stderr captured (call it in a worker thread)."""
    from statusd.commands.shared import dispatch

    _redirectable()
    out, err = io.StringIO(), io.StringIO()
    _local.buffers = {"stdout": out, "stderr": err}
    try:
        code = dispatch(args)
    finally:
        _local.buffers = None
    return Outcome(code, out.getvalue(), err.getvalue())


def run_apart(argv: list[str], by: str, timeout: float = 60.0) -> Outcome:
    """`statusd ARGV` in a process of its own, as `by` (call it in a worker thread).

    For undo and retract: they open the store for writing the way outbox/store.py
    does, and opening then closing a descriptor of the file inside the daemon
    would drop every SQLite lock the daemon's own connections hold on it.
    """
    import os
    import subprocess

    # SUDO_USER is how `statusd` learns the person behind a command (setting.current_user).
    env = {**os.environ, "SUDO_USER": by}
    env.pop("STATUSD_SERVER", None)
    done = subprocess.run([sys.executable, "-m", "statusd", *argv], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)
    return Outcome(done.returncode, done.stdout, done.stderr)


def _redirectable() -> None:
    with _install:
        if not isinstance(sys.stdout, _PerThread):
            sys.stdout = _PerThread("stdout", sys.stdout)
        if not isinstance(sys.stderr, _PerThread):
            sys.stderr = _PerThread("stderr", sys.stderr)
