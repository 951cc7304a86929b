"""The ``findesk`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from rich.console import Console
from rich.table import Table

from findesk.kit.errors import Problem

if TYPE_CHECKING:  # loaded on demand: SQLAlchemy and pydantic-settings would slow every --help
    from collections.abc import Callable

    from findesk.kit.db import Database
    from findesk.kit.settings import Settings

    PassProgress = Callable[[int, int], None]  # (done, to do)

app = typer.Typer(
    help="findesk: the helpdesk for teams that run Intercom's Fin.", no_args_is_help=True
)
clients_app = typer.Typer(
    help="OAuth clients that Fin uses to get access tokens.", no_args_is_help=True
)
agents_app = typer.Typer(help="Human agents and the bot that represents Fin.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
app.add_typer(agents_app, name="agents")
outbox_app = typer.Typer(help="The outbox of changes Fin must hear about.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
kb_app = typer.Typer(
    help="The knowledge base: articles, and their copy in Fin's Content Library.",
    no_args_is_help=True,
)
app.add_typer(kb_app, name="kb")
audit_app = typer.Typer(
    help="The audit log of administrative actions: agents, passwords, clients, tokens.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")
objects_app = typer.Typer(
    help="Custom objects (orders, subscriptions…) linked to end users and conversations.",
    no_args_is_help=True,
)
app.add_typer(objects_app, name="objects")
connectors_app = typer.Typer(
    help="Intercom's Data Connectors that Fin calls, kept in step with findesk's lookups.",
    no_args_is_help=True,
)
app.add_typer(connectors_app, name="connectors")
intercom_app = typer.Typer(
    help="Intercom's own numbers: its Reporting Data Export, reconciled with findesk's history.",
    no_args_is_help=True,
)
app.add_typer(intercom_app, name="intercom")


console = Console()
FIRST_ADMIN_COMMAND = "findesk agents create EMAIL --name NAME --admin --password"
err = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _emit(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=None, default=str))


def _print_table(
    columns: list[tuple[str, bool]], rows: list[list[str]], out: Console | None = None
) -> None:
    """Rows under ``(header, whole)`` columns, fitted to the terminal (or ``COLUMNS``).

    A *whole* column holds what a next command takes (an id, an email): it is never cut, folded
    or wrapped. The other columns wrap between words, never inside one, so an id in free text
    stays whole too. When the terminal is too narrow even for that, each row is printed as
    ``header  value`` lines instead of a table."""
    from rich.cells import cell_len
    from rich.text import Text

    out = out or console
    headers = [header for header, _ in columns]
    cells = [headers, *rows]
    longest = [max(cell_len(row[i]) for row in cells) for i in range(len(columns))]
    narrowest = [  # the least a column may get: its header and whole values, or longest word
        longest[i]
        if whole
        else max([cell_len(header), *(cell_len(word) for row in rows for word in row[i].split())])
        for i, (header, whole) in enumerate(columns)
    ]
    room = out.width - 2 * (len(columns) - 1)  # two spaces between columns, no borders
    if sum(narrowest) > room:
        label_width = max(map(cell_len, headers))
        for number, row in enumerate(rows):
            if number:
                out.print()
            for header, value in zip(headers, row, strict=True):
                out.print(Text(f"{header.ljust(label_width)}  {value}"), soft_wrap=True)
        return
    widths = list(narrowest)
    spare = room - sum(widths)
    while spare > 0:  # widen the narrowest wrapped column that still wraps, one cell at a time
        growable = [i for i, w in enumerate(widths) if w < longest[i]]
        if not growable:
            break
        widths[min(growable, key=lambda i: widths[i])] += 1
        spare -= 1
    # No borders: ids copy cleanly, lines grep and cut, and more fits in 80 columns.
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for (header, whole), width in zip(columns, widths, strict=True):
        table.add_column(header, width=width, no_wrap=whole, overflow="ignore" if whole else "fold")
    for row in rows:
        table.add_row(*(Text(value) for value in row))
    out.print(table)


def get_settings() -> Settings:
    from findesk.kit.settings import get_settings as cached_settings

    return cached_settings()


def _database() -> Database:
    from findesk.kit.db import Database

    return Database(get_settings().effective_database_url)


def _fail(message: str) -> None:
    """Print ``message`` as it is (a name or path in it may hold ``[``: never Rich markup)."""
    from rich.markup import escape

    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(1)


def migrate_and_seed() -> Database:
    """Bring the schema to the newest version and make sure the Fin bot agent exists."""
    from findesk.agents.service import ensure_fin_agent
    from findesk.migrations import upgrade

    settings = get_settings()
    upgrade(settings.effective_database_url)
    db = _database()
    with db.transaction() as session:
        ensure_fin_agent(session, settings.fin_agent_email)
    return db


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (and seed the Fin bot agent)."""
    migrate_and_seed().dispose()
    console.print("Database is up to date.")


@app.command()
def recount(as_json: JsonFlag = False) -> None:
    """Set the inbox's queue counts from the conversations themselves (every change keeps them;
    a conversation changed by hand in the database does not). Waits for the changes in flight
    and holds new ones off meanwhile; says which counts were wrong."""
    from findesk.conversations import counts

    db = migrate_and_seed()
    try:
        with db.transaction() as session:
            wrong = counts.recount(session)
    finally:
        db.dispose()
    corrected = [
        {"status": status, "assignee_id": assignee or None, "was": was, "now": now}
        for (status, assignee), (was, now) in wrong.items()
    ]
    if as_json:
        _emit({"corrected": corrected})
        return
    for row in corrected:
        console.print(
            f"{row['status']:<9} {row['assignee_id'] or 'nobody':<26} {row['was']} -> {row['now']}"
        )
    console.print(f"{len(corrected)} corrected." if corrected else "The counts were right.")


@app.command()
def backup(
    destination: Annotated[Path, typer.Argument(help="A new (or empty) folder for the backup.")],
    as_json: JsonFlag = False,
) -> None:
    """Back up the SQLite database and its attachments while findesk serves (consistent: what
    was committed when the copy began). PostgreSQL: use pg_dump (see the README)."""
    from dataclasses import asdict

    from findesk.ops import backup as backups

    try:
        manifest = backups.backup(get_settings(), destination)
    except Problem as exc:
        _fail(exc.detail)
    if as_json:
        _emit({"folder": str(destination), **asdict(manifest)})
        return
    rows = ", ".join(f"{count} {table}" for table, count in manifest.rows.items())
    console.print(f"Backed up to {destination}: {rows}; {manifest.files} attachment files.")
    if manifest.missing_files:
        err.print(f"warning: {len(manifest.missing_files)} attachment files were missing.")


@app.command()
def restore(
    folder: Annotated[Path, typer.Argument(help="A folder written by `findesk backup`.")],
    force: Annotated[
        bool,
        typer.Option(help="Replace the current database (it is kept beside it, renamed)."),
    ] = False,
) -> None:
    """Restore a backup in place of the SQLite database and its attachments, then bring its
    schema up to date. Stop findesk first."""
    from findesk.ops import backup as backups

    try:
        kept = backups.restore(get_settings(), folder, force=force)
    except Problem as exc:
        _fail(exc.detail)
    migrate_and_seed().dispose()
    if kept is not None:
        console.print(f"The database it replaced is kept as {kept}.")
    console.print(f"Restored from {folder}; start findesk again.")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="App processes sharing the port (default: FINDESK_WORKERS, 1); beyond 1 "
            "needs PostgreSQL.",
        ),
    ] = None,
) -> None:
    """Migrate, then serve the Fin API, the agent API and the inbox."""
    import uvicorn

    from findesk.agents.service import has_active_admin
    from findesk.app import create_app
    from findesk.kit import logs
    from findesk.kit.serving import server_config

    settings = get_settings()
    workers = workers or settings.workers
    if workers > 1 and settings.effective_database_url.startswith("sqlite"):
        # SQLite takes one writer at a time, and findesk queues a process's writers on a lock
        # of its own: several processes would wait on each other in SQLite's busy timeout.
        _fail(
            f"--workers {workers} needs PostgreSQL (FINDESK_DATABASE_URL): SQLite serves one "
            "process. Run `findesk serve` without --workers (or with FINDESK_WORKERS=1)."
        )
    db = migrate_and_seed()
    host = host or settings.host
    port = port or settings.port
    logs.configure()
    processes = f", {workers} processes" if workers > 1 else ""
    console.print(
        f"findesk on http://{host}:{port}  (Fin API: /api/fin, docs: /docs{processes})",
        soft_wrap=True,
    )
    if settings.fin_webhook_target is None:
        console.print(
            "[yellow]Fin's webhook is not configured: changes are recorded and will be "
            "delivered once FINDESK_FIN_WEBHOOK_URL or FINDESK_FIN_INTEGRATION_ID is set."
            "[/yellow]"
        )
    with db.read_session() as session:
        has_admin = has_active_admin(session)
    if not has_admin:  # a fresh install: nobody can sign in yet
        console.print(
            f"No administrator can sign in yet; create one with: {FIRST_ADMIN_COMMAND}",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if workers > 1:
        db.dispose()  # each worker process opens its own
        _serve_workers(settings, host, port, workers)
        return
    server = uvicorn.Server(server_config(create_app(settings, db), settings, host=host, port=port))
    server.run()
    if not server.started:  # as uvicorn.run: the port was taken, or startup failed
        raise typer.Exit(3)


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """uvicorn's supervisor: ``workers`` processes accept on one socket, each building the app
    from the environment; one that dies is replaced; SIGTERM stops them all gracefully."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from findesk.kit.serving import server_config

    config = server_config(
        "findesk.app:create_app_from_environment",
        settings,
        host=host,
        port=port,
        workers=workers,
        factory=True,
    )
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn has logged why (the port is taken, say)
        raise typer.Exit(3) from None
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise typer.Exit(3)


@app.command()
def worker() -> None:
    """Deliver outbox events to Fin and wake snoozed conversations (run several on PostgreSQL;
    set FINDESK_NOTIFIER_IN_PROCESS=false on `serve` then)."""
    import asyncio
    import signal

    from findesk.conversations.waker import Waker
    from findesk.kit import logs
    from findesk.knowledge.publisher import PublisherLoop
    from findesk.notifier.worker import Worker
    from findesk.objects.mirror import MirrorLoop

    settings = get_settings()
    db = migrate_and_seed()
    logs.configure()
    delivery = Worker(db, settings)
    waker = Waker(db, settings.snooze_check_seconds)
    # With an Intercom access token, workers also publish articles to Fin's Content Library.
    publisher = PublisherLoop(db, settings) if settings.intercom_access_token else None
    # And mirror the custom objects of mirrored types to Intercom.
    mirror = MirrorLoop(db, settings) if settings.intercom_access_token else None

    def stop() -> None:
        delivery.stop()
        waker.stop()
        if publisher is not None:
            publisher.stop()
        if mirror is not None:
            mirror.stop()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        loops = [each.run() for each in (publisher, mirror) if each is not None]
        await asyncio.gather(delivery.run(), waker.run(), *loops)

    asyncio.run(run())
    db.dispose()


@clients_app.command("create")
def clients_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the client by.")],
    as_json: JsonFlag = False,
) -> None:
    """Create an OAuth client; its secret is shown this once only."""
    from findesk.audit.service import CLI
    from findesk.auth.service import create_client

    try:
        with migrate_and_seed().transaction() as session:
            client, secret = create_client(session, name, by=CLI)
            client_id, name = client.id, client.name
    except Problem as exc:
        _fail(exc.detail)
        return
    if as_json:
        _emit({"client_id": client_id, "client_secret": secret, "name": name})
        return
    # soft_wrap: a narrow terminal must not fold the secret (or any id) onto two lines
    console.print(f"client_id:     {client_id}\nclient_secret: {secret}", soft_wrap=True)
    console.print("[yellow]Store the secret now: findesk keeps only its hash.[/yellow]")


@clients_app.command("list")
def clients_list(as_json: JsonFlag = False) -> None:
    """List OAuth clients."""
    from findesk.auth.service import list_clients

    with migrate_and_seed().read_session() as session:
        rows = [
            {
                "client_id": c.id,
                "name": c.name,
                "created_at": c.created_at.isoformat(),
                "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
            }
            for c in list_clients(session)
        ]
    if as_json:
        _emit({"clients": rows})
        return
    _print_table(
        [("client_id", True), ("name", False), ("created", False), ("revoked", False)],
        [
            [str(r[k] or "") for k in ("client_id", "name", "created_at", "revoked_at")]
            for r in rows
        ],
    )


@clients_app.command("revoke")
def clients_revoke(client_id: str, as_json: JsonFlag = False) -> None:
    """Revoke a client and every token it was given."""
    from findesk.audit.service import CLI
    from findesk.auth.service import revoke_client

    try:
        with migrate_and_seed().transaction() as session:
            revoke_client(session, client_id, by=CLI)
    except Problem as exc:
        _fail(exc.detail)
    if as_json:
        _emit({"client_id": client_id, "revoked": True})
    else:
        console.print(f"Revoked {client_id} and its tokens.", soft_wrap=True)


AskPassword = Annotated[
    bool,
    typer.Option(
        "--password",
        help="Ask for a password for the web inbox (10+ characters; hidden, twice). Needs a "
        "terminal; scripts use --password-stdin. Never given on the command line.",
    ),
]
PasswordFromStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def _read_password(ask: bool, from_stdin: bool) -> str | None:
    """The password the agent signs in with: asked on the terminal, read from stdin, or none.
    Never an argument: those end up in shell histories and process lists."""
    from findesk.auth.passwords import check_strength

    if ask and from_stdin:
        _fail("Use --password (asks on the terminal) or --password-stdin, not both.")
    password: str | None = None
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail("No password on stdin: give it as the first line with --password-stdin.")
    elif ask:
        if not sys.stdin.isatty():
            _fail(
                "--password asks on a terminal, and there is none: pipe the password to "
                "--password-stdin instead."
            )
        while True:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
            try:
                check_strength(password)
                break
            except Problem as exc:
                err.print(exc.detail)
    if password is not None:
        try:
            check_strength(password)
        except Problem as exc:
            _fail(exc.detail)
    return password


def _agent_by_email(session: Any, email: str) -> Any:
    from findesk.agents.repository import get_by_email

    agent = get_by_email(session, email.strip())
    if agent is None:
        _fail(f"No agent with email {email!r}.")
    return agent


@agents_app.command("create")
def agents_create(
    name: Annotated[str, typer.Option(help="Full name.")],
    email: Annotated[
        str | None, typer.Argument(metavar="EMAIL", help="Sign-in email.", show_default=False)
    ] = None,
    email_option: Annotated[
        str | None, typer.Option("--email", hidden=True, help="Same as EMAIL.")
    ] = None,
    alias: Annotated[str | None, typer.Option(help="Name shown to end users.")] = None,
    photo_url: Annotated[str | None, typer.Option("--photo-url", help="Avatar URL.")] = None,
    admin: Annotated[bool, typer.Option(help="Give the admin role.")] = False,
    ask_password: AskPassword = False,
    password_stdin: PasswordFromStdin = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a human agent: `findesk agents create ada@example.com --name "Ada L" --admin
    --password` makes the first administrator of a fresh install."""
    from findesk.agent_api.views import agent_view
    from findesk.agents.service import create_agent
    from findesk.audit.service import CLI

    if email is not None and email_option is not None:
        _fail(
            "Give the email once, as EMAIL. (--password takes no value: it asks on the "
            "terminal; scripts pipe the password to --password-stdin.)"
        )
    email = email if email is not None else email_option
    if email is None:
        _fail("Missing EMAIL: findesk agents create EMAIL --name NAME.")
        return
    password = _read_password(ask_password, password_stdin)
    try:
        with migrate_and_seed().transaction() as session:
            agent = create_agent(
                session,
                email=email,
                name=name,
                alias=alias,
                photo_url=photo_url,
                role="admin" if admin else "agent",
                password=password,
                by=CLI,
            )
            view = agent_view(agent)
    except Problem as exc:
        _fail(exc.detail)
    if as_json:
        _emit(view.model_dump())
    else:
        console.print(f"Created agent {view.id} <{view.email}>.", soft_wrap=True)


@agents_app.command("list")
def agents_list(as_json: JsonFlag = False) -> None:
    """List agents (the Fin bot first)."""
    from findesk.agent_api.views import agent_view
    from findesk.agents.repository import list_all

    with migrate_and_seed().read_session() as session:
        views = [agent_view(a) for a in list_all(session)]
    if as_json:
        _emit({"agents": [v.model_dump() for v in views]})
        return
    columns = ["id", "name", "email", "alias", "role", "bot", "state"]
    _print_table(
        [(c, c in ("id", "email")) for c in columns],
        [
            [
                v.id,
                v.name or "",
                v.email or "",
                v.alias or "",
                v.role,
                "yes" if v.is_bot else "",
                "active" if v.active else "deactivated",
            ]
            for v in views
        ],
    )


@agents_app.command("set-password")
def agents_set_password(email: str, password_stdin: PasswordFromStdin = False) -> None:
    """Set an agent's password for the web inbox, asked on the terminal (hidden, twice); sign
    them out everywhere and revoke their personal tokens."""
    from findesk.agents.service import set_password
    from findesk.audit.service import CLI

    password = _read_password(not password_stdin, password_stdin)
    assert password is not None
    try:
        with migrate_and_seed().transaction() as session:
            set_password(session, _agent_by_email(session, email), password, by=CLI)
    except Problem as exc:
        _fail(exc.detail)
    console.print(f"Password set for {email}; their sessions and personal tokens are ended.")


@agents_app.command("token")
def agents_token(
    email: str,
    label: Annotated[
        str | None, typer.Option(help="What the token is for, shown when tokens are listed.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a new personal token for the agent API; shown this once only."""
    from findesk.audit.service import CLI
    from findesk.auth.service import issue_agent_token

    try:
        with migrate_and_seed().transaction() as session:
            agent = _agent_by_email(session, email)
            row, token = issue_agent_token(session, agent, label=label, by=CLI)
            issued = {"agent_id": agent.id, "email": agent.email, "token": token}
            issued |= {"token_id": row.id, "label": row.label}
    except Problem as exc:
        _fail(exc.detail)
        return
    if as_json:
        _emit(issued)
    else:
        console.print(token, soft_wrap=True, highlight=False)


@agents_app.command("tokens")
def agents_tokens(email: str, as_json: JsonFlag = False) -> None:
    """An agent's personal tokens, newest first: id, label, when issued, last used (to the
    hour) and revoked. Never the secrets."""
    from findesk.agent_api.views import token_view
    from findesk.auth.service import list_agent_tokens

    with migrate_and_seed().read_session() as session:
        agent = _agent_by_email(session, email)
        agent_id, agent_email = agent.id, agent.email
        views = [
            token_view(t).model_dump(mode="json") for t in list_agent_tokens(session, agent_id)
        ]
    if as_json:
        _emit({"agent_id": agent_id, "email": agent_email, "tokens": views})
        return
    headers = ("id", "label", "issued", "last used", "revoked")
    _print_table(
        [(h, h == "id") for h in headers],
        [
            [v["id"], v["label"] or "", v["created_at"], v["last_used_at"] or "never", revoked]
            for v in views
            for revoked in [v["revoked_at"] or ""]
        ],
    )


@agents_app.command("revoke-token")
def agents_revoke_token(token_id: str, as_json: JsonFlag = False) -> None:
    """Revoke one personal token by its id (`findesk agents tokens EMAIL` lists them)."""
    from findesk.audit.service import CLI
    from findesk.auth.service import revoke_agent_token
    from findesk.kit.timeutil import isoformat

    try:
        with migrate_and_seed().transaction() as session:
            row = revoke_agent_token(session, token_id.strip(), by=CLI)
            agent_id, revoked_at = row.agent_id, isoformat(row.revoked_at or row.created_at)
    except Problem as exc:
        _fail(exc.detail)
        return
    if as_json:
        _emit({"token_id": token_id.strip(), "agent_id": agent_id, "revoked_at": revoked_at})
    else:
        console.print(f"Revoked {token_id.strip()}.", soft_wrap=True)


@agents_app.command("deactivate")
def agents_deactivate(email: str, as_json: JsonFlag = False) -> None:
    """Deactivate an agent: signed out everywhere, personal tokens revoked, open conversations
    back in the waiting queue; messages and history kept. Not the Fin bot, nor the last
    active administrator."""
    from findesk.agents.service import deactivate_agent
    from findesk.audit.service import CLI

    try:
        with migrate_and_seed().transaction() as session:
            done = deactivate_agent(session, _agent_by_email(session, email).id, by=CLI)
            result: dict[str, Any] = {
                "agent_id": done.agent.id,
                "email": done.agent.email,
                "active": done.agent.active,
                "tokens_revoked": done.tokens_revoked,
                "unassigned_conversation_ids": done.unassigned_conversation_ids,
            }
    except Problem as exc:
        _fail(exc.detail)
        return
    if as_json:
        _emit(result)
    else:
        console.print(
            f"Deactivated {result['email']}: {result['tokens_revoked']} personal token(s) "
            f"revoked, {len(result['unassigned_conversation_ids'])} open conversation(s) back "
            "in the waiting queue."
        )


@agents_app.command("reactivate")
def agents_reactivate(email: str, as_json: JsonFlag = False) -> None:
    """Let a deactivated agent sign in again (revoked tokens stay revoked)."""
    from findesk.agents.service import reactivate_agent
    from findesk.audit.service import CLI

    try:
        with migrate_and_seed().transaction() as session:
            agent = reactivate_agent(session, _agent_by_email(session, email).id, by=CLI)
            result = {"agent_id": agent.id, "email": agent.email, "active": agent.active}
    except Problem as exc:
        _fail(exc.detail)
        return
    if as_json:
        _emit(result)
    else:
        console.print(f"{result['email']} is active again.")


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Address to serve on.")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port of findesk (default: FINDESK_PORT, 8080).")
    ] = None,
    emulator_port: Annotated[
        int | None,
        typer.Option(help="Port of the Fin emulator (default: FINDESK_EMULATOR_PORT, 8090)."),
    ] = None,
    seed_only: Annotated[
        bool, typer.Option("--seed-only", help="Seed and print credentials, start nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Seed demo data, then start findesk and the Fin emulator wired together and print where
    to click (used by `make run`; Ctrl-C stops both). Seeding again, even beside a running
    demo, keeps the credentials it printed before (they are kept in the data folder)."""
    from findesk.demo import (
        ARTICLES,
        CREDENTIALS_FILE,
        load_credentials,
        save_credentials,
        seed,
    )
    from findesk.demo_stack import DemoError, PortChoice, Stack, Wiring, check_ports, fresh_secrets

    def step(text: str) -> None:
        err.print(f"==> {text}", highlight=False, soft_wrap=True)

    settings = get_settings()
    host = host or settings.host
    ports = [
        PortChoice("findesk", port or settings.port, "FINDESK_PORT", "--port", port is not None),
        PortChoice(
            "the Fin emulator",
            emulator_port or settings.emulator_port,
            "FINDESK_EMULATOR_PORT",
            "--emulator-port",
            emulator_port is not None,
        ),
    ]
    if not seed_only:  # before anything is written: a busy port must not leave half a demo
        try:
            check_ports(host, ports)
        except DemoError as exc:
            _fail(str(exc))
    step("migrating the database")
    db = migrate_and_seed()
    saved = settings.data_dir / CREDENTIALS_FILE
    step(f"seeding the demo (its credentials are kept in {saved})")
    with db.transaction() as session:
        creds = seed(session, settings.fin_agent_email, load_credentials(saved))
    db.dispose()
    save_credentials(saved, creds)
    wiring = fresh_secrets(
        Wiring(
            host,
            ports[0].port,
            ports[1].port,
            creds.client_id,
            creds.client_secret,
            creds.fin_agent_id,
        )
    )
    base = wiring.helpdesk_url
    info: dict[str, Any] = {
        "inbox_url": f"{base}/inbox",
        "agent_email": creds.agent_email,
        "agent_password": creds.agent_password,
        "agent_token": creds.agent_token,
        "helpdesk_url": base,
        "help_centre_url": f"{base}/help",
        "api_docs_url": f"{base}/docs",
        "fin_api_base_url": f"{base}/api/fin",
        "token_url": f"{base}/oauth/token",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "credentials_file": str(saved.resolve()),
    }
    stack = None
    if not seed_only:
        info["messenger_url"] = f"{wiring.emulator_url}/messenger"
        info["chat_demo_url"] = f"{base}/chat/demo"
        info["emulator_url"] = wiring.emulator_url
        info["logs"] = str((settings.data_dir / "logs").resolve())
        stack = Stack(wiring, settings.data_dir / "logs")
        try:
            step(f"starting findesk on {base} and the Fin emulator on {wiring.emulator_url}")
            stack.start()
            stack.wait_ready()
            step(f"findesk publishes its {len(ARTICLES)} help articles to Fin's content library")
            info["articles_in_fin"] = stack.wait_for_library(len(ARTICLES))
        except DemoError as exc:
            stack.stop()
            _fail(str(exc))
    if as_json:
        _emit(info)
        sys.stdout.flush()
    else:
        lines = [f"findesk demo (credentials kept in {info['credentials_file']}, yours only)"]
        if stack is not None:
            lines += [
                f"  Messenger (end user)  {info['messenger_url']}",
                "      ask e.g. 'How long do refunds take?', then 'Talk to a person'",
                f"  Chat widget (visitor) {info['chat_demo_url']}",
                "      findesk's own chat on a pretend company page; Fin answers through the "
                "Fin Agent API",
            ]
        lines += [
            f"  Inbox (human agent)   {info['inbox_url']}",
            f"      sign in as        {creds.agent_email} / {creds.agent_password}"
            if creds.agent_password
            else f"      sign in as        {creds.agent_email} (password set before; "
            f"`findesk agents set-password {creds.agent_email}` sets a new one)",
            f"  Help centre           {info['help_centre_url']}",
            f"  API docs              {info['api_docs_url']}",
            f"  Fin API base URL      {info['fin_api_base_url']}   token URL {info['token_url']}",
            f"  OAuth client for Fin  {creds.client_id} / {creds.client_secret}",
            f"  Agent API token       {creds.agent_token}",
        ]
        if stack is not None:
            lines += [f"  Logs                  {info['logs']}", "Ctrl-C stops both servers."]
        typer.echo("\n".join(lines))
    if stack is not None:
        raise typer.Exit(stack.run_until_signal())


@outbox_app.command("status")
def outbox_status(as_json: JsonFlag = False) -> None:
    """Events by state and the age of the oldest one still pending."""
    from findesk.kit.logs import redact_url
    from findesk.notifier.service import status

    with migrate_and_seed().read_session() as session:
        result = status(session)
    target = get_settings().fin_webhook_target
    data = {
        "counts": result.counts,
        "oldest_pending_age_seconds": result.oldest_pending_age_seconds,
        "target": redact_url(target) if target else None,  # never its credentials
    }
    if as_json:
        _emit(data)
        return
    for state, count in result.counts.items():
        console.print(f"{state:<10} {count}")
    age = result.oldest_pending_age_seconds
    console.print(f"oldest pending: {'-' if age is None else f'{age:.1f} s'}")
    console.print(f"target: {data['target'] or 'not configured'}", soft_wrap=True)


@outbox_app.command("list")
def outbox_list(
    state: Annotated[str | None, typer.Option(help="pending, delivered or dead.")] = None,
    conversation: Annotated[str | None, typer.Option(help="Only this conversation.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The newest events, with their attempts and last error."""
    from findesk.notifier.service import list_events

    if state is not None and state not in ("pending", "delivered", "dead"):
        _fail("--state must be pending, delivered or dead.")
    with migrate_and_seed().read_session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": e.id,
                "conversation_id": e.conversation_id,
                "reason": e.reason,
                "state": e.state,
                "attempts": e.attempts,
                "created_at": e.created_at.isoformat(),
                "next_attempt_at": e.next_attempt_at.isoformat(),
                "delivery_id": e.delivery_id,
                "last_error": e.last_error,
            }
            for e in list_events(session, state=state, conversation_id=conversation, limit=limit)
        ]
    if as_json:
        _emit({"events": rows})
        return
    headers = ("id", "conversation", "reason", "state", "attempts", "created", "last error")
    cells = ("id", "conversation_id", "reason", "state", "attempts", "created_at")
    _print_table(
        [(h, h in ("id", "conversation")) for h in headers],
        [[*(str(r[c]) for c in cells), (r["last_error"] or "")[:60]] for r in rows],
    )


@outbox_app.command("replay")
def outbox_replay(
    dead: Annotated[bool, typer.Option("--dead", help="Also events in dead-letter.")] = False,
    conversation: Annotated[
        str | None,
        typer.Option(
            help="Only this conversation (records a fresh event when it has none to replay)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Retry events now with a fresh retry window (pending ones; dead ones with --dead)."""
    from findesk.notifier.service import replay

    try:
        with migrate_and_seed().transaction() as session:
            count = replay(session, dead=dead, conversation_id=conversation)
    except Problem as exc:
        _fail(exc.detail)
        return
    if as_json:
        _emit({"replayed": count})
    else:
        console.print(f"{count} event(s) due now; a running worker delivers them.")


@audit_app.command("list")
def audit_list(
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. agent.created, oauth_client.revoked.")
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(help="Only what this agent did (email or id); or cli, or system."),
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Only entries about this id (agent, client, token).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this ISO 8601 date or time on (UTC by default).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Before this ISO 8601 time (a date: up to its end).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The newest audit entries: who did what, when, from which address."""
    from findesk.audit.schemas import AuditEntryView
    from findesk.audit.service import ACTIONS, AuditFilter, list_entries, parse_moment
    from findesk.kit.timeutil import isoformat

    if action is not None and action not in ACTIONS:
        _fail(f"--action must be one of {', '.join(ACTIONS)}.")
    try:
        f = AuditFilter(
            action=action,
            actor=(actor or "").strip() or None,
            target_id=(target or "").strip() or None,
            since=parse_moment(since) if since else None,
            until=parse_moment(until, end=True) if until else None,
        )
    except Problem as exc:
        _fail(exc.detail)
        return
    with migrate_and_seed().read_session() as session:
        page = list_entries(session, f, limit=limit)
        views = [AuditEntryView.model_validate(e) for e in page.entries]
    if as_json:
        _emit({"entries": [v.model_dump(mode="json") for v in views]})
        return
    # Ids, emails and times are single words: the table wraps between words, never in one.
    _print_table(
        [(h, False) for h in ("at", "action", "actor", "address", "target", "detail")],
        [
            [isoformat(v.at), v.action, v.actor_label, v.address or "", target, detail]
            for v in views
            for target in [f"{v.target_type} {v.target_id or ''}".strip()]
            for detail in [", ".join(f"{k}={val}" for k, val in v.detail.items())]
        ],
    )


@app.command()
def conformance(
    base_url: Annotated[str, typer.Option(help="Base URL of the Fin API, e.g. https://h/api/fin.")],
    token_url: Annotated[str, typer.Option(help="The helpdesk's OAuth token endpoint.")],
    client_id: Annotated[str, typer.Option(help="OAuth client id Fin uses.")],
    client_secret: Annotated[str, typer.Option(help="OAuth client secret Fin uses.")],
    variant: Annotated[
        str,
        typer.Option(
            help="rest, posts-only, both (each check in each variant, one report), or auto "
            "(both when the helpdesk serves both, found by one read in each)."
        ),
    ] = "auto",
    token_format: Annotated[str, typer.Option(help="Token request body: json or form.")] = "json",  # noqa: S107
    token_auth: Annotated[
        str, typer.Option(help="Where Fin sends the client credentials: body or basic.")
    ] = "body",  # noqa: S107
    signing_secret: Annotated[
        str | None,
        typer.Option(
            help="The HMAC key Fin signs with: every call is signed and signatures are checked."
        ),
    ] = None,
    signature_scheme: Annotated[
        str,
        typer.Option(
            help="What is signed: body ({timestamp}:{raw body}, as Fin sends) or bound "
            "(findesk's form, with method and path)."
        ),
    ] = "body",
    fin_agent_id: Annotated[
        str | None, typer.Option(help="Agent that represents Fin (default: the first agent).")
    ] = None,
    interactive: Annotated[
        bool,
        typer.Option(
            "--interactive",
            help="Also listen for the helpdesk's webhook and ask you to reply in the helpdesk.",
        ),
    ] = False,
    listen: Annotated[
        str, typer.Option(help="HOST:PORT the webhook listener binds (with --interactive).")
    ] = "127.0.0.1:8099",
    webhook_key: Annotated[
        str | None,
        typer.Option(help="X-Webhook-Key the helpdesk is configured to send (--interactive)."),
    ] = None,
    integration_id: Annotated[
        str, typer.Option(help="Integration id in the webhook path the helpdesk calls.")
    ] = "conformance",
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for your reply's webhook call.", min=1)
    ] = 300.0,
    trigger_command: Annotated[
        str | None,
        typer.Option(
            help="Run this shell command instead of asking you to act in the helpdesk "
            "({conversation_id} and $FINDESK_CONFORMANCE_ACTION: reply, replies, take_over)."
        ),
    ] = None,
    trigger_timeout: Annotated[
        float, typer.Option(help="Seconds the --trigger-command may run.", min=1)
    ] = 60.0,
    webhook_hold: Annotated[
        float,
        typer.Option(
            help="Seconds the listener holds one call to make the helpdesk time out.",
            min=1,
            max=600,
        ),
    ] = 30.0,
    webhook_slow: Annotated[
        float, typer.Option(help="Seconds the listener takes over a slow 202.", min=0, max=60)
    ] = 3.0,
    echo_window: Annotated[
        float,
        typer.Option(
            help="Grace window (s): a call this soon after Fin's own change is an echo.", min=0.1
        ),
    ] = 2.0,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Fail the run on recommended checks (findesk's choices) too."
        ),
    ] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write a JUnit XML report to this file.")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option("--record", help="Write every request and response (redacted) as JSON lines."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check any helpdesk against the Fin Custom Helpdesk contract (creates test data in it).

    Required checks are what the contract says (a failure fails the run); recommended ones are
    findesk's stronger choices (reported apart; they fail the run only with --strict).

    Exit codes: 0 passed, 1 a check failed, 2 usage error, 3 the helpdesk could not be reached,
    4 it refused the client credentials.

    With --interactive, also checks the helpdesk's webhook: the suite starts a conversation,
    hands it over and asks you to reply to it in your helpdesk as a human agent (or runs
    --trigger-command), answering the helpdesk's calls with 500, 429, a timeout and a slow 202
    to check its retries."""
    from dataclasses import replace

    from findesk.conformance.checks import Config
    from findesk.conformance.interactive import (
        Instruction,
        InteractiveOptions,
        WebhookListener,
        run_interactive,
    )
    from findesk.conformance.runner import LEVELS, VARIANTS, Result, run, served_variants
    from findesk.conformance.trigger import command_prompt

    if variant not in ("rest", "posts-only", "both", "auto"):
        _usage("--variant must be rest, posts-only, both or auto.")
    if token_format not in ("json", "form"):
        _usage("--token-format must be json or form.")
    if token_auth not in ("body", "basic"):
        _usage("--token-auth must be body or basic.")
    if signature_scheme not in ("body", "bound"):
        _usage("--signature-scheme must be body or bound.")
    listener: WebhookListener | None = None
    if interactive:
        if not webhook_key:
            _usage("--interactive needs --webhook-key (the key the helpdesk sends).")
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            _usage("--listen must be HOST:PORT, e.g. 127.0.0.1:8099.")
        listener = WebhookListener(host.strip("[]"), int(port))
        try:
            listener.start()
        except OSError as exc:
            _fail(f"Cannot listen on {listen}: {exc}")
        typer.echo(
            f"Listening for the helpdesk's webhook: configure the helpdesk to call "
            f"{listener.url(integration_id)} with X-Webhook-Key set to the --webhook-key.",
            err=as_json,
        )
    config = Config(
        base_url=base_url,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        variant="posts-only" if variant == "posts-only" else "rest",
        token_format="json" if token_format == "json" else "form",  # noqa: S105
        fin_agent_id=fin_agent_id,
        token_auth="basic" if token_auth == "basic" else "body",  # noqa: S105
        signing_secret=signing_secret or None,
        signature_scheme="bound" if signature_scheme == "bound" else "body",
    )
    reports = _ConformanceReports(config, strict, junit, html, record)
    reports.preflight(listener)
    variants = list(VARIANTS) if variant == "both" else [config.variant]
    if variant == "auto":
        variants = served_variants(config)
        found = ", ".join(variants) or "none answered Get agents, checking rest"
        variants = variants or ["rest"]
        config = replace(config, variant=variants[0])
        typer.echo(f"Variants served: {found}", err=as_json)

    def show(result: Result, tagged: bool = True) -> None:
        """One line per result; with several variants, it says which (the webhook checks run
        once, in the first variant, and are not tagged)."""
        tag = " (recommended)" if result.level == "recommended" else ""
        if tagged and len(variants) > 1:
            tag = f" [{result.variant}]{tag}"
        if result.outcome == "passed":
            typer.echo(f"PASS {result.name}{tag}")
        elif result.outcome == "skipped":
            typer.echo(f"SKIP {result.name}{tag}: {result.reason}")
        else:
            # A recommended failure is a warning unless --strict.
            word = "FAIL" if result.level == "required" or strict else "WARN"
            typer.echo(f"{word} {result.name}{tag}: {result.reason}")
            if result.request is not None:
                typer.echo(f"     {result.request.describe()}")

    def ask(instruction: Instruction) -> None:
        typer.echo(instruction.text, err=as_json)

    reports.start_recording(config)
    try:
        report = run(config, on_result=None if as_json else show, strict=strict, variants=variants)
        if listener is not None and webhook_key:
            options = InteractiveOptions(
                webhook_key,
                integration_id,
                wait,
                echo_window=echo_window,
                hold=webhook_hold,
                slow=webhook_slow,
            )
            prompt = command_prompt(trigger_command, trigger_timeout) if trigger_command else ask
            for result in run_interactive(config, listener, options, prompt):
                report.results.append(result)
                if not as_json:
                    show(result, tagged=False)
    finally:
        if listener is not None:
            listener.stop()
        reports.stop_recording()
    reports.write(report, err=as_json)
    if as_json:
        _emit(report.to_dict())
    else:
        titles = {
            "required": "Required by the contract",
            "recommended": "Recommended (findesk's stronger choices)",
        }
        for level in LEVELS:
            title = titles[level]
            failed = sorted(report.failures(level))
            typer.echo(
                f"{title}: {report.count('passed', level)} passed, {len(failed)} failed"
                + (f" ({', '.join(failed)})" if failed else "")
            )
        for line in report.summaries():
            typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


def _usage(message: str) -> NoReturn:
    """A usage error: the message on stderr, exit code 2 (as for an unknown option)."""
    err.print(f"[red]Error:[/red] {message}")
    raise typer.Exit(2)


class _ConformanceReports:
    """What ``conformance`` does besides the run: the preflight, --record, --junit and --html."""

    def __init__(
        self, config: Any, strict: bool, junit: Path | None, html: Path | None, record: Any
    ) -> None:
        from contextlib import ExitStack

        self.config, self.strict, self.junit, self.html = config, strict, junit, html
        self.record: Path | None = record
        self._stack = ExitStack()

    def preflight(self, listener: Any) -> None:
        """Exit 3 (unreachable) or 4 (credentials refused), with the reports, before the run."""
        from findesk.conformance.reports import preflight
        from findesk.conformance.runner import Report

        found = preflight(self.config)
        if found is not None:
            if listener is not None:
                listener.stop()
            code, result = found
            report = Report(self.config.variant, self.config.base_url, [result], self.strict)
            self.write(report, err=True)
            err.print(f"[red]Error:[/red] {result.reason}")
            raise typer.Exit(code)

    def start_recording(self, config: Any) -> None:
        """With --record, every exchange from now on goes to the file."""
        if self.record is not None:
            from findesk.conformance.record import recording

            try:
                self._stack.enter_context(recording(self.record, config))
            except OSError as exc:
                _usage(f"Cannot write {self.record}: {exc}")

    def stop_recording(self) -> None:
        self._stack.close()

    def write(self, report: Any, err: bool) -> None:
        from findesk.conformance.reports import write_reports

        for path in write_reports(report, self.junit, self.html):
            typer.echo(f"Wrote {path}", err=err)
        if self.record is not None and self.record.exists():
            typer.echo(f"Recorded the session in {self.record}", err=err)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="A session written by conformance --record.")],
    against: Annotated[
        str, typer.Option(help="Base URL of the Fin API to replay against, e.g. https://h/api/fin.")
    ],
    token_url: Annotated[str, typer.Option(help="That helpdesk's OAuth token endpoint.")],
    client_id: Annotated[str, typer.Option(help="OAuth client id for that helpdesk.")],
    client_secret: Annotated[str, typer.Option(help="OAuth client secret for that helpdesk.")],
    signing_secret: Annotated[
        str | None, typer.Option(help="Sign the calls that were signed, with this secret.")
    ] = None,
    signature_scheme: Annotated[
        str, typer.Option(help="The signature scheme with --signing-secret: body or bound.")
    ] = "body",
    as_json: JsonFlag = False,
) -> None:
    """Re-issue a recorded conformance session against a helpdesk and show how its answers differ.

    Ids the recorded answers created are mapped to the new ones; timestamps are not compared.
    Exit codes: 0 no difference, 1 differences, 2 usage error (e.g. not a recorded session),
    3 the helpdesk could not be reached."""
    from findesk.conformance.record import RecordError, Replayer, Target, load

    if signature_scheme not in ("bound", "body"):
        _usage("--signature-scheme must be bound or body.")
    try:
        header, exchanges = load(file)
    except RecordError as exc:
        _usage(str(exc))
    target = Target(
        base_url=against,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        signing_secret=signing_secret,
        signature_scheme="bound" if signature_scheme == "bound" else "body",
    )
    with Replayer(header, target) as replayer:
        differences = []
        for difference in replayer.replay(exchanges):
            differences.append(difference)
            if not as_json:
                typer.echo(str(difference))
    if as_json:
        _emit(
            {
                "replayed": replayer.replayed,
                "answered": replayer.answered,
                "differences": [vars(d) for d in differences],
            }
        )
    else:
        typer.echo(
            f"Replayed {replayer.replayed} exchanges against {against}: "
            f"{len(differences)} difference(s)"
        )
    if replayer.replayed and not replayer.answered:
        err.print(f"[red]Error:[/red] no answer from {against}")
        raise typer.Exit(3)
    if differences:
        raise typer.Exit(1)


@app.command()
def doctor(
    base_url: Annotated[
        str | None,
        typer.Option(
            help="findesk's public URL as Fin calls it, without /api/fin (default: "
            "FINDESK_PUBLIC_BASE_URL, else http://HOST:PORT)."
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            help="The OAuth client entered in Fin's Deployment settings.",
            envvar="FINDESK_DOCTOR_CLIENT_ID",
        ),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            help="Its secret (better: --client-secret-stdin, or the variable).",
            envvar="FINDESK_DOCTOR_CLIENT_SECRET",
        ),
    ] = None,
    client_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--client-secret-stdin",
            help="Read the secret from the first line of stdin (asked, hidden, on a terminal).",
        ),
    ] = False,
    variant: Annotated[str, typer.Option(help="rest or posts-only, as set in Fin.")] = "rest",
    token_format: Annotated[
        str, typer.Option(help="Token request body, as set in Fin: json or form.")
    ] = "json",  # noqa: S107
    conversation_id: Annotated[
        str | None,
        typer.Option(
            help="A real conversation to read (with its user and messages) instead of asking "
            "for made-up ids; with --send-webhook, the one Fin is told to sync."
        ),
    ] = None,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Also try the write operations: creates a test user and a closed test "
            "conversation, tagged findesk-doctor.",
        ),
    ] = False,
    send_webhook: Annotated[
        bool,
        typer.Option(
            "--send-webhook",
            help="Also call Fin's webhook with the key: a sync event for --conversation-id.",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.", min=1)] = 10.0,
    as_json: JsonFlag = False,
) -> None:
    """Check this deployment the way Fin will meet it: the public URL, the token endpoint,
    each Fin operation with the client Fin uses (reads only, unless --write), request
    signing, and Fin's webhook. One line per check (ok, warn, FAIL with what to fix); exit
    code 1 if any check fails."""
    from findesk.ops.doctor import Deployment, Finding, Options, run

    if variant not in ("rest", "posts-only"):
        _fail("--variant must be rest or posts-only.")
    if token_format not in ("json", "form"):
        _fail("--token-format must be json or form.")
    if send_webhook and not conversation_id:
        _fail(
            "--send-webhook needs --conversation-id: the webhook call makes Fin sync that "
            "conversation (a made-up id would make Fin log an error)."
        )
    if client_secret_stdin and sys.stdin.isatty():  # wins over --client-secret and the variable
        client_secret = typer.prompt("Client secret", hide_input=True, err=True)
    elif client_secret_stdin:
        client_secret = sys.stdin.readline().rstrip("\r\n") or None
        if client_secret is None:
            _fail("No secret on stdin: give it as the first line with --client-secret-stdin.")
    settings = get_settings()
    options = Options(
        base_url=(base_url or settings.base_url).strip(),
        client_id=(client_id or "").strip() or None,
        client_secret=client_secret,
        variant=cast(Any, variant),
        token_format=cast(Any, token_format),
        conversation_id=(conversation_id or "").strip() or None,
        write=write,
        send_webhook=send_webhook,
        timeout=timeout,
    )

    def show(finding: Finding) -> None:
        typer.echo(finding.line())

    report = run(options, Deployment.from_settings(settings), None if as_json else show)
    if as_json:
        _emit(report.to_dict())
    else:
        typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def emulator(
    client_id: Annotated[
        str,
        typer.Option(
            help="OAuth client id Fin uses on the helpdesk.", envvar="FINDESK_EMULATOR_CLIENT_ID"
        ),
    ],
    client_secret: Annotated[
        str, typer.Option(help="Its secret.", envvar="FINDESK_EMULATOR_CLIENT_SECRET")
    ],
    webhook_key: Annotated[
        str,
        typer.Option(
            help="X-Webhook-Key the helpdesk must send.", envvar="FINDESK_EMULATOR_WEBHOOK_KEY"
        ),
    ],
    content_token: Annotated[
        str,
        typer.Option(
            help="Bearer token of the emulated AI Content API and error log.",
            envvar="FINDESK_EMULATOR_CONTENT_TOKEN",
        ),
    ],
    helpdesk_url: Annotated[
        str, typer.Option(help="The helpdesk (its Fin API is at /api/fin).")
    ] = "http://127.0.0.1:8080",
    integration_id: Annotated[str, typer.Option(help="The integration's Identifier.")] = "demo",
    fin_agent_id: Annotated[
        str | None, typer.Option(help="Agent that represents Fin; default: the first agent.")
    ] = None,
    variant: Annotated[str, typer.Option(help="rest or posts-only.")] = "rest",
    grant_format: Annotated[
        str, typer.Option("--token-format", help="json or form token requests.")
    ] = "json",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: FINDESK_EMULATOR_PORT, 8090).")
    ] = None,
    fin_agent_token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token the Fin Agent API (/fin/*) accepts (unset: it refuses every call).",
            envvar="FINDESK_EMULATOR_FIN_AGENT_TOKEN",
        ),
    ] = None,
    fin_agent_webhook_url: Annotated[
        str | None,
        typer.Option(
            help="Where the Fin Agent API sends Fin's events (findesk's "
            "/chat/hooks/fin-agent-api).",
            envvar="FINDESK_EMULATOR_FIN_AGENT_WEBHOOK_URL",
        ),
    ] = None,
    fin_agent_webhook_secret: Annotated[
        str | None,
        typer.Option(
            help="Signing secret of those events (X-Fin-Agent-API-Webhook-Signature).",
            envvar="FINDESK_EMULATOR_FIN_AGENT_WEBHOOK_SECRET",
        ),
    ] = None,
    fin_agent_sse: Annotated[
        bool,
        typer.Option(
            help="Fin Agent API answers carry an sse_subscription_url (SSE, with "
            "fin_reply_chunk events) besides the webhook."
        ),
    ] = False,
    custom_channel_token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token (API key) the Custom Channel Events accept (unset: they refuse "
            "every call).",
            envvar="FINDESK_EMULATOR_CUSTOM_CHANNEL_TOKEN",
        ),
    ] = None,
    custom_channel_callback_url: Annotated[
        str | None,
        typer.Option(
            help="Where Custom Channel callbacks go (findesk's /chat/hooks/custom-channel).",
            envvar="FINDESK_EMULATOR_CUSTOM_CHANNEL_CALLBACK_URL",
        ),
    ] = None,
    custom_channel_callback_token: Annotated[
        str | None,
        typer.Option(
            help="Authentication Token sent as a bearer token on those callbacks.",
            envvar="FINDESK_EMULATOR_CUSTOM_CHANNEL_CALLBACK_TOKEN",
        ),
    ] = None,
) -> None:
    """Run the Fin emulator: Intercom's side of the loop (webhook, sync runs, answers from its
    content library, the AI Content API, the Fin Agent API and Custom Channel Events), for a
    helpdesk on this machine."""
    import uvicorn

    from findesk.emulator.server import EmulatorConfig, create_emulator
    from findesk.emulator.sync import GrantFormat, HelpdeskConnection
    from findesk.fin_api.client import Variant

    if variant not in ("rest", "posts-only") or grant_format not in ("json", "form"):
        _fail("--variant is rest or posts-only; --token-format is json or form.")
    from urllib.parse import urlsplit

    if fin_agent_webhook_url and not fin_agent_webhook_secret:
        _fail("--fin-agent-webhook-url needs --fin-agent-webhook-secret (events are signed).")
    for url in (fin_agent_webhook_url, custom_channel_callback_url):
        if url and urlsplit(url).scheme not in ("http", "https"):
            _fail(f"{url!r} is not an http(s) URL.")
    checked_variant = cast(Variant, variant)
    checked_format = cast(GrantFormat, grant_format)
    base = helpdesk_url.rstrip("/")
    connection = HelpdeskConnection(
        f"{base}/api/fin",
        f"{base}/oauth/token",
        client_id,
        client_secret,
        grant_format=checked_format,
        variant=checked_variant,
    )
    if fin_agent_id is None:
        agents = connection.api.get_agents()
        if not agents.ok or not agents.data:
            _fail(f"Could not list the helpdesk's agents ({agents.status}): pass --fin-agent-id.")
        fin_agent_id = str(agents.data[0]["id"])
    connection.close()
    config = EmulatorConfig(
        state_dir=get_settings().data_dir / "emulator",
        helpdesk_base_url=f"{base}/api/fin",
        token_url=f"{base}/oauth/token",
        client_id=client_id,
        client_secret=client_secret,
        fin_agent_id=fin_agent_id,
        integration_id=integration_id,
        webhook_key=webhook_key,
        content_token=content_token,
        variant=checked_variant,
        grant_format=checked_format,
        live_streams_per_session=get_settings().live_streams_per_session,
        live_streams_max=get_settings().live_streams_max,
        public_url=f"http://{host}:{port or get_settings().emulator_port}",
        fin_agent_token=fin_agent_token or None,
        fin_agent_webhook_url=fin_agent_webhook_url or None,
        fin_agent_webhook_secret=fin_agent_webhook_secret or None,
        fin_agent_sse=fin_agent_sse,
        custom_channel_token=custom_channel_token or None,
        custom_channel_callback_url=custom_channel_callback_url or None,
        custom_channel_callback_token=custom_channel_callback_token or None,
    )
    port = port or get_settings().emulator_port
    hook = f"http://{host}:{port}/hooks/standalone/custom_helpdesk_conversation_event/"
    console.print(
        f"Fin emulator on http://{host}:{port}  (webhook: {hook}{integration_id})", soft_wrap=True
    )
    uvicorn.run(create_emulator(config), host=host, port=port, log_level="info")


@kb_app.command("import")
def kb_import(
    path: Annotated[
        str, typer.Argument(help="A folder of Markdown files (searched recursively), or one file.")
    ],
    state: Annotated[
        str | None,
        typer.Option(
            help="draft or published, for files whose front matter sets none (default: new "
            "articles are drafts, existing ones keep their state)."
        ),
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option(help="Language of files whose front matter sets none (default: en)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import Markdown files with optional YAML front matter (title, url, state, locale, slug)
    as articles. Importing the same folder again updates them; a bad file is reported and the
    others are still imported (exit code 1 if any failed)."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from findesk.knowledge.importer import FileResult, find_files, import_folder

    if state is not None and state not in ("draft", "published"):
        _fail("--state must be draft or published.")
    root = Path(path)
    if not root.exists():
        _fail(f"No such folder or file: {path}")
    files = find_files(root)
    if not files and not as_json:
        err.print(f"[yellow]No .md or .markdown files in {escape(path)}.[/yellow]")
    db = migrate_and_seed()
    columns = (TextColumn("Importing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task("import", total=len(files))

        def show(result: FileResult) -> None:
            if result.outcome == "failed":
                line = f"{escape(result.path)}: {escape(result.error or 'failed')}"
                progress.console.print(f"[red]failed:[/red] {line}", soft_wrap=True)
            progress.advance(task)

        report = import_folder(
            db, root, default_state=state, default_locale=locale, on_result=show, files=files
        )
    db.dispose()
    counts = report.counts
    if as_json:
        _emit({**counts, "files": [f.to_dict() for f in report.files]})
    else:
        console.print(
            f"{counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['failed']} failed."
        )
    if not report.ok:
        raise typer.Exit(1)


@kb_app.command("sync")
def kb_sync(
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Resend every published article, and delete pages of Fin's copy that match "
            "no published article.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Publish article changes to Fin's Content Library now (the articles waiting for it;
    every article with --full). Exit code 1 if any failed."""
    from findesk.knowledge.publisher import Publisher

    def publish(db: Database, progress: PassProgress) -> Any:
        with Publisher(db, settings) as publisher:
            return publisher.sync(full=full, progress=progress)

    settings = get_settings()
    summary = _intercom_pass("Publishing to Fin", "publish to Fin", as_json, publish)
    _report(
        "Fin's Content Library",
        summary,
        as_json,
        "Failed articles keep their error (fin_error, or intercom_error for Intercom's "
        "help centre); they are retried later.",
    )


@objects_app.command("import")
def objects_import(
    type_identifier: Annotated[
        str, typer.Argument(metavar="TYPE", help="The custom object type's identifier (Order).")
    ],
    path: Annotated[str, typer.Argument(metavar="FILE", help="A .csv or .jsonl file.")],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="csv or jsonl (default: from the file's name)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create or update instances of TYPE by external id from CSV (a header row: external_id,
    external_created_at, external_updated_at and attribute names) or JSON Lines (the API's
    request bodies). A bad row is reported with its line number and the others are imported
    (exit code 1 if any failed; 2 if the file cannot be imported at all)."""
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from findesk.objects.importer import ImportRefused, import_file
    from findesk.objects.service import RowError

    file = Path(path)
    if not file.is_file():
        _fail(f"No such file: {path}")
    db = migrate_and_seed()
    columns = (TextColumn("Importing"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=True, disable=as_json) as progress:
            task = progress.add_task("import", total=file.stat().st_size)

            def failed(error: RowError) -> None:
                if not as_json:
                    progress.console.print(
                        f"[red]line {error.line}:[/red] {escape(error.reason)}", soft_wrap=True
                    )

            report = import_file(
                db,
                type_identifier,
                file,
                fmt=file_format,
                on_progress=lambda done: progress.update(task, completed=done),
                on_error=failed,
            )
    except ImportRefused as exc:
        from rich.markup import escape as _escape

        err.print(f"[red]error:[/red] {_escape(str(exc))}")
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    if as_json:
        _emit(report.to_dict())
    else:
        console.print(f"{report.imported} imported, {len(report.errors)} failed.")
    if not report.ok:
        raise typer.Exit(1)


REPORT_FORMATS = ("table", "json", "csv")


@app.command()
def report(
    start: Annotated[
        str | None, typer.Option(help="First day, YYYY-MM-DD (default: 29 days before --end).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last day, included, YYYY-MM-DD (default: today).")
    ] = None,
    bucket: Annotated[str, typer.Option(help="day or week (weeks start on Monday).")] = "day",
    tag: Annotated[str | None, typer.Option(help="Only conversations with this tag.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's conversations (id).")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's conversations (id).")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this handover reason of Fin's.")] = None,
    view: Annotated[
        str,
        typer.Option(
            help="overview (everything), totals, series, handover_reasons, channels, "
            "response_times, agents, csat, or conversations (one row each)."
        ),
    ] = "overview",
    output_format: Annotated[
        str, typer.Option("--format", help="table (default), json or csv.")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of the terminal.")
    ] = None,
) -> None:
    """What Fin resolved and what the team did: the reports page's numbers (defined in the
    README), by day or week, for the last 30 days unless told otherwise. The conversations
    view streams one row per conversation; with --output it shows a progress bar."""
    from findesk.reports import export
    from findesk.reports import service as reports
    from findesk.reports.filters import parse_query, today_in

    settings = get_settings()
    chosen = view if view == "overview" else export.normal_view(view)
    if chosen is None:
        _fail(f"--view must be overview or one of {', '.join(export.VIEWS)}.")
        return
    if output_format not in REPORT_FORMATS:
        _fail(f"--format must be one of {', '.join(REPORT_FORMATS)}.")
    given = {"start": start, "end": end, "bucket": bucket, "tag": tag, "team": team}
    given.update(agent=agent, channel=channel, reason=reason)
    try:
        query = parse_query(given, today_in(settings.reports_timezone))
    except Problem as exc:
        _fail(exc.detail)
        return
    db = migrate_and_seed()
    try:
        reports.refresh_if_stale(db, settings)  # facts current to the minute
        with db.read_session() as session:
            if chosen == "conversations":
                _report_rows(session, settings, query, output_format, output)
            else:
                built = reports.build_report(session, settings, query)
                _report_summary(built, chosen, output_format, output)
    finally:
        db.dispose()


def _report_out(output: Path | None) -> Any:
    return output.open("w", newline="", encoding="utf-8") if output else sys.stdout


def _report_summary(built: Any, view: str, output_format: str, output: Path | None) -> None:
    from findesk.reports import export

    if output_format == "json":
        if view == "overview":
            text = built.model_dump_json()
        else:
            data = getattr(built, view)
            text = json.dumps(
                {
                    "query": built.query.model_dump(mode="json"),
                    "timezone": built.timezone,
                    "computed_at": built.computed_at.isoformat(),
                    "data": data.model_dump(mode="json")
                    if hasattr(data, "model_dump")
                    else [item.model_dump(mode="json") for item in data],
                }
            )
        text += "\n"
    elif output_format == "csv":
        text = export.summary_csv(built, "totals" if view == "overview" else view)
    else:
        header, rows = export.table(built, "totals" if view == "overview" else view)
        if view in ("overview", "totals"):  # one row: a name-value list reads better
            header, rows = (
                ["measure", "value"],
                [[h, v] for h, v in zip(header, rows[0], strict=True)],
            )
        if output is None:
            _print_table(
                [(str(h), False) for h in header],
                [["n/a" if v is None else export.safe_cell(v) for v in row] for row in rows],
            )
            return
        text = "".join(
            "\t".join(export.safe_cell(v) for v in row) + "\n" for row in [header, *rows]
        )
    out = _report_out(output)
    try:
        out.write(text)
    finally:
        if output is not None:
            out.close()
    if output is not None:
        err.print(f"Wrote {output}.")


def _report_rows(
    session: Any, settings: Settings, query: Any, output_format: str, output: Path | None
) -> None:
    """The conversations view: CSV, or JSON Lines (json), streamed; a progress bar when the
    rows go to a file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from findesk.reports import export
    from findesk.reports import service as reports

    total = reports.count_conversations(session, settings, query) if output else None
    rows = reports.conversation_rows(session, settings, query)
    done = 0

    def counted() -> Any:
        nonlocal done
        for row in rows:
            done += 1
            yield row

    if output_format == "json":
        chunks: Any = (json.dumps(row, default=export.json_default) + "\n" for row in counted())
    else:  # csv (a table of every conversation would not fit a terminal)
        chunks = export.conversation_csv(counted())
    out = _report_out(output)
    columns = (TextColumn("Exporting"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=err, transient=True, disable=output is None) as progress:
            task = progress.add_task("export", total=total)
            for chunk in chunks:
                out.write(chunk)
                progress.update(task, completed=done)
    finally:
        if output is not None:
            out.close()
    if output is not None:
        err.print(f"Wrote {done} conversation(s) to {output}.")


def main() -> None:
    app()


@objects_app.command("set-mirror")
def objects_set_mirror(
    type_identifier: Annotated[
        str, typer.Argument(metavar="TYPE", help="The custom object type's identifier (Order).")
    ],
    off: Annotated[
        bool, typer.Option("--off", help="Stop mirroring (Intercom keeps its copies).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Mirror TYPE's instances to Intercom's Custom Object Instances API (a type with the same
    identifier must exist in Intercom), or stop with --off."""
    from findesk.kit.errors import Problem
    from findesk.objects.service import set_mirror

    db = migrate_and_seed()
    try:
        with db.transaction() as session:
            found = set_mirror(session, type_identifier, not off)
            state = {"identifier": found.identifier, "mirror_to_intercom": found.mirror_to_intercom}
    except Problem as exc:
        _fail(exc.detail)
        return
    finally:
        db.dispose()
    if as_json:
        _emit(state)
    else:
        console.print(
            f"{_escape_markup(type_identifier)}: mirror to Intercom "
            f"{'on' if state['mirror_to_intercom'] else 'off'}."
        )


@objects_app.command("mirror")
def objects_mirror(
    full: Annotated[
        bool, typer.Option("--full", help="Resend every instance of every mirrored type.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Send the instances of mirrored types that changed (and the deletes) to Intercom now;
    every instance with --full. Exit code 1 if any failed (retried later)."""
    from findesk.objects.mirror import Mirror

    def mirror(db: Database, progress: PassProgress) -> Any:
        with Mirror(db, settings) as job:
            return job.sync(full=full, progress=progress)

    settings = get_settings()
    summary = _intercom_pass("Mirroring to Intercom", "mirror custom objects", as_json, mirror)
    _report("Intercom's custom objects", summary, as_json)


@connectors_app.command("sync")
def connectors_sync(
    no_results: Annotated[
        bool,
        typer.Option("--no-results", help="Do not read the connectors' execution results back."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create, update and delete Intercom's Data Connectors so that they match findesk's
    lookups, then read their execution results back. Exit code 1 if any connector failed
    (it keeps its error and is tried again on the next sync)."""
    from findesk.lookups import intercom

    def sync(db: Database, progress: PassProgress) -> Any:
        return intercom.sync(db, settings, progress, read_results=not no_results)

    settings = get_settings()
    summary = _intercom_pass("Syncing Data Connectors", "sync Data Connectors", as_json, sync)
    failures = [f"  {key}: {error}" for key, error in summary.failures.items()]
    _report("Intercom's Data Connectors", summary, as_json, *failures)


def _day_option(value: str | None, name: str, default: Any) -> Any:
    from datetime import date

    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{name} must be a date (YYYY-MM-DD), not {value!r}.")
        raise  # unreachable: _fail exits


def _day_range(since: str | None, until: str | None, timezone: str = "UTC") -> tuple[Any, Any]:
    """``--since``/``--until`` (both included; default: the last 7 days to today)."""
    from datetime import timedelta

    from findesk.reports.filters import today_in

    end = _day_option(until, "--until", today_in(timezone))
    start = _day_option(since, "--since", end - timedelta(days=6))
    if start > end:
        _fail("--since must not be after --until.")
    if (end - start).days > 400:
        _fail("At most 400 days at once.")
    return start, end


@intercom_app.command("export")
def intercom_export(
    since: Annotated[
        str | None,
        typer.Option(help="First day (YYYY-MM-DD, UTC); default: 6 days before --until."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last day, included (YYYY-MM-DD, UTC); default: today.")
    ] = None,
    dataset: Annotated[str, typer.Option(help="The dataset to export.")] = "conversation",
    force: Annotated[
        bool, typer.Option("--force", help="Fetch again the days already downloaded.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Pull Intercom's Reporting Data Export into findesk, one job per day (at most 5 pending
    at once). A run that was interrupted resumes its pending jobs; days downloaded after they
    ended are not fetched again without --force. Exit code 1 if any day failed."""
    from findesk.intercom_export.service import Exporter

    start, end = _day_range(since, until)
    settings = get_settings()
    if not settings.intercom_app_id or not settings.intercom_client_id:
        _fail("set FINDESK_INTERCOM_APP_ID and FINDESK_INTERCOM_CLIENT_ID to export.")

    def export(db: Database, progress: PassProgress) -> Any:
        with Exporter(db, settings) as exporter:
            return exporter.export(start, end, dataset=dataset, force=force, progress=progress)

    summary = _intercom_pass("Exporting from Intercom", "export reports", as_json, export)
    failures = [f"  {day}: {error}" for day, error in summary.failures.items()]
    _report("Intercom's Reporting Data Export", summary, as_json, *failures)


@intercom_app.command("reconcile")
def intercom_reconcile(
    since: Annotated[
        str | None,
        typer.Option(help="First day (YYYY-MM-DD, reports' time zone); default: 6 days before."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last day, included (YYYY-MM-DD); default: today.")
    ] = None,
    output: Annotated[
        str, typer.Option("--format", help="table, csv (the disagreements) or json.")
    ] = "table",
) -> None:
    """Fin resolutions Intercom counts (from `findesk intercom export`) against findesk's own
    history, per day: confirmed, or disputed with the evidence (handed over, a human replied,
    the end user came back, no such conversation). Exit code 0 either way."""
    from findesk.intercom_export.reconcile import reconcile, to_csv

    if output not in ("table", "csv", "json"):
        _fail("--format must be table, csv or json.")
    settings = get_settings()
    start, end = _day_range(since, until, settings.reports_timezone)
    db = migrate_and_seed()
    try:
        with db.read_session() as session:
            result = reconcile(session, settings, start, end)
    finally:
        db.dispose()
    if output == "json":
        _emit(result.to_dict())
        return
    if output == "csv":
        sys.stdout.write(to_csv(result))
        return
    console.print(
        f"Intercom counts {result.intercom_fin_resolutions} Fin resolution(s) from {start} to "
        f"{end} ({result.timezone}): {result.confirmed} confirmed, {result.disputed} disputed."
    )
    _print_table(
        [("Day", True), ("Fin resolutions", True), ("Confirmed", True), ("Disputed", True)],
        [
            [d.day.isoformat(), str(d.intercom_fin_resolutions), str(d.confirmed), str(d.disputed)]
            for d in result.days
        ],
    )
    if result.disagreements:
        console.print()
        console.print("Disagreements:")
        _print_table(
            [
                ("Day", True),
                ("Conversation", True),
                ("Intercom says", True),
                ("findesk saw", False),
            ],
            [
                [
                    item.day.isoformat(),
                    item.conversation_id or item.external_reference or "-",
                    item.claim,
                    "; ".join(
                        f"{e.label} ({e.at:%Y-%m-%d %H:%M:%S} UTC)" if e.at else e.label
                        for e in item.evidence
                    ),
                ]
                for item in result.disagreements
            ],
        )


def _intercom_pass(
    label: str, purpose: str, as_json: bool, run: Callable[[Database, PassProgress], Any]
) -> Any:
    """One pass of a job that talks to Intercom, with a progress bar on stderr (none with
    --json); exit code 2 without an Intercom access token."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    if get_settings().intercom_access_token is None:
        err.print(
            "[red]error:[/red] no Intercom access token: set FINDESK_INTERCOM_ACCESS_TOKEN "
            f"(and FINDESK_FIN_REGION or FINDESK_INTERCOM_API_URL) to {purpose}."
        )
        raise typer.Exit(2)
    db = migrate_and_seed()
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Bar(*columns, console=err, disable=as_json) as bar:
            task = bar.add_task("pass", total=None)
            return run(db, lambda done, total: bar.update(task, completed=done, total=total))
    finally:
        db.dispose()


def _report(title: str, summary: Any, as_json: bool, *notes: str) -> None:
    """The pass's summary (JSON, or a sentence); ``notes`` after a failed one; exit code 1
    when anything failed."""
    if as_json:
        _emit(summary.to_dict())
    elif summary.ok:
        console.print(f"{title}: {summary.describe()}.")
    else:
        err.print(f"[red]{title}:[/red] {_escape_markup(summary.describe())}.")
        for note in notes:
            err.print(_escape_markup(note))
    if not summary.ok:
        raise typer.Exit(1)


def _escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)
