"""The inbox's "Merge into…" on the end user's profile, over plain HTTP, on SQLite and on
PostgreSQL: the visitor chip, suggestions (same email, or same name), merging by email or from
a suggestion, and the refusals."""

from __future__ import annotations

from support.fin import World
from web_support import Node, Web, unique


def profile(page: Node) -> Node:
    return page.find("aside", "details")


def merge(web: Web, conversation_id: str, **form: str) -> Node:
    response = web.post(f"/inbox/conversations/{conversation_id}/merge", form)
    assert response.status_code == 303, (response.status_code, response.text[:300])
    return web.page(response.headers["location"])


def test_a_visitor_is_merged_into_a_known_user_by_email(web: Web, world: World) -> None:
    visitor = world.user(name=unique("Anon"), attributes={"browser": "Firefox"})
    address = f"{unique('known')}@example.com".lower()
    user = world.user(name="Known Person", email=address, attributes={"plan": "pro"})
    conversation, _ = world.conversation(visitor)
    page = web.page(f"/inbox/conversations/{conversation['id']}")
    aside = profile(page)
    assert aside.find("span", "role-visitor").text == "visitor"
    assert aside.find("details", "merge-form").find("input", name="email") is not None
    assert aside.first("ul", "merge-suggestions") is None  # no user has its name

    page = merge(web, conversation["id"], email=address)

    assert "Merged into Known Person: 1 conversation moved" in page.find("p", "notice").text
    aside = profile(page)
    assert address in aside.text
    assert aside.first("span", "role-visitor") is None
    assert "Firefox" in aside.text and "pro" in aside.text
    got = world.api.get_user(visitor["id"])
    assert got.data["id"] == user["id"]
    assert f"merged {visitor['name']} into Known Person" in page.find("ol", "thread").text


def test_suggestions_by_name_and_by_email_merge_in_one_click(web: Web, world: World) -> None:
    name = unique("Sam")
    visitor = world.user(name=name)
    user = world.user(name=name, email=f"{unique('sam')}@example.com".lower())
    conversation, _ = world.conversation(visitor)
    aside = profile(web.page(f"/inbox/conversations/{conversation['id']}"))
    buttons = aside.find("ul", "merge-suggestions").find_all("button")
    assert [b.attrs["value"] for b in buttons] == [user["id"]]

    page = merge(web, conversation["id"], user_id=user["id"])
    assert "Merged into" in page.find("p", "notice").text
    assert world.api.get_conversation(conversation["id"]).data["user"]["id"] == user["id"]
    # A duplicate with the same email is suggested too.
    duplicate = world.user(name="Other", email=user["email"])
    theirs, _ = world.conversation(duplicate)
    aside = profile(web.page(f"/inbox/conversations/{theirs['id']}"))
    buttons = aside.find("ul", "merge-suggestions").find_all("button")
    assert [b.attrs["value"] for b in buttons] == [user["id"]]


def test_merge_refusals_are_shown_and_change_nothing(web: Web, world: World) -> None:
    visitor = world.user()
    conversation, _ = world.conversation(visitor)
    for form, words in (
        ({"email": "nobody-at-all@example.com"}, "No other user has the email"),
        ({"email": "not an email"}, "email"),
        ({"email": ""}, "Give the email"),
    ):
        page = merge(web, conversation["id"], **form)
        assert words in page.find("p", "error").text, form
    assert world.api.get_user(visitor["id"]).data["id"] == visitor["id"]
