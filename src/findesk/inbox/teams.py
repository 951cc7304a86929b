"""The inbox's presence control (top bar), and the administrators' pages of teams and routing
rules, with the "test this rule" preview. Without JavaScript, as the rest of the inbox: a change
is a CSRF-checked POST (``guarded``), then a redirect back with a notice or an error."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from findesk.agents import repository as agent_repository
from findesk.audit.service import AuditActor
from findesk.conversations.models import Conversation
from findesk.inbox import forms
from findesk.inbox.endpoints import back, guarded, render
from findesk.inbox.security import Viewer, audit_actor
from findesk.kit.errors import Forbidden, Invalid, Problem
from findesk.kit.http import db_of
from findesk.kit.timeutil import utcnow
from findesk.routing import service as routing
from findesk.routing.schemas import Actions, Condition, RuleIn, RulePatch
from findesk.teams import calendar
from findesk.teams import service as teams
from findesk.teams.models import ASSIGNMENT_METHODS, Team

router = APIRouter(include_in_schema=False)
CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)
TEAMS = "/inbox/admin/teams"
RULES = "/inbox/admin/routing"
PRESENCES = ("online", "away", "offline")
PREVIEW_RECENT = 200


def _require_admin(viewer: Viewer) -> None:
    if viewer.agent.role != "admin":
        raise Forbidden("Only administrators may manage teams and routing.")


def _number(form: FormData, name: str, *, default: int | None = None) -> int | None:
    value = forms.whole_number(form, name)
    if value is None:
        return default
    if not 0 <= value <= 1000:
        raise Invalid(f"{forms.label(name)} must be from 0 to 1000.")
    return value


DAY_LABELS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _intervals(text: str, day: str) -> list[list[str]]:
    """``"09:00-12:30, 13:30-17:00"`` as ``[["09:00", "12:30"], ["13:30", "17:00"]]``; blank:
    closed that day (the calendar checks the times)."""
    found = []
    for part in re.split(r"[,;]", text):
        if not part.strip():
            continue
        start, dash, end = part.replace("\u2013", "-").partition("-")
        if not dash:
            raise Invalid(f"{day}: write each interval as HH:MM-HH:MM, e.g. 09:00-17:00.")
        found.append([start.strip(), end.strip()])
    return found


def _hours_view(team: Team, now: Any) -> dict[str, Any]:
    weekly = team.business_hours
    return {
        "status": calendar.status_text(teams.calendar_of(team), now),
        "always_open": weekly is None,
        "days": {
            day: ", ".join(f"{a}-{b}" for a, b in (weekly or {}).get(day, []))
            for day in calendar.DAYS
        },
        "holidays": "\n".join(team.holidays or []),
    }


def _refusal(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if part != "__root__")
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


# --- presence (every agent) -------------------------------------------------------------------


@router.post("/inbox/presence")
async def set_presence(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        presence = forms.text(form, "presence")
        if presence not in PRESENCES:
            return back("/inbox", error="Choose online, away or offline.")

        def save() -> None:
            with db_of(request).transaction() as session:
                teams.set_presence(session, viewer.agent.id, presence)  # type: ignore[arg-type]

        await run_in_threadpool(save)
        return back("/inbox", notice=f"You are {presence}.")

    return await guarded(request, run, page=False)


# --- teams ------------------------------------------------------------------------------------


def _teams_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        found = teams.list_teams(session)
        members = teams.members(session, found)
        humans = [a for a in agent_repository.list_all(session) if not a.is_bot and a.active]
        by_id = {a.id: a for a in humans}
        now = utcnow()
        return {
            "hours_of": {t.id: _hours_view(t, now) for t in found},
            "days": list(zip(calendar.DAYS, DAY_LABELS, strict=True)),
            "zones": sorted(calendar.zone_names()),
            "viewer": viewer,
            "teams": [(t, [by_id[i] for i in members[t.id] if i in by_id]) for t in found],
            "agents": humans,
            "presence_of": {a.id: teams.effective_presence(a) for a in humans},
            "methods": ASSIGNMENT_METHODS,
        }


@router.get(TEAMS)
async def teams_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context = await run_in_threadpool(_teams_context, request, viewer)
        return render(request, "teams.html", **context, flash=True)

    return await guarded(request, run, page=True)


async def _team_change(request: Request, change: Any, done: str) -> Response:
    """Run ``change(session, form, by)`` for an admin in a transaction (``by``: who, for the
    audit log); back to the teams page."""

    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        form = await request.form()
        by = audit_actor(request, viewer)

        def apply() -> None:
            with db_of(request).transaction() as session:
                change(session, form, by)

        try:
            await run_in_threadpool(apply)
        except Problem as exc:
            if isinstance(exc, Forbidden):
                raise
            return back(TEAMS, error=exc.detail)
        return back(TEAMS, notice=done)

    return await guarded(request, run, page=False)


def _method(form: FormData) -> str:
    method = forms.text(form, "assignment_method") or "round_robin"
    if method not in ASSIGNMENT_METHODS:
        raise Invalid("Assignment is round robin or least busy.")
    return method


@router.post(TEAMS)
async def create_team(request: Request) -> Response:
    def change(session: Any, form: FormData, by: AuditActor) -> None:
        teams.create_team(
            session,
            by=by,
            name=forms.text(form, "name"),
            assignment_method=_method(form),
            capacity_default=_number(form, "capacity_default", default=10) or 0,
            member_ids=[str(v) for v in form.getlist("member_ids")],
        )

    return await _team_change(request, change, "Team created.")


@router.post(TEAMS + "/{team_id}")
async def update_team(request: Request, team_id: str) -> Response:
    def change(session: Any, form: FormData, by: AuditActor) -> None:
        teams.update_team(
            session,
            team_id,
            by=by,
            name=forms.text(form, "name") or None,
            assignment_method=_method(form),
            capacity_default=_number(form, "capacity_default"),
        )

    return await _team_change(request, change, "Team saved.")


@router.post(TEAMS + "/{team_id}/hours")
async def set_hours(request: Request, team_id: str) -> Response:
    def change(session: Any, form: FormData, by: AuditActor) -> None:
        weekly = None
        if not form.get("always_open"):
            weekly = {day: _intervals(forms.text(form, day), day) for day in calendar.DAYS}
        teams.update_team(
            session,
            team_id,
            by=by,
            timezone=forms.text(form, "timezone") or None,
            business_hours=weekly,
            holidays=[d for d in re.split(r"[\s,;]+", forms.text(form, "holidays")) if d],
        )

    return await _team_change(request, change, "Business hours saved.")


@router.post(TEAMS + "/{team_id}/delete")
async def delete_team(request: Request, team_id: str) -> Response:
    return await _team_change(
        request,
        lambda session, _form, by: teams.delete_team(session, team_id, by=by),
        "Team deleted.",
    )


@router.post(TEAMS + "/{team_id}/members")
async def add_member(request: Request, team_id: str) -> Response:
    def change(session: Any, form: FormData, by: AuditActor) -> None:
        teams.add_member(session, team_id, forms.text(form, "agent_id"), by=by)

    return await _team_change(request, change, "Member added.")


@router.post(TEAMS + "/{team_id}/members/{agent_id}/remove")
async def remove_member(request: Request, team_id: str, agent_id: str) -> Response:
    return await _team_change(
        request,
        lambda session, _form, by: teams.remove_member(session, team_id, agent_id, by=by),
        "Member removed.",
    )


@router.post("/inbox/admin/agents/{agent_id}/capacity")
async def set_capacity(request: Request, agent_id: str) -> Response:
    def change(session: Any, form: FormData, by: AuditActor) -> None:
        teams.set_capacity(session, agent_id, _number(form, "capacity"), by=by)

    return await _team_change(request, change, "Capacity saved.")


# --- routing rules ------------------------------------------------------------------------------


def _condition_refusal(exc: ValidationError) -> str:
    """What is wrong, told by the kind of condition the field names (``schemas.Condition``
    checks only that kind): the first error, without the kind."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"][1:])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def parse_conditions(text: str) -> list[Condition]:
    """One condition a line, ``field op value``: ``tag is Billing``, ``conversation.issue_type
    in Billing, Refunds``, ``user.plan is vip``, ``conversation.amount gt 100``, ``channel is
    email``, ``time between 09:00-17:00 Europe/Paris 0,1,2,3,4``, ``ticket exists``,
    ``ticket.type is Refund``, ``ticket.state is in_progress``, ``object.Order.status is
    delayed``, ``object.Order not_exists``."""
    conditions: list[Condition] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split(None, 2)
        if not words:
            continue
        if len(words) < 2:
            raise Invalid(f"Condition line {number}: give a field and an operator.")
        field, op = words[0], words[1]
        rest = words[2].strip() if len(words) > 2 else ""
        value: Any = rest or None
        if op == "in":
            value = [v.strip() for v in rest.split(",") if v.strip()]
        elif op in ("gt", "lt"):
            try:
                value = float(rest) if "." in rest else int(rest)
            except ValueError:
                value = rest
        elif field == "time":
            parts = rest.split()
            start, _, end = (parts[0] if parts else "").partition("-")
            value = {"start": start, "end": end}
            if len(parts) > 1:
                value["timezone"] = parts[1]
            if len(parts) > 2:
                try:
                    value["days"] = [int(d) for d in parts[2].split(",")]
                except ValueError:
                    raise Invalid(f"Condition line {number}: days are numbers 0-6.") from None
        try:
            conditions.append(CONDITION.validate_python({"field": field, "op": op, "value": value}))
        except ValidationError as exc:
            raise Invalid(f"Condition line {number}: {_condition_refusal(exc)}") from None
    return conditions


def condition_line(condition: dict[str, Any]) -> str:
    value = condition.get("value")
    if condition["field"] == "time" and isinstance(value, dict):
        days = ",".join(str(d) for d in value.get("days", []))
        shown = f"{value['start']}-{value['end']} {value.get('timezone', 'UTC')} {days}"
    elif isinstance(value, list):
        shown = ", ".join(str(v) for v in value)
    elif value is None:
        shown = ""
    else:
        shown = str(value)
    return f"{condition['field']} {condition['op']} {shown}".strip()


def _rule_from_form(form: FormData) -> RuleIn:
    conditions = parse_conditions(str(form.get("conditions") or ""))
    tags = [t.strip() for t in forms.text(form, "add_tags").split(",") if t.strip()]
    try:
        actions = Actions(
            team_id=forms.text(form, "team_id") or None,
            priority=forms.text(form, "priority") or None,
            add_tags=tags,
        )
        return RuleIn(
            name=forms.text(form, "name"),
            position=_number(form, "position"),
            enabled=True,
            conditions=conditions,
            actions=actions,
        )
    except ValidationError as exc:
        raise Invalid(_refusal(exc)) from None


def _rules_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        found = teams.list_teams(session)
        return {
            "viewer": viewer,
            "rules": routing.list_rules(session),
            "teams": found,
            "team_names": {t.id: t.name for t in found},
            "condition_line": condition_line,
            "known": routing.known_fields(session),
        }


@router.get(RULES)
async def rules_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context = await run_in_threadpool(_rules_context, request, viewer)
        return render(request, "routing.html", **context, flash=True)

    return await guarded(request, run, page=True)


@router.post(RULES)
async def create_rule(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        form = await request.form()

        by = audit_actor(request, viewer)

        def create() -> None:
            with db_of(request).transaction() as session:
                routing.create_rule(session, _rule_from_form(form), by=by)

        try:
            await run_in_threadpool(create)
        except Invalid as exc:
            context = await run_in_threadpool(_rules_context, request, viewer)
            return render(
                request, "routing.html", 422, **context, error=exc.detail, form=dict(form)
            )
        return back(RULES, notice="Rule created.")

    return await guarded(request, run, page=False)


@router.post(RULES + "/preview")
async def preview_rule(request: Request) -> Response:
    """Test the conditions in the form against recent conversations: changes nothing."""

    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        form = await request.form()

        def test() -> tuple[int, list[Conversation]]:
            with db_of(request).read_session() as session:
                return routing.preview(
                    session, parse_conditions(str(form.get("conditions") or "")), PREVIEW_RECENT
                )

        context = await run_in_threadpool(_rules_context, request, viewer)
        try:
            examined, found = await run_in_threadpool(test)
        except Invalid as exc:
            return render(
                request, "routing.html", 422, **context, error=exc.detail, form=dict(form)
            )
        return render(
            request,
            "routing.html",
            **context,
            form=dict(form),
            preview={"examined": examined, "matches": found},
        )

    return await guarded(request, run, page=False)


async def _rule_change(request: Request, change: Any, done: str) -> Response:
    """Run ``change(session, by)`` for an admin in a transaction; back to the rules page."""

    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        by = audit_actor(request, viewer)

        def apply() -> None:
            with db_of(request).transaction() as session:
                change(session, by)

        try:
            await run_in_threadpool(apply)
        except Invalid as exc:
            return back(RULES, error=exc.detail)
        return back(RULES, notice=done)

    return await guarded(request, run, page=False)


@router.post(RULES + "/{rule_id}/toggle")
async def toggle_rule(request: Request, rule_id: str) -> Response:
    def change(session: Any, by: AuditActor) -> None:
        rule = routing.get_rule(session, rule_id)
        routing.update_rule(session, rule_id, RulePatch(enabled=not rule.enabled), by=by)

    return await _rule_change(request, change, "Rule saved.")


@router.post(RULES + "/{rule_id}/delete")
async def delete_rule(request: Request, rule_id: str) -> Response:
    return await _rule_change(
        request,
        lambda session, by: routing.delete_rule(session, rule_id, by=by),
        "Rule deleted.",
    )
