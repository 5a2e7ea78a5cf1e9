"""The webhook process beside ``litestar workers run`` never outlives the worker that started it.

A real worker process is started as deployed; it spawns the webhook process (logged with its pid). The worker is then
stopped, politely (SIGTERM, as a deploy does) or not (SIGKILL, as the OOM killer does), and the webhook process must
end by itself: with SIGKILL nothing runs in the parent, so only the child's own check can end it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT, Settings
from tests.integration.core.test_log_secrets import _wait_for_line

pytestmark = pytest.mark.slow


def _ended(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (it runs no code any more)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_the_webhook_process_ends_when_its_worker_is_stopped(
    settings: Settings, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": "webhook-process-test-jwt-secret-0123456789abcdef",
        "EMAIL_BACKEND": "console",
        "LOG_LEVEL": "INFO",
        "DB_POOL_SIZE": "2",
        "LITESTAR_APP": "app.main:app",
    }
    log_path = tmp_path / "output.log"
    with log_path.open("wb") as log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "litestar", "workers", "run", cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
        )
        try:
            await _wait_for_line(log_path, '"webhook_worker_started"')
            [started] = [
                json.loads(line)
                for line in log_path.read_text().splitlines()
                if line.startswith("{") and '"webhook_process_started"' in line
            ]
            child = int(started["pid"])
            assert not _ended(child)

            worker.send_signal(stop_signal)
            await asyncio.wait_for(worker.wait(), 30)
            for _ in range(300):  # the child checks its parent every 0.5 s; 30 s is ample on a loaded machine
                if _ended(child):
                    break
                await asyncio.sleep(0.1)
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

    assert _ended(child), "the webhook process outlived its worker"
    assert '"webhook_worker_stopped"' in log_path.read_text()  # it stopped itself: attempts finished, pools closed
