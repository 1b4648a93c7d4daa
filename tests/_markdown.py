"""Code blocks of Markdown pages, and running the shell commands a reader would copy.

Used by ``tests/test_readme.py`` and ``tests/docs/test_docs_examples.py``. A ``bash`` block's
commands are run when they are ``lrkit`` commands (through ``lrkit.cli.main``, the console
script's entry point, in the test's folder, in order); any other command must be one of
``NOT_RUN``, each with the reason it is not run by the test suite.
"""

from __future__ import annotations

import re
import shlex

FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```", re.M | re.S)

NOT_RUN = {
    "bash scripts/compare.sh": "makes .venv and installs the package: what a new user runs",
    "bash scripts/test.sh": "this very test suite (CI runs it through .ci/run)",
    "tensorboard --logdir runs": "starts a web server that runs until stopped",
    "torchrun --nproc_per_node=2 examples/distributed_train.py --accumulate 2 --amp":
        "tests/test_example_distributed.py runs it (two processes: a slow test)",
}
# pages whose lrkit commands are a scenario, not a sequence to replay: (page, reason)
SCENARIOS = {
    "docs/scale.md": "a run killed half way, then resumed: tests/cli/test_kill_resume.py",
}


def blocks(markdown: str, language: str) -> list[str]:
    """The bodies of the ```LANGUAGE blocks, in order, un-indented."""
    out = []
    for m in FENCE.finditer(markdown):
        if m.group(2) == language:
            indent = len(m.group(1))
            out.append("\n".join(line[indent:] for line in m.group(3).splitlines()))
    return out


def commands(block: str) -> list[str]:
    """The command lines of a shell block: continuations joined, comments and blanks left out."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(" ".join(shlex.split(line, comments=True)) if "#" in line else line)
    return out


def run_commands(markdown: str, where: str) -> list[str]:
    """Run every ``lrkit`` command of the page's bash blocks; return the commands run.

    Raises AssertionError for a command that fails and for a command that is neither an
    ``lrkit`` command nor one of ``NOT_RUN``.
    """
    from lrkit.cli import main

    if where in SCENARIOS:
        return []
    ran = []
    for block in blocks(markdown, "bash"):
        for cmd in commands(block):
            argv = shlex.split(cmd)
            if argv[0] != "lrkit":
                assert cmd in NOT_RUN, f"{where}: {cmd!r} is not run by any test"
                continue
            status = main(argv[1:])
            assert status == 0, f"{where}: {cmd!r} exited {status}"
            ran.append(cmd)
    return ran
