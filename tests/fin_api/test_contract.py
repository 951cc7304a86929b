"""Every operation of both variants answers as the spec says (spec sections 2-4)."""

from __future__ import annotations

import re

from support.fin import unique

from findesk.fin_api.client import FinApiClient

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
USER_FIELDS = {"id", "user_type", "name", "email", "photo_url", "attributes"}
AGENT_FIELDS = {"id", "user_type", "name", "email", "photo_url", "alias"}
CONVERSATION_FIELDS = {
    "id",
    "status",
    "user",
    "title",
    "tags",
    "attributes",
    "assignee",
    "created_at",
    "updated_at",
}
MESSAGE_FIELDS = {
    "id",
    "conversation_id",
    "message_type",
    "body",
    "author",
    "visibility",
    "created_at",
    "attachments",
}


def test_posts_only_wraps_every_answer(api: FinApiClient, world) -> None:
    user = world.user()
    reply = api.get_user(user["id"])
    body = reply.response.json()
    if api.variant == "posts-only":
        assert set(body) == {"data", "error"} and body["error"] is None
        missing = api.get_user("usr_missing").response.json()
        assert missing["data"] is None and missing["error"]["status"] == 404
    else:
        assert body["id"] == user["id"]
        missing = api.get_user("usr_missing").response
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["status"] == 404


def test_create_user_then_get_and_every_field_present(api: FinApiClient) -> None:
    object_id = unique("u")
    created = api.create_user(
        object_id=object_id,
        name="Jane Doe",
        email="jane@example.com",
        photo_url="https://example.com/jane.jpg",
        attributes={"plan": "pro", "seats": 3},
    )
    assert created.status == 201
    assert set(created.data) == USER_FIELDS
    assert created.data["user_type"] == "end_user"
    assert created.data["id"].startswith("usr_")
    fetched = api.get_user(created.data["id"])
    assert fetched.status == 200 and fetched.data == created.data

    bare = api.create_user(object_id=unique("u"))
    assert bare.status == 201
    assert bare.data | {"id": None} == {
        "id": None,
        "user_type": "end_user",
        "name": None,
        "email": None,
        "photo_url": None,
        "attributes": {},
    }


def test_create_user_is_idempotent_by_object_id(api: FinApiClient) -> None:
    object_id = unique("u")
    first = api.create_user(object_id=object_id, name="First")
    again = api.create_user(object_id=object_id, name="Second")
    assert (first.status, again.status) == (201, 200)
    assert again.data == first.data  # the object created the first time


def test_update_user_merges_attributes_and_null_removes(api: FinApiClient, world) -> None:
    user = world.user(attributes={"plan": "free", "locale": "en"})
    reply = api.update_user(user["id"], attributes={"plan": "pro", "locale": None, "new": True})
    assert reply.status == 200
    assert reply.data["attributes"] == {"plan": "pro", "new": True}
    assert reply.data["name"] == user["name"]  # untouched fields stay
    email = api.update_user(user["id"], email="collected@example.com")
    assert email.data["email"] == "collected@example.com"
    assert email.data["attributes"] == {"plan": "pro", "new": True}


def test_get_agents_lists_the_fin_bot(api: FinApiClient, server) -> None:
    reply = api.get_agents()
    assert reply.status == 200
    assert isinstance(reply.data, list) and reply.data
    assert reply.data[0]["id"] == server.fin_agent_id
    for agent in reply.data:
        assert set(agent) == AGENT_FIELDS and agent["user_type"] == "agent"


def test_create_conversation_answers_with_both_objects(api: FinApiClient, world, server) -> None:
    user = world.user()
    reply = api.create_conversation(
        title="Question about pricing",
        user_id=user["id"],
        object_id=unique("c"),
        initial_message={
            "conversation_id": "not-known-yet",
            "message_type": "comment",
            "body": "<p>Hi! I'd like to know more about your <strong>pricing</strong>.</p>",
            "author": {"id": user["id"], "user_type": "end_user"},
            "visibility": "public",
            "attributes": {"issue_type": "Billing"},
            "created_at": "2025-10-27T14:30:00.000Z",
            "object_id": unique("m"),
            "attachments": [
                {
                    "url": "https://example.com/files/guide.pdf",
                    "filetype": "pdf",
                    "filename": "Pricing Guide",
                }
            ],
        },
    )
    assert reply.status == 201, reply.error
    conversation, message = reply.data["conversation"], reply.data["initial_message"]
    assert set(conversation) == CONVERSATION_FIELDS
    assert set(message) == MESSAGE_FIELDS
    assert conversation["status"] == "open"
    assert conversation["title"] == "Question about pricing"
    assert conversation["attributes"] == {"issue_type": "Billing"}
    assert conversation["tags"] == []
    assert conversation["user"]["id"] == user["id"]
    # Fin starts the conversation, so Fin (its bot agent) handles it.
    assert conversation["assignee"]["id"] == server.fin_agent_id
    assert TIMESTAMP.match(conversation["created_at"]) and TIMESTAMP.match(
        conversation["updated_at"]
    )
    assert message["conversation_id"] == conversation["id"]
    assert message["body"] == "<p>Hi! I'd like to know more about your <b>pricing</b>.</p>"
    assert message["author"]["id"] == user["id"] and message["author"]["user_type"] == "end_user"
    assert message["created_at"] == "2025-10-27T14:30:00.000Z"
    assert message["attachments"] == [
        {
            "url": "https://example.com/files/guide.pdf",
            "filetype": "pdf",
            "filename": "Pricing Guide",
        }
    ]
    fetched = api.get_conversation(conversation["id"])
    assert fetched.status == 200 and fetched.data == conversation


def test_create_conversation_is_idempotent(api: FinApiClient, world) -> None:
    user = world.user()
    body = {
        "user_id": user["id"],
        "object_id": unique("c"),
        "initial_message": {
            "body": "<p>Hello</p>",
            "author": {"id": user["id"], "user_type": "end_user"},
            "object_id": unique("m"),
        },
    }
    first = api.create_conversation(**body)
    again = api.create_conversation(**body)
    assert (first.status, again.status) == (201, 200)
    assert again.data == first.data
    messages = api.get_messages(first.data["conversation"]["id"])
    assert len(messages.data) == 1


def test_update_conversation_is_partial(api: FinApiClient, world) -> None:
    conversation, _ = world.conversation(title="Original")
    cid = conversation["id"]
    tagged = api.update_conversation(cid, tags=["pricing", "sales"], attributes={"a": 1, "b": 2})
    assert tagged.status == 200
    assert tagged.data["tags"] == ["pricing", "sales"]
    assert tagged.data["title"] == "Original"  # not sent, not changed
    assert tagged.data["assignee"] == conversation["assignee"]
    second = api.update_conversation(cid, attributes={"b": None, "c": 3}, tags=["billing"])
    assert second.data["attributes"] == {"a": 1, "c": 3}
    assert second.data["tags"] == ["billing"]  # tags replace the set
    assert second.data["updated_at"] >= conversation["updated_at"]
    titled = api.update_conversation(
        cid,
        title="Pricing inquiry - resolved",
        status="resolved",
        last_user_read_at="2025-10-27T15:45:00.000Z",
    )
    assert titled.data["title"] == "Pricing inquiry - resolved"
    assert titled.data["status"] == "resolved"
    assert titled.data["tags"] == ["billing"]
    for status in ("closed", "ended", "open"):
        assert api.update_conversation(cid, status=status).data["status"] == status


def test_handover_and_back(api: FinApiClient, world, server) -> None:
    conversation, _ = world.conversation()
    handed = api.update_conversation(conversation["id"], assignee_id=None)
    assert handed.status == 200 and handed.data["assignee"] is None
    back = api.update_conversation(conversation["id"], assignee_id=server.fin_agent_id)
    assert back.data["assignee"]["id"] == server.fin_agent_id
    unknown = api.update_conversation(conversation["id"], assignee_id="agt_nobody")
    assert unknown.status == 404
    assert api.get_conversation(conversation["id"]).data["assignee"]["id"] == server.fin_agent_id


def test_messages_in_creation_order_and_after_id(api: FinApiClient, world) -> None:
    conversation, first = world.conversation()
    cid = conversation["id"]
    later = [world.fin_says(cid, f"<p>answer {i}</p>") for i in range(4)]
    all_messages = api.get_messages(cid)
    assert all_messages.status == 200
    assert [m["id"] for m in all_messages.data] == [first["id"]] + [m["id"] for m in later]
    assert all(set(m) == MESSAGE_FIELDS for m in all_messages.data)
    after = api.get_messages(cid, after_id=later[1]["id"])
    assert [m["id"] for m in after.data] == [later[2]["id"], later[3]["id"]]
    assert api.get_messages(cid, after_id=later[3]["id"]).data == []
    # An after_id we do not know returns everything: Fin skips what it has.
    unknown = api.get_messages(cid, after_id="msg_unknown")
    assert [m["id"] for m in unknown.data] == [m["id"] for m in all_messages.data]
    # An after_id of another conversation is unknown here too.
    _, other_first = world.conversation()
    assert len(api.get_messages(cid, after_id=other_first["id"]).data) == 5


def test_create_message_idempotent_and_authors(api: FinApiClient, world, server) -> None:
    conversation, _ = world.conversation()
    cid = conversation["id"]
    body = {
        "conversation_id": cid,
        "message_type": "comment",
        "body": "<p>Thanks!</p>",
        "author": {"id": conversation["user"]["id"], "user_type": "end_user"},
        "visibility": "public",
        "created_at": "2025-10-27T14:35:00.000Z",
        "object_id": unique("m"),
        "attachments": [],
    }
    first = api.create_message(**body)
    again = api.create_message(**body)
    assert (first.status, again.status) == (201, 200)
    assert again.data == first.data
    assert first.data["author"]["user_type"] == "end_user"

    fin = world.fin_says(cid)
    assert fin["author"] == {
        "id": server.fin_agent_id,
        "user_type": "agent",
        "name": "Fin",
        "email": "fin@findesk.invalid",
        "photo_url": None,
        "alias": "Fin",
    }
    # An end-user author must be the conversation's user; an agent author must be an agent.
    stranger = world.user()
    wrong_user = api.create_message(
        **{
            **body,
            "object_id": unique("m"),
            "author": {"id": stranger["id"], "user_type": "end_user"},
        }
    )
    assert wrong_user.status == 422
    not_agent = api.create_message(
        **{**body, "object_id": unique("m"), "author": {"id": stranger["id"], "user_type": "agent"}}
    )
    assert not_agent.status == 422
    assert len(api.get_messages(cid).data) == 3


def test_attachments_only_message_and_empty_message(api: FinApiClient, world) -> None:
    conversation, _ = world.conversation()
    author = {"id": conversation["user"]["id"], "user_type": "end_user"}
    only_file = api.create_message(
        conversation_id=conversation["id"],
        body="",
        author=author,
        visibility="public",
        object_id=unique("m"),
        attachments=[{"url": "https://example.com/a.png", "filetype": "png", "filename": "a"}],
    )
    assert only_file.status == 201
    assert only_file.data["body"] is None
    for empty_body in (None, "", "   ", "<p></p>", "<script>alert(1)</script>"):
        reply = api.create_message(
            conversation_id=conversation["id"],
            body=empty_body,
            author=author,
            visibility="public",
            object_id=unique("m"),
            attachments=[],
        )
        assert reply.status == 422, empty_body
    assert len(api.get_messages(conversation["id"]).data) == 2


def test_html_is_sanitised_to_the_allowed_set(api: FinApiClient, world) -> None:
    conversation, _ = world.conversation()
    reply = api.create_message(
        conversation_id=conversation["id"],
        body=(
            '<h1>T</h1><h4>Sub</h4><p onclick="steal()">Hi <strong>b</strong> <em>i</em>'
            '<script>alert(1)</script></p><a href="javascript:alert(1)">x</a>'
            '<a href="https://example.com"><img src="https://example.com/i.png" onerror="x()"></a>'
            "<ul><li>one</li></ul><ol><li>two</li></ol><code>c</code><br><div>kept text</div>"
        ),
        author={"id": conversation["user"]["id"], "user_type": "end_user"},
        visibility="public",
        object_id=unique("m"),
    )
    assert reply.status == 201
    body = reply.data["body"]
    for forbidden in (
        "script",
        "onclick",
        "onerror",
        "javascript:",
        "<div",
        "<h4",
        "strong",
        "em>",
    ):
        assert forbidden not in body
    for kept in (
        "<h1>T</h1>",
        "<h2>Sub</h2>",
        "<b>b</b>",
        "<i>i</i>",
        "<ul><li>one</li></ul>",
        "<ol><li>two</li></ol>",
        "<code>c</code>",
        "<br>",
        "kept text",
        'src="https://example.com/i.png"',
        'href="https://example.com"',
    ):
        assert kept in body


def test_private_note_visibility_round_trips(api: FinApiClient, world, server) -> None:
    conversation, _ = world.conversation()
    note = api.create_message(
        conversation_id=conversation["id"],
        body="<p>internal</p>",
        author={"id": server.fin_agent_id, "user_type": "agent"},
        visibility="private",
        object_id=unique("m"),
    )
    assert note.status == 201
    messages = api.get_messages(conversation["id"]).data
    assert messages[-1]["visibility"] == "private"


def test_end_user_message_reopens_a_resolved_conversation(api: FinApiClient, world) -> None:
    conversation, _ = world.conversation()
    api.update_conversation(conversation["id"], status="resolved")
    api.create_message(
        conversation_id=conversation["id"],
        body="<p>One more thing</p>",
        author={"id": conversation["user"]["id"], "user_type": "end_user"},
        visibility="public",
        object_id=unique("m"),
    )
    assert api.get_conversation(conversation["id"]).data["status"] == "open"


def test_unknown_ids_are_404(api: FinApiClient, world) -> None:
    user = world.user()
    author = {"id": user["id"], "user_type": "end_user"}
    replies = [
        api.get_user("usr_nope"),
        api.update_user("usr_nope", attributes={"a": 1}),
        api.get_conversation("conv_nope"),
        api.update_conversation("conv_nope", title="x"),
        api.get_messages("conv_nope"),
        api.create_message(
            conversation_id="conv_nope",
            body="<p>x</p>",
            author=author,
            visibility="public",
            object_id=unique("m"),
        ),
        api.create_conversation(
            user_id="usr_nope",
            object_id=unique("c"),
            initial_message={"body": "<p>x</p>", "author": author, "object_id": unique("m")},
        ),
    ]
    for reply in replies:
        assert reply.status == 404, reply.response.request.url
        assert reply.error["status"] == 404 and reply.error["code"] == "not_found"


def test_initial_message_key_taken_by_another_conversation_is_409(api: FinApiClient, world) -> None:
    user = world.user()
    taken = unique("m")

    def create(conversation_object_id: str, message_object_id: str):
        return api.create_conversation(
            user_id=user["id"],
            object_id=conversation_object_id,
            initial_message={
                "body": "<p>x</p>",
                "object_id": message_object_id,
                "author": {"id": user["id"], "user_type": "end_user"},
            },
        )

    assert create(unique("c"), taken).status == 201
    object_id = unique("c")
    clash = create(object_id, taken)
    assert clash.status == 409 and clash.error["code"] == "conflict"
    # Nothing was kept of the refused create: its object_id is still free.
    assert create(object_id, unique("m")).status == 201
