"""Test-only fault injection: a process signals itself at a named point.

The fault tests need an interrupted run whose interruption lands at a known
place (after checkpoint N, in the middle of epoch N), whatever the machine's
speed.  A timer in the test cannot promise that on a loaded machine, so the
run itself raises the signal when it reaches the point named in the
environment variable :data:`FAULT_ENV`::

    ASR_FAULT_AT=checkpoint:2:SIGINT        # after epoch 2's checkpoint is written
    ASR_FAULT_AT=step:7:SIGKILL             # after optimizer step 7 (mid-epoch)

Several ``point:count:signal`` items may be given, separated by commas.
Unset (the normal case) it costs one dictionary lookup per call.
"""

from __future__ import annotations

import os
import signal

#: Environment variable naming the fault points (only the test suite sets it).
FAULT_ENV = "ASR_FAULT_AT"


def _parse(spec: str) -> list[tuple[str, int, signal.Signals]]:
    items = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        try:
            point, count, name = item.split(":")
            items.append((point, int(count), signal.Signals[name]))
        except (ValueError, KeyError):
            raise ValueError(f"{FAULT_ENV}: bad item '{item}' (expected point:count:SIGNAME)") from None
    return items


def fault_point(point: str, count: int) -> None:
    """Sends the configured signal to this process if ``point:count`` is listed in :data:`FAULT_ENV`.

    SIGINT arrives as ``KeyboardInterrupt`` at the next bytecode, exactly as
    a Ctrl-C at this point would; SIGKILL ends the process at once, as an
    out-of-memory kill would.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for name, n, sig in _parse(spec):
        if name == point and n == count:
            os.kill(os.getpid(), sig)
