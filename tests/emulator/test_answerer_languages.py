"""The answerer in the end user's language: translated articles answer, cite and speak German;
French without French content falls back to English content with French phrases; English as
before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from content_api_server import TOKEN, ServedApp

from findesk.emulator.answerer import (
    FALLBACK_PREFIX,
    HANDOVER_TEXT,
    PHRASES,
    PageLike,
    RetrievalAnswerer,
    detect_language,
)
from findesk.emulator.articles_api import articles_of
from findesk.emulator.content_api import create_content_api, store_of

FIN = "fin-1"
HELP = "http://help.test/help"
REFUNDS_EN = "https://help.example.com/refunds"


def user_msg(body: str, mid: str = "m1") -> dict[str, Any]:
    return {
        "id": mid,
        "author": {"id": "u1", "user_type": "end_user"},
        "body": body,
        "visibility": "public",
    }


def fin_msg(body: str, mid: str) -> dict[str, Any]:
    return {"id": mid, "author": {"id": FIN, "user_type": "agent"}, "body": body}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """The emulator's content library: English external pages, and a refunds article with a
    published German and a draft Spanish translation, both written through the Articles API."""
    db = tmp_path_factory.mktemp("languages") / "content.db"
    app = create_content_api(
        f"sqlite:///{db}", [TOKEN], 100_000, 10, articles={"help_center_url": HELP}
    )
    served = ServedApp(app)
    with served.client() as api:
        source = api.post(
            "/ai/content_import_sources",
            json={"url": "https://help.example.com", "sync_behavior": "api"},
        ).json()
        for external_id, title, html in [
            (
                "refunds",
                "Refunds",
                "<p>Refunds are paid back to the original card within 5 days.</p>",
            ),
            (
                "export",
                "Exporting data",
                "<p>Go to Settings, then Export, and choose CSV or JSON to get everything.</p>",
            ),
        ]:
            page = api.post(
                "/ai/external_pages",
                json={
                    "title": title,
                    "html": html,
                    "url": f"https://help.example.com/{external_id}",
                    "locale": "en",
                    "source_id": source["id"],
                    "external_id": external_id,
                    "ai_agent_availability": True,
                    "ai_copilot_availability": False,
                },
            )
            assert page.status_code == 200, page.text
        article = api.post(
            "/articles",
            json={
                "title": "Refunds (help centre)",
                "author_id": 1,
                "body": "<p>Refund requests are reviewed by our billing team.</p>",
                "state": "draft",
                "translated_content": {
                    "de": {
                        "title": "Rückerstattungen",
                        "body": "<h2>Dauer</h2><p>Rückerstattungen werden innerhalb von 5 "
                        "Werktagen auf die ursprüngliche Karte zurückgezahlt.</p>",
                        "state": "published",
                    },
                    "es": {
                        "title": "Reembolsos",
                        "body": "<p>Los reembolsos tardan 5 días hábiles.</p>",
                        "state": "draft",
                    },
                },
            },
        )
        assert article.status_code == 200, article.text
    yield served
    served.stop()


@pytest.fixture
def answerer(library: ServedApp) -> RetrievalAnswerer:
    def pages() -> list[PageLike]:
        return [*store_of(library.app).pages(), *articles_of(library.app).published_pages()]

    return RetrievalAnswerer(pages, fin_agent_id=FIN)


def german_url(library: ServedApp) -> str:
    [page] = [p for p in articles_of(library.app).published_pages() if p.locale == "de"]
    assert page.url is not None
    return page.url


def test_a_german_question_is_answered_from_the_german_translation(
    answerer: RetrievalAnswerer, library: ServedApp
) -> None:
    decision = answerer.answer({}, [user_msg("<p>Wie lange dauert eine Rückerstattung?</p>")], {})
    assert decision.reply_html is not None and not decision.hand_over
    url = german_url(library)
    assert url.startswith(f"{HELP}/de/articles/")
    assert decision.reply_html == (
        "<p>Rückerstattungen werden innerhalb von 5 Werktagen auf die ursprüngliche Karte "
        f'zurückgezahlt.</p><p>Quelle: <a href="{url}">Rückerstattungen</a></p>'
    )
    assert decision.attributes["fin_source_url"] == url
    assert decision.attributes["fin_source_title"] == "Rückerstattungen"
    # Typed without umlauts, plural and another verb form: still the German article.
    again = answerer.answer({}, [user_msg("<p>Wann werden Rueckerstattungen gezahlt?</p>")], {})
    assert again.reply_html is not None and "Quelle:" in again.reply_html


def test_a_locale_from_the_helpdesk_wins_over_detection(answerer: RetrievalAnswerer) -> None:
    # No German function word, no umlaut: nothing to detect; the user's locale says German.
    question = [user_msg("<p>Rueckerstattung Karte?</p>")]
    assert detect_language("Rueckerstattung Karte?") is None
    assert answerer.answer({}, question, {}).reply_html == f"<p>{HANDOVER_TEXT}</p>"
    decision = answerer.answer({}, question, {"attributes": {"locale": "de-AT"}})
    assert decision.reply_html is not None and "Quelle:" in decision.reply_html
    # The conversation's own locale comes before the user's.
    english = answerer.answer(
        {"attributes": {"language_override": "en"}}, question, {"attributes": {"locale": "de"}}
    )
    assert english.reply_html == f"<p>{HANDOVER_TEXT}</p>"


def test_german_fixed_phrases(answerer: RetrievalAnswerer) -> None:
    unanswered = answerer.answer(
        {}, [user_msg("<p>Kann ich die Rückerstattung in Bitcoin oder Aktien bekommen?</p>")], {}
    )
    assert unanswered.reply_html is not None
    assert unanswered.reply_html.startswith(f"<p>{PHRASES['de'].fallback_prefix}")
    assert not unanswered.hand_over and "Quelle" not in unanswered.reply_html
    # The German fallback counts as an unanswered turn: the second one hands over, in German.
    second = answerer.answer(
        {},
        [
            user_msg("<p>Kann ich die Rückerstattung in Bitcoin oder Aktien bekommen?</p>", "m1"),
            fin_msg(unanswered.reply_html, "m2"),
            user_msg("<p>Und die Rückerstattung in Gold, Silber oder Aktien?</p>", "m3"),
        ],
        {},
    )
    assert second.hand_over
    assert second.reply_html == "<p>Ich verbinde Sie mit einem Teammitglied.</p>"
    assert second.attributes["fin_handover_reason"] == "unanswered_turns"
    human = answerer.answer({}, [user_msg("<p>Ich möchte mit einem Menschen sprechen.</p>")], {})
    assert human.hand_over and human.attributes["fin_handover_reason"] == "human_requested"
    assert human.reply_html == "<p>Ich verbinde Sie mit einem Teammitglied.</p>"


def test_french_without_french_content_falls_back_to_english_content(
    answerer: RetrievalAnswerer,
) -> None:
    decision = answerer.answer(
        {}, [user_msg("<p>Comment exporter mes données en CSV ou JSON ?</p>")], {}
    )
    assert decision.reply_html is not None and not decision.hand_over
    # The English passage (nothing else to quote), framed and cited in French.
    assert decision.reply_html == (
        "<p>Go to Settings, then Export, and choose CSV or JSON to get everything.</p>"
        '<p>Source : <a href="https://help.example.com/export">Exporting data</a></p>'
    )
    nothing = answerer.answer({}, [user_msg("<p>Où est mon colis ?</p>")], {})
    assert nothing.hand_over
    assert nothing.reply_html == f"<p>{PHRASES['fr'].handover}</p>"


def test_a_draft_translation_is_not_used(answerer: RetrievalAnswerer) -> None:
    # Spanish content exists only as a draft: Spanish falls back to English content.
    decision = answerer.answer({}, [user_msg("<p>¿Cuánto tardan los reembolsos?</p>")], {})
    assert decision.reply_html is not None
    assert "días hábiles" not in decision.reply_html


def test_english_is_unchanged(answerer: RetrievalAnswerer) -> None:
    decision = answerer.answer(
        {}, [user_msg("<p>How long do refunds take to reach my card?</p>")], {}
    )
    assert decision.reply_html == (
        "<p>Refunds are paid back to the original card within 5 days.</p>"
        f'<p>Source: <a href="{REFUNDS_EN}">Refunds</a></p>'
    )
    unanswered = answerer.answer({}, [user_msg("<p>Is the refund card policy for SSO?</p>")], {})
    assert unanswered.reply_html is not None
    human = answerer.answer({}, [user_msg("<p>I want to talk to a human</p>")], {})
    assert human.reply_html == f"<p>{HANDOVER_TEXT}</p>"
    assert FALLBACK_PREFIX == PHRASES["en"].fallback_prefix


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How long do refunds take to reach my card?", "en"),
        ("Wie lange dauert eine Rückerstattung?", "de"),
        ("Combien de temps prend un remboursement ?", "fr"),
        ("¿Cuánto tarda un reembolso?", "es"),
        ("Hoe lang duurt een terugbetaling?", "nl"),
        ("Quanto tempo ci vuole per un rimborso?", "it"),
        ("Quanto tempo demora um reembolso? Obrigado", "pt"),
        ("Do you ship to Germany?", "en"),
        ("refund status", None),
        ("Die cast parts?", None),
        ("Rückerstattung?", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_the_help_centre_serves_published_translations(tmp_path: Any) -> None:
    """The cited URL opens: the emulator's help centre page for that locale."""
    from fastapi import FastAPI

    from findesk.emulator.articles_api import help_center_router

    content = create_content_api(f"sqlite:///{tmp_path / 'c.db'}", [TOKEN])
    outer = FastAPI()
    outer.include_router(help_center_router(articles_of(content)))
    outer.mount("/", content)
    served = ServedApp(outer)
    try:
        base = served.base_url
        articles_of(content).help_center_url = f"{base}/help"
        with served.client() as api:
            article = api.post(
                "/articles",
                json={
                    "title": "Draft",
                    "author_id": 1,
                    "translated_content": {
                        "de": {
                            "title": "Grüße",
                            "body": "<p>Hallo<script>alert(1)</script></p>",
                            "state": "published",
                        }
                    },
                },
            ).json()
        with httpx.Client(timeout=10) as browser:
            page = browser.get(article["translated_content"]["de"]["url"])
            assert page.status_code == 200
            assert '<html lang="de">' in page.text and "Grüße" in page.text
            assert "<p>Hallo</p>" in page.text and "<script" not in page.text
            assert browser.get(article["url"]).status_code == 404  # English is a draft
            assert browser.get(f"{base}/help/de/articles/999-nope").status_code == 404
    finally:
        served.stop()
