"""Saved replies and macros in the inbox without JavaScript, on SQLite and on PostgreSQL: the
pages list them, their forms create, edit and delete them (CSRF-checked, as every form), only
administrators change the shared ones, and a conversation's Macro menu applies one and says so.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.fin import World
from support.server import LiveServer
from web_support import Web, new_agent, sign_in, unique

from findesk.replies.models import Macro, SavedReply


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Iterator[Web]:
    web = sign_in(server, new_agent(server, "Ada Agent"))
    yield web
    web.close()


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[Web]:
    web = sign_in(server, new_agent(server, "Max Admin", role="admin"))
    yield web
    web.close()


def flash(web: Web, path: str) -> str:
    page = web.page(path)
    found = page.first("p", "notice") or page.first("p", "error")
    return found.text if found else ""


def reply_ids(server: LiveServer, title: str) -> list[str]:
    with server.db.read_session() as session:
        return [r.id for r in session.query(SavedReply).filter(SavedReply.title == title)]


def test_an_agent_writes_edits_and_deletes_a_personal_saved_reply(
    server: LiveServer, agent: Web
) -> None:
    title = unique("Greeting")
    page = agent.page("/inbox/saved-replies")
    assert (
        page.find("form", "saved-reply-form")
        .find("input", name="shared", value="yes")
        .attrs.get("disabled")
        is not None
    )  # agents make personal ones
    refused = agent.post("/inbox/saved-replies", {"title": title, "body": "hi"}, csrf=False)
    assert refused.status_code == 403 and not reply_ids(server, title)

    created = agent.post(
        "/inbox/saved-replies",
        {"title": title, "body": "<p>Hi {{user.name|there}}</p>", "shared": "no"},
    )
    assert created.status_code == 303 and created.headers["location"] == "/inbox/saved-replies"
    assert flash(agent, "/inbox/saved-replies") == "Saved reply created."
    (reply_id,) = reply_ids(server, title)
    row = agent.page("/inbox/saved-replies").find("tr", data_reply_id=reply_id)
    assert title in row.text and "only me" in row.text

    edit = agent.page(f"/inbox/saved-replies/{reply_id}")
    assert edit.find("textarea", name="body").text == "<p>Hi {{user.name|there}}</p>"
    agent.post(
        f"/inbox/saved-replies/{reply_id}",
        {"title": title, "body": "<p>Hello {{user.name}}</p>"},
    )
    with server.db.read_session() as session:
        assert session.get(SavedReply, reply_id).body == "<p>Hello {{user.name}}</p>"  # type: ignore[union-attr]

    bad = agent.post(f"/inbox/saved-replies/{reply_id}", {"title": title, "body": "{{user.age}}"})
    assert bad.headers["location"] == f"/inbox/saved-replies/{reply_id}"
    assert "is not a known placeholder" in flash(agent, f"/inbox/saved-replies/{reply_id}")

    agent.post(f"/inbox/saved-replies/{reply_id}/delete")
    assert flash(agent, "/inbox/saved-replies") == "Saved reply deleted."
    assert not reply_ids(server, title)


def test_only_administrators_change_the_shared_replies(
    server: LiveServer, agent: Web, admin: Web
) -> None:
    title = unique("Team")
    refused = agent.post("/inbox/saved-replies", {"title": title, "body": "x", "shared": "yes"})
    assert refused.status_code == 403 and "administrators" in refused.text
    assert not reply_ids(server, title)
    admin.post("/inbox/saved-replies", {"title": title, "body": "<p>x</p>", "shared": "yes"})
    (reply_id,) = reply_ids(server, title)
    row = agent.page("/inbox/saved-replies").find("tr", data_reply_id=reply_id)
    assert "team" in row.text and row.first("a") is None  # no Edit for the agent
    assert agent.get(f"/inbox/saved-replies/{reply_id}").status_code == 403
    assert agent.post(f"/inbox/saved-replies/{reply_id}/delete").status_code == 403
    assert reply_ids(server, title) == [reply_id]


def test_a_macro_made_with_the_form_is_applied_from_the_conversation(
    server: LiveServer, agent: Web, world: World
) -> None:
    title = unique("Thanks")
    agent.post("/inbox/saved-replies", {"title": title, "body": "<p>Thanks, {{user.name}}!</p>"})
    (reply_id,) = reply_ids(server, title)
    name = unique("Wrap up")
    form = agent.page("/inbox/macros").find("form", "macro-form")
    assert len(form.find_all("fieldset", "macro-step")) == 3
    agent.post(
        "/inbox/macros",
        {
            "name": name,
            "step0_type": "take_over",
            "step1_type": "reply",
            "step1_reply": reply_id,
            "step2_type": "add_tags",
            "step2_text": "thanked, done",
            "step3_type": "set_attributes",
            "step3_text": "followup=no; stale=",
            "step4_type": "set_status",
            "step4_status": "resolved",
            "step5_type": "",  # skipped
        },
    )
    assert flash(agent, "/inbox/macros") == "Macro created."
    with server.db.read_session() as session:
        macro = session.query(Macro).filter(Macro.name == name).one()
        assert macro.actions == [
            {"type": "take_over"},
            {"type": "reply", "saved_reply_id": reply_id},
            {"type": "add_tags", "tags": ["thanked", "done"]},
            {"type": "set_attributes", "attributes": {"followup": "no", "stale": None}},
            {"type": "set_status", "status": "resolved"},
        ]
        macro_id = macro.id
    # The edit form shows the steps as saved, and three blank ones.
    edit = agent.page(f"/inbox/macros/{macro_id}").find("form", "macro-form")
    assert len(edit.find_all("fieldset", "macro-step")) == 8
    assert edit.find("input", name="step2_text").attrs["value"] == "thanked, done"

    user = world.user(name="Jo Doe")
    conversation_id = world.open(user["id"])["conversation"]["id"]
    path = f"/inbox/conversations/{conversation_id}"
    menu = agent.page(path).find("form", "macro-menu")
    assert menu.find("option", value=macro_id).text == name
    applied = agent.post(f"{path}/macros", {"macro_id": macro_id})
    assert applied.status_code == 303 and applied.headers["location"] == path
    page = agent.page(path)
    assert page.find("p", "action-notice").text == f"Macro “{name}” applied."
    thread = page.find("ol", "thread").text
    assert "Thanks, Jo Doe!" in thread
    assert f"applied the macro “{name}”" in thread
    assert "resolved it" in thread
    assert page.find("input", id="tags-input").attrs["value"] == "thanked, done"

    # A step that can no longer be done: nothing happens, and the agent is told why.
    other = world.open(user["id"])["conversation"]["id"]
    agent.post(f"/inbox/saved-replies/{reply_id}/delete")  # refused: the macro uses it
    assert "used by the macro" in flash(agent, "/inbox/saved-replies")
    with server.db.transaction() as session:
        session.query(SavedReply).filter(SavedReply.id == reply_id).delete()
    agent.post(f"/inbox/conversations/{other}/macros", {"macro_id": macro_id})
    page = agent.page(f"/inbox/conversations/{other}")
    error = page.find("p", "error").text
    assert "action 2 (reply with a saved reply)" in error and "Nothing was changed" in error
    assert "took over" not in page.find("ol", "thread").text

    agent.post(f"/inbox/macros/{macro_id}/delete")
    assert flash(agent, "/inbox/macros") == "Macro deleted."
