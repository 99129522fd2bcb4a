"""The click command tree. Each command is thin: it loads the config and calls its module."""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from openpista.cli import __version__ as VERSION

F = TypeVar("F", bound=Callable[..., Any])


def _text_param(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Command-line text as valid Unicode: bytes that are not UTF-8 become U+FFFD."""
    from openpista.core.models import valid_text

    return None if value is None else valid_text(value)


MAX_SESSION_ID_LENGTH = 128


def _session_param(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A session id to resume or create: not blank, at most 128 characters (it is typed again
    later, and shown in every `session list` row; control characters are escaped there)."""
    text = _text_param(ctx, param, value)
    if text is None:
        return None
    if not text.strip():
        raise click.BadParameter("a session id must not be blank", ctx, param)
    if len(text) > MAX_SESSION_ID_LENGTH:
        raise click.BadParameter(
            f"a session id is at most {MAX_SESSION_ID_LENGTH} characters", ctx, param
        )
    return text


class Globals:
    """The options given before the command, shared by every command."""

    def __init__(self, config: Path | None, log_level: str, session_id: str | None, debug: bool):
        self.config_path = config
        self.log_level = log_level
        self.session_id = session_id
        self.debug = debug


def _guarded(func: F) -> F:
    """Turn openpista's errors into one line on stderr (exit 2 for config, 1 otherwise)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from openpista.cli.errors import report_errors

        with report_errors(debug=_globals().debug):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=None,
    help="Config file (default: $OPENPISTA_CONFIG or ~/.openpista/config.toml).",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Log verbosity (logs go to stderr).",
)
@click.option(
    "-s", "--session", "session_id", callback=_session_param, help="Resume this session (TUI)."
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(VERSION, "--version", prog_name="openpista", message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context, config: Path | None, log_level: str, session_id: str | None, debug: bool
) -> None:
    """openpista: an autonomous AI agent that controls your computer from any messenger.

    Run `openpista run -e "..."` for one task, `openpista start` for the daemon
    (every enabled channel plus cron), or no command for an interactive chat.
    """
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = Globals(config, log_level, session_id, debug)
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui, session_id=session_id)


def _globals() -> Globals:
    return click.get_current_context().find_object(Globals) or Globals(None, "warning", None, False)


def _task_from(text: str | None, as_json: bool) -> str:
    """The task: `-e TEXT`; with `-e -`, or stdin piped and no -e, what stdin holds."""
    if text == "-" or (text is None and not sys.stdin.isatty()):
        task = sys.stdin.read().strip()
        if task:
            return task
        _usage_error(
            "the task read from stdin is empty; pipe the task in, or give it with -e", as_json
        )
    if text is not None and not text.strip():
        _usage_error("the task is empty; say what to do with -e TEXT", as_json)
    if text is None:
        _usage_error(
            'no task: give it with -e TEXT (openpista run -e "..."), or pipe it on stdin '
            '(echo "..." | openpista run, or -e - to read stdin)',
            as_json,
        )
    return text


def _usage_error(message: str, as_json: bool) -> NoReturn:
    from openpista.cli.errors import print_error

    if as_json:
        sys.stdout.write(json.dumps({"error": message}, ensure_ascii=False) + "\n")
    print_error(message)
    raise SystemExit(2)


@cli.command()
@click.option(
    "-e", "--exec", "text", help="The task or message for the agent; `-` reads it from stdin."
)
@click.option(
    "-s",
    "--session",
    "session_id",
    callback=_session_param,
    help="Continue this session (created if new).",
)
@click.option("--provider", help="Provider for this run (overrides [agent] provider).")
@click.option("--model", help="Model for this run (overrides [agent] model).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_guarded
def run(
    text: str | None, session_id: str | None, provider: str | None, model: str | None, as_json: bool
) -> None:
    """Run one task: the final reply on stdout, tool activity on stderr.

    The task comes from -e, or from stdin when piped (or with `-e -`).
    """
    from openpista.cli.oneshot import run_once
    from openpista.cli.signals import run_cancellable
    from openpista.core.errors import OpenpistaError
    from openpista.core.models import valid_text

    coroutine = run_once(
        _globals().config_path,
        valid_text(_task_from(text, as_json)),
        session_id=session_id or _globals().session_id,
        provider=provider,
        model=model,
        as_json=as_json,
    )
    try:
        status = run_cancellable(coroutine)
    except OpenpistaError as exc:
        if as_json:  # scripts parsing stdout learn of failures found before the turn too
            sys.stdout.write(json.dumps({"error": str(exc)}, ensure_ascii=False) + "\n")
        raise
    if as_json and status > 128:
        name = signal.Signals(status - 128).name
        sys.stdout.write(json.dumps({"error": f"stopped by {name}"}) + "\n")
    sys.exit(status)


@cli.command()
@_guarded
def start() -> None:
    """Run the daemon: every enabled channel and the cron jobs, until SIGTERM or Ctrl-C."""
    from openpista.cli.daemon import run_daemon

    sys.exit(run_daemon(_globals().config_path))


@cli.command()
@click.option("-s", "--session", "session_id", callback=_session_param, help="Resume this session.")
@_guarded
def tui(session_id: str | None) -> None:
    """Chat interactively in the terminal (resume a session with -s)."""
    from openpista.cli.interactive import run_interactive

    sys.exit(run_interactive(_globals().config_path, session_id or _globals().session_id))


@cli.group(invoke_without_command=True)
@click.pass_context
def model(ctx: click.Context) -> None:
    """The model catalog, and a test prompt to a model (no subcommand: list)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(model_list)


@model.command("list")
@_guarded
def model_list() -> None:
    """List the known models by provider: authenticated providers and the active model marked."""
    from openpista.cli.models import list_models

    list_models(_globals().config_path)


@model.command("test")
@click.argument("model_name", metavar="[MODEL]", required=False, callback=_text_param)
@_guarded
def model_test(model_name: str | None) -> None:
    """Send one short prompt to MODEL ("provider/model", or a model of the active provider;
    default: the active model) and show the reply, latency and tokens."""
    from openpista.cli.models import test_model

    sys.exit(test_model(_globals().config_path, model_name))


@cli.group()
def session() -> None:
    """List, show and delete stored conversations."""


@session.command("list")
@click.option(
    "--limit", type=click.IntRange(min=1), help="Show at most N sessions (the most recent)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def session_list(limit: int | None, as_json: bool) -> None:
    """List sessions, most recent first."""
    from openpista.cli.sessions import list_sessions

    list_sessions(_globals().config_path, as_json=as_json, limit=limit)


@session.command("show")
@click.argument("session_id", callback=_text_param)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def session_show(session_id: str, as_json: bool) -> None:
    """Show a session's messages, tool calls included."""
    from openpista.cli.sessions import show_session

    show_session(_globals().config_path, session_id, as_json=as_json)


@session.command("delete")
@click.argument("session_id", callback=_text_param)
@_guarded
def session_delete(session_id: str) -> None:
    """Delete a session and its messages."""
    from openpista.cli.sessions import delete_session

    delete_session(_globals().config_path, session_id)


@cli.command()
@click.option(
    "--session", "session_id", callback=_text_param, help="Only this session's tool calls."
)
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Show at most this many calls.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def audit(session_id: str | None, limit: int, as_json: bool) -> None:
    """Every tool call: who asked, who decided, how it went (newest first)."""
    from openpista.cli.audit import show_audit

    show_audit(_globals().config_path, session_id=session_id, limit=limit, as_json=as_json)


@cli.group()
def skills() -> None:
    """Skills found in the workspace."""


@skills.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def skills_list(as_json: bool) -> None:
    """List the skills in the workspace: mode, and whether each can run here."""
    from openpista.cli.skills import list_skills

    list_skills(_globals().config_path, as_json=as_json)


@cli.group()
def auth() -> None:
    """Sign in to providers, and see or remove the stored credentials."""


@auth.command("login")
@click.argument("provider", required=False)
@click.option(
    "--method",
    type=click.Choice(["oauth", "api-key"]),
    help="How to sign in (default: the provider's first way: OAuth where it has one).",
)
@click.option(
    "--no-browser", is_flag=True, help="Only print the sign-in URL; do not open a browser."
)
@_guarded
def auth_login(provider: str | None, method: str | None, no_browser: bool) -> None:
    """Sign in to PROVIDER (without one: pick it from a list).

    OAuth opens the provider's sign-in page (or shows a code to enter); an API key is read
    without echo, or from stdin when it is not a terminal.
    """
    from openpista.cli.auth import login

    login(provider, method, no_browser=no_browser)


@auth.command("status")
@_guarded
def auth_status() -> None:
    """Every provider: signed in or not, how, and until when (never a secret)."""
    from openpista.cli.auth import status

    status(_globals().config_path)


@auth.command("logout")
@click.argument("provider")
@_guarded
def auth_logout(provider: str) -> None:
    """Remove PROVIDER's stored credential."""
    from openpista.cli.auth import logout

    logout(provider, _globals().config_path)
