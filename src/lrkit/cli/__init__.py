"""The ``lrkit`` command: plot, show, export, compare, find-lr.

Every subcommand answers ``--help``. User errors (a bad spec, an unknown option, an output
that cannot be written or would be overwritten without ``--force``) exit with status 2 and
one line on stderr naming the problem; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lrkit.cli._common import Parser, UsageError

__all__ = ["build_parser", "main"]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``lrkit`` parser. ``compare`` and ``find-lr`` need torch to list their choices:
    their full parsers are built only when ``command`` names them (or is None), so that
    ``--help``, ``--version``, ``plot``, ``show`` and ``export`` start without torch."""
    import lrkit
    from lrkit.cli import compare_cmd, findlr_cmd, schedule_cmds

    parser = Parser(
        prog="lrkit",
        description="Learning-rate schedules as closed-form functions of the step: draw, "
        "inspect and export them, compare them on a real training run, find a peak rate.",
        epilog="Run 'lrkit COMMAND --help' for the options and examples of a command.",
    )
    parser.add_argument("--version", action="version", version=f"lrkit {lrkit.__version__}")
    common = argparse.ArgumentParser(add_help=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    schedule_cmds.add_parsers(sub, common)
    for name, module in (("compare", compare_cmd), ("find-lr", findlr_cmd)):
        if command in (None, name):
            module.add_parser(sub, common)
        else:  # listed in 'lrkit --help'; never parses: main() builds the real one
            sub.add_parser(name, help=module.SUMMARY)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word not starting with '-'), if any."""
    return next((a for a in argv if not a.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (console script entry point)."""
    from lrkit.errors import ConfigError

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args, extra = parser.parse_known_args(argv)
    prog = f"lrkit {args.command}"
    if extra:
        print(f"{prog}: error: unrecognized arguments: {' '.join(extra)} "
              f"(see '{prog} --help')", file=sys.stderr)
        return 2
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:  # SpecError, StateError included
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`lrkit show ... | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)  # no second error at exit's stdout flush
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
