"""SIGTERM stops a run as Ctrl-C does.

CI runners and container hosts stop a job with SIGTERM (then SIGKILL after a grace
period). By default that kills the process where it stands; as a
KeyboardInterrupt it goes through the same path as Ctrl-C: in-flight requests are
cancelled, every answer that arrived is written to the cache, and pytest reports
the run as interrupted (exit code 2). A handler someone else installed is left
alone.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def stop_on_sigterm() -> Callable[[], None]:
    """Install the handler (main thread, default handler only); returns its undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return lambda: None
    signal.signal(signal.SIGTERM, _interrupt)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is _interrupt:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return restore
