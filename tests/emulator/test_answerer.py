"""The Fin emulator's answerer: retrieval, citation, escaping, handover, title/tags/attributes."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from findesk.emulator.answerer import (
    FALLBACK_PREFIX,
    HANDOVER_TEXT,
    RetrievalAnswerer,
    asks_for_human,
    issue_type_of,
    split_passages,
)
from findesk.emulator.content_store import ContentPage, ContentStore

FIN = "fin-1"

PAGES = [
    ContentPage(
        id=1,
        title="Resetting your password",
        url="https://help.example.com/articles/reset-password",
        html=(
            "<h1>Resetting your password</h1>"
            "<p>To reset your password, open Settings, choose Security and click "
            "<strong>Send reset link</strong>. The link expires after 30 minutes.</p>"
            "<h2>Two-factor authentication</h2>"
            "<p>Lost your phone? Recovery codes let you sign in without the authenticator app.</p>"
        ),
    ),
    ContentPage(
        id=2,
        title="Refunds and billing",
        url="https://help.example.com/articles/refunds",
        html=(
            "<p>Refunds are issued to the original card within 5 business days of cancellation.</p>"
            "<p>Invoices can be downloaded as PDF from the Billing page.</p>"
        ),
    ),
    ContentPage(
        id=3,
        title="Shipping",
        url="https://help.example.com/articles/shipping",
        html=(
            "<h2>Delivery times</h2>"
            "<ul><li>Standard shipping takes 3-5 days.</li>"
            "<li>Express shipping arrives the next day.</li></ul>"
        ),
    ),
    ContentPage(
        id=4,
        title="Embedding the widget",
        url="https://help.example.com/articles/embed-widget",
        html=(
            '<p>Paste <code>&lt;script src="https://cdn.example.com/w.js"&gt;&lt;/script&gt;'
            "&lt;img src=x onerror=alert(1)&gt;</code> before the closing body tag to embed "
            "the chat widget.</p>"
            "<script>document.write('<b>injected</b>')</script>"
        ),
    ),
    ContentPage(
        id=5,
        title="Internal office hours",
        url=None,
        html="<p>Our office hours are Monday to Friday, 9am to 5pm Central European Time.</p>",
    ),
]

_ids = itertools.count(1)


def user_msg(body: str, *, visibility: str = "public") -> dict[str, Any]:
    return {
        "id": str(next(_ids)),
        "conversation_id": "c1",
        "message_type": "comment",
        "body": body,
        "author": {"id": "u1", "user_type": "end_user", "name": "Ann"},
        "visibility": visibility,
        "created_at": 0,
        "attachments": [],
    }


def agent_msg(body: str, *, agent_id: str = FIN, visibility: str = "public") -> dict[str, Any]:
    msg = user_msg(body, visibility=visibility)
    msg["author"] = {"id": agent_id, "user_type": "agent", "name": "Fin"}
    return msg


def conversation(**fields: Any) -> dict[str, Any]:
    return {"id": "c1", "status": "open", "title": None, "tags": [], "attributes": {}, **fields}


USER = {"id": "u1", "user_type": "end_user", "name": "Ann"}


@pytest.fixture
def fin() -> RetrievalAnswerer:
    return RetrievalAnswerer(lambda: PAGES, fin_agent_id=FIN)


def ask(fin: RetrievalAnswerer, *messages: dict[str, Any], **conv: Any) -> Any:
    return fin.answer(conversation(**conv), list(messages), USER)


@pytest.mark.parametrize(
    ("question", "expected_text", "url", "title"),
    [
        (
            "<p>How do I reset my password?</p>",
            "To reset your password, open Settings",
            "https://help.example.com/articles/reset-password",
            "Resetting your password",
        ),
        (
            "When will I get my refund after cancelling?",
            "Refunds are issued to the original card",
            "https://help.example.com/articles/refunds",
            "Refunds and billing",
        ),
        (
            "where can I download my invoices",
            "Invoices can be downloaded as PDF",
            "https://help.example.com/articles/refunds",
            "Refunds and billing",
        ),
        (
            "I lost my phone, how do I sign in?",
            "Recovery codes let you sign in",
            "https://help.example.com/articles/reset-password",
            "Resetting your password",
        ),
        (
            "How long does express shipping take?",
            "Express shipping arrives the next day.",
            "https://help.example.com/articles/shipping",
            "Shipping",
        ),
    ],
)
def test_answers_with_the_best_passage_and_cites_the_page(
    fin: RetrievalAnswerer, question: str, expected_text: str, url: str, title: str
) -> None:
    decision = ask(fin, user_msg(question))
    assert decision.hand_over is False
    assert decision.reply_html is not None
    assert expected_text in decision.reply_html
    assert decision.reply_html.endswith(f'<p>Source: <a href="{url}">{title}</a></p>')
    # Only the best passage is quoted, not the whole library.
    others = [p.title for p in PAGES if p.title != title]
    assert not any(f">{other}<" in decision.reply_html for other in others)


def test_a_list_is_quoted_as_a_list(fin: RetrievalAnswerer) -> None:
    decision = ask(fin, user_msg("how many days does standard shipping take"))
    assert decision.reply_html is not None
    assert decision.reply_html.startswith(
        "<ul><li>Standard shipping takes 3-5 days.</li>"
        "<li>Express shipping arrives the next day.</li></ul>"
    )


def test_a_page_without_url_is_quoted_but_not_cited(fin: RetrievalAnswerer) -> None:
    decision = ask(fin, user_msg("What are your office hours?"))
    assert decision.hand_over is False
    assert decision.reply_html == (
        "<p>Our office hours are Monday to Friday, 9am to 5pm Central European Time.</p>"
    )
    assert decision.attributes["fin_source_url"] is None


def test_quoted_page_text_is_escaped_and_scripts_are_not_quoted(fin: RetrievalAnswerer) -> None:
    decision = ask(fin, user_msg("How do I embed the chat widget?"))
    html = decision.reply_html
    assert html is not None
    assert "&lt;script src=" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html and "<img" not in html
    assert "injected" not in html  # a <script> element's content is not page text


def test_a_hostile_title_and_url_are_escaped_in_the_citation() -> None:
    page = ContentPage(
        id=9,
        title='<img src=x onerror="alert(1)">Tips',
        url='https://help.example.com/a?x="><script>alert(1)</script>',
        html="<p>Gardening tips: water tomatoes every morning.</p>",
    )
    decision = RetrievalAnswerer([page]).answer(
        conversation(), [user_msg("how often should I water tomatoes")], USER
    )
    html = decision.reply_html
    assert html is not None
    assert "<img" not in html and "<script" not in html
    assert 'href="https://help.example.com/a?x=&quot;&gt;&lt;script&gt;' in html


def test_a_non_http_url_is_not_cited() -> None:
    page = ContentPage(id=1, title="T", url="javascript:alert(1)", html="<p>Tomatoes need sun.</p>")
    decision = RetrievalAnswerer([page]).answer(
        conversation(), [user_msg("do tomatoes need sun")], USER
    )
    assert decision.reply_html == "<p>Tomatoes need sun.</p>"


@pytest.mark.parametrize(
    "question",
    ["What's the weather in Paris tomorrow?", "Who won the football match yesterday?"],
)
def test_off_topic_questions_are_handed_over(fin: RetrievalAnswerer, question: str) -> None:
    decision = ask(fin, user_msg(question))
    assert decision.hand_over is True
    assert decision.reply_html == f"<p>{HANDOVER_TEXT}</p>"
    assert decision.attributes["fin_resolution"] == "handed_over"
    assert decision.attributes["fin_handover_reason"] == "no_match"


def test_a_weak_match_is_not_answered_and_asks_to_rephrase(fin: RetrievalAnswerer) -> None:
    # "settings" occurs in the library, but most of the question does not.
    decision = ask(fin, user_msg("Can I change the language settings of the mobile keyboard?"))
    assert decision.hand_over is False
    assert decision.reply_html is not None
    assert decision.reply_html.startswith(f"<p>{FALLBACK_PREFIX}")
    assert "Source:" not in decision.reply_html
    assert decision.attributes["fin_resolution"] == "unanswered"
    assert "fin-unanswered" in decision.tags


def test_min_coverage_is_configurable() -> None:
    strict = RetrievalAnswerer(PAGES, min_coverage=1.01)
    decision = strict.answer(conversation(), [user_msg("How do I reset my password?")], USER)
    assert decision.reply_html is not None
    assert "reset your password" not in decision.reply_html


def test_a_bare_agent_message_hands_over(fin: RetrievalAnswerer) -> None:
    decision = ask(fin, user_msg("How do I reset my password?"), user_msg("<p>AGENT</p>"))
    assert decision.hand_over is True
    assert decision.attributes["fin_handover_reason"] == "human_requested"


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a human?",
        "speak to someone please",
        "Agent please",
        "Agent!",
        "I want a real person!",
        "Let me speak with a representative",
        "<p>Please connect me with <b>support</b></p>",
        "Is there a live agent available?",
        "I'd like to talk to somebody",
        "Human, please",
    ],
)
def test_asking_for_a_human_hands_over(fin: RetrievalAnswerer, text: str) -> None:
    # Even on a topic Fin could answer, and whether in the same message or the next one.
    decision = ask(fin, user_msg(f"How do I reset my password? {text}"))
    assert decision.hand_over is True
    decision = ask(fin, user_msg("How do I reset my password?"), user_msg(text))
    assert decision.hand_over is True
    assert decision.reply_html == f"<p>{HANDOVER_TEXT}</p>"
    assert decision.attributes["fin_handover_reason"] == "human_requested"
    assert "handed-over" in decision.tags


@pytest.mark.parametrize(
    "text",
    [
        "How do I reset my password?",
        "Is the export human-readable?",
        "Where are the agent settings?",
        "Someone charged my card twice",
    ],
)
def test_ordinary_questions_are_not_human_requests(text: str) -> None:
    assert asks_for_human(text) is False


def test_hands_over_after_n_unanswered_turns(fin: RetrievalAnswerer) -> None:
    first = user_msg("Can I change the language settings of the mobile keyboard?")
    d1 = ask(fin, first)
    assert d1.hand_over is False and d1.reply_html is not None
    second = user_msg("The keyboard language settings on my tablet?")
    d2 = ask(fin, first, agent_msg(d1.reply_html), second)
    assert d2.hand_over is True
    assert d2.attributes["fin_handover_reason"] == "unanswered_turns"


def test_unanswered_turns_are_counted_when_only_new_messages_are_given(
    fin: RetrievalAnswerer,
) -> None:
    d1 = ask(fin, user_msg("Can I change the language settings of the mobile keyboard?"))
    assert d1.hand_over is False
    assert d1.attributes["fin_unanswered_turns"] == 1
    second = user_msg("The keyboard language settings on my tablet?")
    d2 = ask(fin, second, attributes=d1.attributes)
    assert d2.hand_over is True
    assert d2.attributes["fin_handover_reason"] == "unanswered_turns"
    # A human agent's reply in between voids the stored streak.
    human = agent_msg("<p>Which tablet is it?</p>", agent_id="human-7")
    d3 = ask(fin, human, second, attributes=d1.attributes)
    assert d3.hand_over is False


def test_an_answer_in_between_resets_the_unanswered_streak(fin: RetrievalAnswerer) -> None:
    weak = "Can I change the language settings of the mobile keyboard?"
    history = [
        user_msg(weak),
        agent_msg(f"<p>{FALLBACK_PREFIX} in our help content.</p>"),
        user_msg("How do I reset my password?"),
        agent_msg("<p>To reset your password, open Settings...</p>"),
        user_msg(weak),
    ]
    decision = ask(fin, *history)
    assert decision.hand_over is False
    assert decision.attributes["fin_resolution"] == "unanswered"


def test_unanswered_turn_limit_is_configurable() -> None:
    weak = [user_msg("Can I change the language settings of the mobile keyboard?")]
    one = RetrievalAnswerer(PAGES, fin_agent_id=FIN, max_unanswered_turns=1)
    assert one.answer(conversation(), weak, USER).hand_over is True
    history = [
        weak[0],
        agent_msg(f"<p>{FALLBACK_PREFIX} in our help content.</p>"),
        user_msg("And the keyboard language settings on my tablet?"),
    ]
    three = RetrievalAnswerer(PAGES, fin_agent_id=FIN, max_unanswered_turns=3)
    assert three.answer(conversation(), history, USER).hand_over is False
    history += [
        agent_msg(f"<p>{FALLBACK_PREFIX} in our help content.</p>"),
        user_msg("The mobile keyboard settings language then?"),
    ]
    assert three.answer(conversation(), history, USER).hand_over is True


def test_only_new_end_user_messages_are_the_question(fin: RetrievalAnswerer) -> None:
    history = [
        user_msg("How do I reset my password?"),
        agent_msg("<p>To reset your password, open Settings...</p>"),
        agent_msg("<p>Did you mean refunds?</p>", visibility="private"),
        agent_msg("<p>refunds refunds refunds</p>", agent_id="human-7", visibility="private"),
        user_msg("refunds note", visibility="private"),
        user_msg("Thanks! And how long does express shipping take?"),
    ]
    decision = ask(fin, *history)
    assert decision.reply_html is not None
    assert "Express shipping" in decision.reply_html
    assert decision.attributes["fin_source_url"] == "https://help.example.com/articles/shipping"


def test_nothing_new_from_the_end_user_means_no_reply(fin: RetrievalAnswerer) -> None:
    history = [
        user_msg("How do I reset my password?"),
        agent_msg("<p>To reset your password...</p>"),
        user_msg("talk to a human please", visibility="private"),
    ]
    decision = ask(fin, *history, tags=["vip"])
    assert decision.reply_html is None
    assert decision.hand_over is False
    assert decision.tags == ["vip"]


def test_title_tags_and_attributes_when_answering(fin: RetrievalAnswerer) -> None:
    decision = ask(
        fin,
        user_msg("<p>  How do I\n reset my   <b>password</b>?</p>"),
        tags=["vip", "handed-over"],
    )
    assert decision.title == "How do I reset my password?"
    assert decision.tags == ["vip", "fin-answered", "reset-password"]
    assert decision.attributes == {
        "fin_resolution": "answered",
        "fin_unanswered_turns": None,
        "fin_handover_reason": None,
        "fin_source_url": "https://help.example.com/articles/reset-password",
        "fin_source_title": "Resetting your password",
        "issue_type": "Account",
    }


def test_title_tags_and_attributes_when_handing_over(fin: RetrievalAnswerer) -> None:
    decision = ask(fin, user_msg("I need to speak to a human"), tags=["fin-answered"])
    assert decision.title == "I need to speak to a human"
    assert decision.tags == ["handed-over"]
    assert decision.attributes == {
        "fin_resolution": "handed_over",
        "fin_unanswered_turns": None,
        "fin_handover_reason": "human_requested",
        "fin_source_url": None,
        "fin_source_title": None,
    }


def test_fin_detects_the_issue_type_and_tags_a_handover_with_it(fin: RetrievalAnswerer) -> None:
    """Intercom's Fin attributes: what the conversation is about, for the helpdesk's routing."""
    billing = ask(fin, user_msg("I was charged twice, I want a refund. Let me talk to a human"))
    assert billing.hand_over is True
    assert billing.attributes["issue_type"] == "Billing"
    assert billing.tags == ["handed-over", "billing"]
    # Detected once and kept: a later message about something else does not change it.
    kept = ask(
        fin,
        user_msg("And my password no longer works, human please"),
        tags=["billing"],
        attributes={"issue_type": "Billing"},
    )
    assert "issue_type" not in kept.attributes
    assert kept.tags == ["billing", "handed-over"]
    # Nothing in the words names a type: no attribute and no tag.
    vague = ask(fin, user_msg("I need to speak to a human"))
    assert "issue_type" not in vague.attributes
    assert vague.tags == ["handed-over"]
    assert issue_type_of(["Where is my parcel? The tracking shows nothing"]) == "Shipping"
    assert issue_type_of(["hello there"]) is None


def test_title_is_trimmed_and_an_existing_title_is_kept(fin: RetrievalAnswerer) -> None:
    long = "How do I reset my password " + "because I really cannot remember it " * 5
    decision = ask(fin, user_msg(long))
    assert decision.title is not None
    assert len(decision.title) <= 80
    assert decision.title.startswith("How do I reset my password because")
    assert decision.title.endswith("…")
    kept = ask(fin, user_msg(long), title="Password trouble")
    assert kept.title == "Password trouble"


def test_passages_come_from_blocks_with_headings_as_context() -> None:
    passages = split_passages(PAGES[0])
    assert [p.text for p in passages] == [
        "To reset your password, open Settings, choose Security and click Send reset link. "
        "The link expires after 30 minutes.",
        "Lost your phone? Recovery codes let you sign in without the authenticator app.",
    ]
    assert passages[1].heading == "Two-factor authentication"


def test_pages_are_read_on_every_run() -> None:
    library: list[ContentPage] = []
    fin = RetrievalAnswerer(lambda: library)
    question = [user_msg("How long does express shipping take?")]
    assert fin.answer(conversation(), question, USER).hand_over is True
    library.append(PAGES[2])
    decision = fin.answer(conversation(), question, USER)
    assert decision.hand_over is False
    assert decision.reply_html is not None and "Express shipping" in decision.reply_html


def test_answers_from_a_real_content_store(tmp_path: Path) -> None:
    store = ContentStore(f"sqlite:///{tmp_path / 'content.db'}")
    try:
        active = store.create_source("https://help.example.com", "api", "active")
        inactive = store.create_source("https://old.example.com", "api", "deactivated")
        common = {"locale": "en", "ai_copilot_availability": True}
        store.upsert_page(
            source_id=active.id,
            external_id="refunds",
            title="Refunds",
            html="<p>Refunds are issued within 5 business days.</p>",
            url="https://help.example.com/refunds",
            ai_agent_availability=True,
            **common,
        )
        store.upsert_page(
            source_id=active.id,
            external_id="pets",
            title="Pets",
            html="<p>Parrots may travel in the cabin.</p>",
            url="https://help.example.com/pets",
            ai_agent_availability=False,
            **common,
        )
        store.upsert_page(
            source_id=inactive.id,
            external_id="old-pets",
            title="Old pets",
            html="<p>Parrots may travel in the cabin.</p>",
            url="https://old.example.com/pets",
            ai_agent_availability=True,
            **common,
        )
        fin = RetrievalAnswerer(store.pages, fin_agent_id=FIN)
        answered = fin.answer(conversation(), [user_msg("When are refunds issued?")], USER)
        assert answered.reply_html == (
            "<p>Refunds are issued within 5 business days.</p>"
            '<p>Source: <a href="https://help.example.com/refunds">Refunds</a></p>'
        )
        assert answered.tags == ["fin-answered", "refunds"]
        # Pages Fin may not use (unavailable, or from a deactivated source) are not answered from.
        parrots = fin.answer(conversation(), [user_msg("Can parrots travel in the cabin?")], USER)
        assert parrots.hand_over is True
    finally:
        store.dispose()


def test_a_thank_you_after_an_answer_resolves_the_conversation(fin: RetrievalAnswerer) -> None:
    question = user_msg("How do I reset my password?")
    answer = ask(fin, question)
    assert answer.attributes["fin_resolution"] == "answered" and answer.status is None
    thanks = user_msg("<p>Thanks, that helped!</p>")
    after = ask(fin, question, agent_msg(answer.reply_html), thanks,
                attributes=answer.attributes, tags=answer.tags)  # fmt: skip
    assert after.status == "resolved" and after.hand_over is False
    assert after.attributes["fin_resolution"] == "resolved"
    assert "fin-resolved" in after.tags and "fin-answered" not in after.tags
    assert "Glad I could help" in after.reply_html


@pytest.mark.parametrize(
    "text", ["thanks, but it did not work", "Thanks! And how do I get a refund?", "no"]
)
def test_a_thank_you_with_more_to_it_is_not_a_resolution(fin: RetrievalAnswerer, text: str) -> None:
    question = user_msg("How do I reset my password?")
    answer = ask(fin, question)
    after = ask(fin, question, agent_msg(answer.reply_html), user_msg(text),
                attributes=answer.attributes)  # fmt: skip
    assert after.status is None


def test_a_thank_you_for_no_answer_is_not_a_resolution(fin: RetrievalAnswerer) -> None:
    assert ask(fin, user_msg("thank you")).status is None
