"""A hung test must end the run with a diagnosis, not stall CI.

pytest-timeout (configured in ``pyproject.toml``) ends the run when one test, with its fixtures, takes longer than
its ``timeout``; its dump shows threads only, and an async test that hangs is a task awaiting something forever, so
halfway there this plugin prints the stack of every asyncio task, naming what each one waits on.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
from collections.abc import Iterator

import pytest

DUMP_AFTER_FRACTION = 0.5
#: The process's own stderr: code under test may have replaced ``sys.stderr`` (click's CliRunner does).
_STDERR = sys.__stderr__ or sys.stderr


def running_tasks() -> str:
    """Every unfinished asyncio task of the process (every loop's, read from any thread) with its stack."""
    for _ in range(3):  # the set can change under us; diagnostics only
        try:
            tasks = list(getattr(asyncio.tasks, "_all_tasks", ()))
            break
        except RuntimeError:
            continue
    else:
        return ""
    out = io.StringIO()
    for task in tasks:
        if not task.done():
            print(f"--- {task!r}", file=out)
            task.print_stack(file=out)
    return out.getvalue()


def _dump_tasks(nodeid: str, after: float) -> None:
    print(f"\n=== {nodeid} still running after {after:.0f} s; asyncio tasks:", file=_STDERR)
    print(running_tasks(), end="", file=_STDERR)
    _STDERR.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    timeout = float(item.config.getini("timeout") or 0)
    timer = None
    if timeout > 0:
        after = timeout * DUMP_AFTER_FRACTION
        timer = threading.Timer(after, _dump_tasks, args=(item.nodeid, after))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
