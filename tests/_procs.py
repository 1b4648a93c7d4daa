"""Running multi-process (torch.distributed) tests in subprocesses."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: What a process prints when a C++ thread is still joinable as it exits.
TEARDOWN_ABORT = "terminate called without an active exception"


def retry_teardown_abort(run: Callable[[], T], output: Callable[[T], str],
                         failed: Callable[[T], bool]) -> T:
    """``run()``, and once more only if it failed with gloo's teardown abort.

    With torch 2.13 on a busy 2-core machine, a gloo rank occasionally aborts in
    ``std::terminate`` while the interpreter exits, after all its work (and the test's
    output) is complete: seen in about 1 of 10 runs with two busy-loop processes beside
    it. That is torch's process teardown, not the behaviour under test, so it gets one
    retry; any other failure, or the same abort twice, fails the test.
    """
    result = run()
    if failed(result) and TEARDOWN_ABORT in output(result):
        result = run()
    return result


def run_cmd(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` (text, captured), retried once on the teardown abort."""
    return retry_teardown_abort(
        lambda: subprocess.run(cmd, capture_output=True, text=True, check=False, **kw),  # type: ignore[call-overload]
        lambda r: r.stdout + r.stderr,
        lambda r: r.returncode != 0,
    )
