"""The CLI contract, in one place: exit codes, error kinds, ``--json`` errors, help with
examples, and the options and helpers every command shares (docs/cli.md is the written form).

A command opts in with the :func:`cli_command` decorator (its ``--help`` gets the summary,
the exit codes and examples; whatever it raises is mapped by :func:`error_of`, the one mapping
from exceptions to a kind and an exit code) and the shared options (``ConfigOption``,
``JsonOption`` as the parameter ``json_output``, ``TenantOption``, ``SinceOption``,
``UntilOption``). An error prints ``logkit: <message>`` on stderr, or
``{"error": {"kind", "message"}}`` on stdout under ``--json``; never a traceback. Commands
stop through :func:`fail` or let a LogkitError go. The root group, :class:`ContractGroup`,
applies the same mapping to what fails before a command runs (a missing option, an unknown
command) and to any command not decorated.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from logkit.envelope import is_tenant_id

try:  # Typer >= 0.2x carries its own copy of click: its exceptions are the ones raised
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - an older Typer on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

# Let through unmapped: an abort (Ctrl-C, EOF at a prompt), and an exit code a command chose.
_ABORTS: tuple[type[BaseException], ...] = (
    typer.Abort,
    getattr(click_errors, "Abort", typer.Abort),
)
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, *_ABORTS)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

EXIT_OK = 0
EXIT_PROBLEM = 1  # the check failed, or something was found (a broken chain, a failing sink)
EXIT_USAGE = 2  # a usage or configuration error, or the thing named does not exist
EXIT_UNAVAILABLE = 3  # a backend the command needs cannot be reached or read

# Every kind an error may carry under --json, with its exit code (docs/cli.md has the table).
KINDS: Mapping[str, int] = {
    "usage": EXIT_USAGE,  # an option or argument is wrong: a bad value, options that conflict
    "config": EXIT_USAGE,  # the configuration cannot be read or is invalid
    "not_found": EXIT_USAGE,  # the run, chain or file named does not exist
    "unavailable": EXIT_UNAVAILABLE,  # a store or service cannot be reached or read
    "refused": EXIT_PROBLEM,  # refused before anything changed (legal hold, not confirmed)
    "failed": EXIT_PROBLEM,  # the operation ran and failed (a write, an unreadable head)
    "internal": EXIT_PROBLEM,  # a bug in logkit: reported as one line, never a traceback
}
_KIND_OF_CODE = {EXIT_USAGE: "usage", EXIT_PROBLEM: "failed", EXIT_UNAVAILABLE: "unavailable"}

# What the exit codes shared by most commands mean, for their --help.
USAGE = "a usage or configuration error, or what was named does not exist"
UNAVAILABLE = "a store cannot be reached or read"

DEBUG_ENV_VAR = "LOGKIT_DEBUG"  # set to 1: unexpected errors keep their traceback

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        envvar="LOGKIT_CONFIG",
        help="Path to logkit.toml (default: $LOGKIT_CONFIG, else built-in defaults).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for machines (errors too, on stdout).")
]


# --- errors ------------------------------------------------------------------------------------


class CliError(click_errors.ClickException):
    """An error a command reports: a kind from :data:`KINDS` and a message a human can act on."""

    def __init__(self, kind: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind if kind in KINDS else "failed"
        self.exit_code = KINDS[self.kind]
        self.details = dict(details or {})  # a partial report, printed beside the error in JSON

    def show(self, file: Any = None) -> None:
        typer.echo(f"logkit: {self.message}", file=file, err=True)


def fail(
    message: str,
    code: int = EXIT_USAGE,
    *,
    kind: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> NoReturn:
    """Stop the command with an error (``kind`` defaults from ``code``: 2 usage, 1 failed,
    3 unavailable); printed as one line, or as a JSON error under --json (``details``, a
    partial report, go beside it in the same JSON object)."""
    raise CliError(kind or _KIND_OF_CODE.get(code, "failed"), message, details)


def error_of(exc: BaseException) -> CliError:
    """The kind and message an exception is reported with (the one mapping of the CLI)."""
    from logkit.errors import (
        ConfigError,
        ContractError,
        LogkitError,
        RequestRefusedError,
        SinkError,
    )

    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, click_errors.UsageError):
        return CliError("usage", exc.format_message())
    if isinstance(exc, click_errors.ClickException):
        return CliError("failed", exc.format_message())
    kinds: list[tuple[type[BaseException], str]] = [
        (ConfigError, "config"),
        (ContractError, "usage"),
        (SinkError, "unavailable"),
        (RequestRefusedError, "refused"),
        (LogkitError, "failed"),
    ]
    for cls, kind in kinds:
        if isinstance(exc, cls):
            return CliError(kind, str(exc) or type(exc).__name__)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return CliError("failed", f"{exc.strerror or type(exc).__name__}{where}")
    # Not logkit's own: only the class is shown (a foreign message may carry a raw value).
    return CliError(
        "internal",
        f"unexpected {type(exc).__name__}: a bug in logkit, please report it "
        f"({DEBUG_ENV_VAR}=1 shows the traceback)",
    )


@contextmanager
def doing(what: str) -> Iterator[None]:
    """Say what failed when a logkit error is raised in the block (kind and exit code kept)."""
    from logkit.errors import LogkitError

    try:
        yield
    except LogkitError as exc:
        error = error_of(exc)
        raise CliError(error.kind, f"{what}: {error.message}", error.details) from exc


def reading(what: str) -> Any:
    """:func:`doing` for reads: a store that cannot be read exits 3 naming it."""
    return doing(f"cannot read {what}")


def outcome_code(result: Any) -> int:
    """The exit code of a result that names ``failures`` (stores that failed: 3) and
    ``warnings`` (done, but something needs a look: 1)."""
    if result.failures:
        return EXIT_UNAVAILABLE
    return EXIT_PROBLEM if result.warnings else EXIT_OK


def wants_json(args: Sequence[str]) -> bool:
    """Whether ``--json`` is among the options (not after ``--``)."""
    head = list(args)
    if "--" in head:
        head = head[: head.index("--")]
    return "--json" in head


def report_error(error: CliError, as_json: bool) -> int:
    """Print ``error`` as the contract says and return its exit code."""
    if as_json:
        print_json({**error.details, "error": {"kind": error.kind, "message": error.message}})
    else:
        error.show()
    return error.exit_code


class ContractGroup(TyperGroup):
    """The root group: what fails before a command runs (a missing option, an unknown command)
    is reported by the contract too, as JSON under ``--json``; and a command that is not under
    :func:`cli_command` still never ends in a traceback."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        code = self._run(argv, prog_name, complete_var, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self, argv: list[str], prog_name: str | None, complete_var: str | None, extra: Any
    ) -> int:
        as_json = wants_json(argv)
        try:
            result = super().main(
                args=argv,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except click_errors.NoArgsIsHelpError as exc:
            exc.show()  # the help (rich help is printed as it is made)
            return EXIT_USAGE
        except click_errors.UsageError as exc:
            if as_json:
                return report_error(error_of(exc), True)
            _show_usage_error(exc)
            return exc.exit_code
        except _ABORTS:
            return report_error(CliError("refused", "aborted"), as_json)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV_VAR) == "1":
                raise
            return report_error(error_of(exc), as_json)
        return result if isinstance(result, int) else EXIT_OK


def _show_usage_error(exc: click_errors.UsageError) -> None:
    """As Typer shows it: the usage line, a hint to --help, the problem."""
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    except ImportError:  # pragma: no cover - rich is a dependency
        exc.show()


# --- help: summary, exit codes, examples -------------------------------------------------------


@dataclass(frozen=True)
class CommandContract:
    """What a command's --help promises (read by the contract test and docs/cli.md)."""

    examples: tuple[str, ...]
    exits: Mapping[int, str]


F = TypeVar("F", bound=Callable[..., Any])


def cli_command(*, examples: Sequence[str], exits: Mapping[int, str]) -> Callable[[F], F]:
    """Put a command under the contract: its help (docstring reflowed, its exit codes, its
    examples) and its errors (any exception becomes one line, or a JSON error when the command
    ran with ``json_output``, and the exit code of its kind), in whatever Typer app it runs.

    ``examples`` are full command lines (``logkit ...``); ``exits`` maps each exit code the
    command can return to what it means (the codes of :data:`KINDS`' table, 0 included).
    """
    if not examples or any(not e.startswith("logkit") for e in examples):
        raise ValueError("every command needs examples, each a `logkit ...` command line")
    if EXIT_OK not in exits or set(exits) - {0, 1, 2, 3}:
        raise ValueError("exit codes are 0 (which must be described), 1, 2 and 3")

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                if os.environ.get(DEBUG_ENV_VAR) == "1":
                    raise
                code = report_error(error_of(exc), bool(kwargs.get("json_output")))
                raise typer.Exit(code) from None

        run.__doc__ = compose_help(func.__doc__ or "", examples, exits)
        run.__logkit_cli__ = CommandContract(tuple(examples), dict(exits))  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


def group_help(summary: str, examples: Sequence[str]) -> str:
    """A command group's help: its summary and examples."""
    return compose_help(summary, examples, {})


def compose_help(doc: str, examples: Sequence[str], exits: Mapping[int, str]) -> str:
    """Paragraphs reflowed (no hard line breaks), then exit codes and examples, markup-safe."""
    from rich.markup import escape

    paragraphs = [
        " ".join(line.strip() for line in block.splitlines())
        for block in _dedent(doc).split("\n\n")
        if block.strip()
    ]
    if exits:
        paragraphs.append(
            "Exit codes: " + "; ".join(f"{code} {exits[code]}" for code in sorted(exits)) + "."
        )
    text = "\n\n".join(escape(p) for p in paragraphs)
    if examples:
        text += "\n\nExamples:\n" + "\n".join(f"  {escape(e)}" for e in examples)
    return text


def _dedent(doc: str) -> str:
    import inspect

    return inspect.cleandoc(doc)


# --- shared options ---------------------------------------------------------------------------


def check_tenant(value: str | None) -> str | None:
    """A ``--tenant`` value: None stays None; anything else must be a tenant id (exit 2)."""
    if value is None:
        return None
    if not is_tenant_id(value):
        raise typer.BadParameter(
            f"{value[:64]!r} is not a tenant id: t_ then lowercase letters, digits, _ or - "
            "(e.g. t_acme)"
        )
    return value


TenantOption = Annotated[
    str, typer.Option("--tenant", help="Tenant id, e.g. t_acme.", callback=check_tenant)
]


def optional_tenant(help_text: str) -> Any:
    """A ``--tenant`` option that may be left out (its help says what that means)."""
    return typer.Option("--tenant", help=help_text, callback=check_tenant, show_default=False)


# --- times: ISO, relative (2h, 7d) and named days ------------------------------------------------

_AGO = re.compile(r"^(\d+)\s*(s|m|min|h|d|w)(?:\s+ago)?$")
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TIME_HELP = "ISO date/time (UTC if no zone), a duration ago (30m, 2h, 7d), today or yesterday"
SinceOption = Annotated[str | None, typer.Option("--since", help=f"From (inclusive): {TIME_HELP}.")]
UntilOption = Annotated[
    str | None, typer.Option("--until", help=f"Until (exclusive): {TIME_HELP}.")
]


def parse_time(
    value: str | None, option: str, *, now: dt.datetime | None = None
) -> dt.datetime | None:
    """An option's time: ISO date or date-time (naive means UTC: stored times are UTC), a
    duration ago (``90s``, ``30m``, ``2h``, ``7d``, ``2w``, optionally followed by ``ago``),
    ``now``, ``today`` or ``yesterday`` (midnight UTC). A bad value exits 2 naming the option."""
    if value is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    text = value.strip().lower()
    midnight = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"now": now, "today": midnight, "yesterday": midnight - dt.timedelta(days=1)}
    if text in named:
        return named[text]
    ago = _AGO.match(text)
    if ago:
        return now - dt.timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        fail(
            f"{option} {value[:64]!r} is not a time: use an ISO date or datetime "
            "(2025-06-01, 2025-06-01T12:00Z), a duration ago (30m, 2h, 7d), today or yesterday"
        )
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def parse_window(
    since: str | None, until: str | None, *, now: dt.datetime | None = None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``--since`` (inclusive) and ``--until`` (exclusive); an empty window exits 2."""
    now = now or dt.datetime.now(dt.UTC)
    start, end = parse_time(since, "--since", now=now), parse_time(until, "--until", now=now)
    if start is not None and end is not None and start >= end:
        fail(f"--since must be before --until (got {start.isoformat()} >= {end.isoformat()})")
    return start, end


# --- output -------------------------------------------------------------------------------------


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def console(*, stderr: bool = False) -> Console:
    """A rich console: on a terminal as wide as it is; piped, without a width, so nothing
    (ids, models, dates) is ever cut or wrapped for a machine reading it."""
    from rich.console import Console

    terminal = Console(stderr=stderr)
    if terminal.is_terminal:
        return terminal
    return Console(stderr=stderr, width=_UNBOUNDED, soft_wrap=True)


_UNBOUNDED = 1_000_000


def cell(value: Any, style: str = "") -> Text:
    """Stored data as rich text: never read as markup or emoji codes (``[/]``, ``:x:``), and
    folded rather than cut with an ellipsis when a terminal is too narrow for its column."""
    from rich.text import Text

    return Text("-" if value is None else str(value), style=style, overflow="fold")


def cost_text(cost: Mapping[str, Any]) -> str:
    """Amounts per currency as one text (``0.42 USD, 1.10 EUR``), ``-`` when there are none."""
    return ", ".join(f"{amount} {currency}" for currency, amount in cost.items()) or "-"
