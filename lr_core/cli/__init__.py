"""The ``lr`` command line. Each subcommand is a thin wrapper over a library function.

``lr --help`` lists every command; ``lr COMMAND --help`` gives its options and an example
(the table :data:`lr_core.cli.parser.COMMANDS` holds both, and README.md's command list is checked against it).

Conventions, the same for every command:

* The object a command works on is its first positional argument, or the same thing named:
  ``RUN_DIR`` / ``--run-dir``, ``BUNDLE`` / ``--bundle``, ``SPEC`` / ``--spec``,
  ``CONFIG`` / ``--config``.
* Global flags work before or after the command: ``-v/--verbose`` (INFO logs, tracebacks),
  ``-q/--quiet`` (errors only), ``--no-progress`` (status lines instead of bars).
* A user or environment error is one line on stderr, ``lr COMMAND: error: ...``, exit status 2;
  the traceback only with ``--verbose``. Any other failure exits 1 (traceback with ``--verbose``).
* Old spellings kept for one release, with a deprecation message: ``lr sweep status SPEC``
  (now ``lr sweep SPEC --status``).

Layout: :mod:`lr_core.cli.commands` (what each command does), :mod:`lr_core.cli.parser` (options,
help texts, examples), this module (``main``: dispatch, logging, exit statuses). The CLI is the
outermost layer: the only code that imports every other (tests/test_layering.py).
"""
from __future__ import annotations

import logging
import sys
import traceback

from lr_core.errors import CacheMismatchError, ConfigError, DataError, MissingSettingError
from lr_core.cli.parser import rewrite_deprecated, build_parser


# Errors a user's input or environment causes: one line, exit 2 (traceback only with --verbose).
USER_ERRORS = (ConfigError, DataError, CacheMismatchError, FileNotFoundError, PermissionError, IsADirectoryError,
               NotADirectoryError, UnicodeDecodeError)


# commands that never need the model (the serving product stays torch-free under `lr serve`)
TORCH_FREE_COMMANDS = ("serve", "loadtest")


def _user_message(exc: BaseException) -> str:
    if isinstance(exc, MissingSettingError):
        return exc.with_flag(CLI_FLAGS.get(exc.setting, f"--{exc.setting.replace('_', '-')}"))
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid UTF-8 text ({exc.reason} at byte {exc.start})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror}"
    return str(exc)


# A library setting -> the flag that gives it on the command line (for MissingSettingError).
CLI_FLAGS = {"instruction": "--instruction TEXT", "split": "--split NAME"}


def _log_to_stderr(level: int) -> None:
    """One stderr handler on the root logger (replacing ours from an earlier call, keeping others')."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_lr_cli", False)]:
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._lr_cli = True
    root.addHandler(handler)
    root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    from lr_core import progress

    argv = rewrite_deprecated(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(argv)
    name = getattr(args, "command", args.command_name)
    cmd_index = next((i for i, t in enumerate(argv) if t == args.command_name), 0)
    args.argv_tail = argv[cmd_index + 1:]
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else progress.NOTICE
    _log_to_stderr(level)
    progress.configure(disabled=args.no_progress, quiet=args.quiet)
    try:
        if name not in TORCH_FREE_COMMANDS:
            from lr_core.allocator import tune_malloc

            tune_malloc()  # torch's per-batch buffers stay in the heap (see lr_core.allocator)
            import ablations  # noqa: F401  (the variant catalog: registers every variant)
        args.func(args)
    except SystemExit as exc:  # a command's own exit status (sweep --local, bench, serving commands)
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        print(f"lr {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lr config keys | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (*USER_ERRORS, OSError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"lr {name}: error: {_user_message(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not the user's input: say so, the trace is one flag away
        if args.verbose:
            traceback.print_exc()
        print(f"lr {name}: internal error: {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)",
              file=sys.stderr)
        return 1
    return 0
