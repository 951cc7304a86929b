"""The AI Content API emulator, over HTTP as a client of Intercom's API would call it."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from content_api_server import OTHER_TOKEN, TOKEN, ServedApp

from findesk.emulator.content_api import RateLimiter, create_content_api


def new_source(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"url": f"https://docs-{uuid.uuid4().hex[:8]}.example.com", "sync_behavior": "api"}
    response = api.post("/ai/content_import_sources", json={**body, **fields})
    assert response.status_code == 200, response.text
    return dict(response.json())


def page_body(source_id: int, external_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "title": f"Page {external_id}",
        "html": f"<p>About {external_id}</p>",
        "url": f"https://docs.example.com/{external_id}",
        "locale": "en",
        "source_id": source_id,
        "external_id": external_id,
        "ai_agent_availability": True,
        "ai_copilot_availability": False,
        **fields,
    }


def all_pages(api: httpx.Client) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    page = 1
    while True:
        response = api.get("/ai/external_pages", params={"page": page, "per_page": 150})
        assert response.status_code == 200
        body = response.json()
        pages.extend(body["data"])
        if page >= body["pages"]["total_pages"]:
            return pages
        page += 1


def assert_error(
    response: httpx.Response, status: int, code: str, field: str | None = None
) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error.list"
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    [error] = body["errors"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error.get("field") == field


# --- auth and version ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer nope",
        "Basic dGVzdC10b2tlbi0xOg==",
        "Bearer",
        f"Token {TOKEN}",
        f"Bearer {TOKEN}x",
    ],
)
def test_requests_without_a_valid_token_are_refused(
    emulator: ServedApp, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with emulator.client(token=None, **headers) as client:
        for method, path in [
            ("GET", "/ai/content_import_sources"),
            ("POST", "/ai/external_pages"),
            ("DELETE", "/ai/external_pages/1"),
            ("GET", "/no/such/route"),
        ]:
            response = client.request(method, path, json={})
            assert_error(response, 401, "unauthorized")
            assert response.json()["errors"][0]["message"] == "Access Token Invalid"
            assert "X-RateLimit-Remaining" not in response.headers


def test_every_configured_token_is_accepted(emulator: ServedApp) -> None:
    for token in (TOKEN, OTHER_TOKEN):
        with emulator.client(token) as client:
            assert client.get("/ai/content_import_sources").status_code == 200


def test_intercom_version_defaults_and_unsupported_is_refused(emulator: ServedApp) -> None:
    with emulator.client() as client:
        del client.headers["Intercom-Version"]
        assert client.get("/ai/external_pages").status_code == 200
        for version in ("2.11", "Unstable", "1.0"):
            response = client.get("/ai/external_pages", headers={"Intercom-Version": version})
            assert response.status_code == 200
        response = client.get("/ai/external_pages", headers={"Intercom-Version": "9.9"})
        assert_error(response, 400, "intercom_version_invalid")


# --- content import sources ---------------------------------------------------------------------


def test_source_lifecycle(api: httpx.Client) -> None:
    before = int(time.time())
    source = new_source(api, url="https://help.example.com")
    assert source["type"] == "content_import_source"
    assert isinstance(source["id"], int)
    assert source["url"] == "https://help.example.com"
    assert source["sync_behavior"] == "api"
    assert source["status"] == "active"
    for stamp in ("created_at", "updated_at", "last_synced_at"):
        assert isinstance(source[stamp], int) and before <= source[stamp] <= time.time() + 1

    got = api.get(f"/ai/content_import_sources/{source['id']}")
    assert got.status_code == 200 and got.json() == source

    listed = api.get("/ai/content_import_sources", params={"per_page": 150}).json()
    assert listed["type"] == "list"
    assert listed["total_count"] >= 1 and listed["pages"]["type"] == "pages"
    assert source["id"] in [s["id"] for s in listed["data"]]

    updated = api.put(
        f"/ai/content_import_sources/{source['id']}",
        json={"url": "https://help2.example.com", "sync_behavior": "api", "status": "deactivated"},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["url"] == "https://help2.example.com"
    assert updated.json()["status"] == "deactivated"
    assert updated.json()["id"] == source["id"]

    deleted = api.delete(f"/ai/content_import_sources/{source['id']}")
    assert deleted.status_code == 200 and deleted.content == b""
    assert_error(api.get(f"/ai/content_import_sources/{source['id']}"), 404, "not_found")
    assert_error(api.delete(f"/ai/content_import_sources/{source['id']}"), 404, "not_found")


@pytest.mark.parametrize("sync_behavior", ["api", "automatic", "manual"])
def test_source_sync_behaviors(api: httpx.Client, sync_behavior: str) -> None:
    assert new_source(api, sync_behavior=sync_behavior)["sync_behavior"] == sync_behavior


def test_source_sync_behavior_cannot_change_to_or_from_api(api: httpx.Client) -> None:
    source = new_source(api)
    response = api.put(
        f"/ai/content_import_sources/{source['id']}",
        json={"url": source["url"], "sync_behavior": "manual"},
    )
    assert_error(response, 400, "parameter_invalid", "sync_behavior")
    manual = new_source(api, sync_behavior="manual")
    response = api.put(
        f"/ai/content_import_sources/{manual['id']}",
        json={"url": "https://elsewhere.example.com", "sync_behavior": "manual"},
    )
    assert_error(response, 400, "parameter_invalid", "url")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"sync_behavior": "api"}, "parameter_not_found", "url"),
        ({"url": "https://x.example.com"}, "parameter_not_found", "sync_behavior"),
        ({"url": "not a url", "sync_behavior": "api"}, "parameter_invalid", "url"),
        ({"url": 12, "sync_behavior": "api"}, "parameter_invalid", "url"),
        ({"url": "https://x.example.com", "sync_behavior": "sometimes"}, "parameter_invalid",
         "sync_behavior"),
        ({"url": "https://x.example.com", "sync_behavior": "api", "status": "paused"},
         "parameter_invalid", "status"),
    ],
)  # fmt: skip
def test_source_validation(api: httpx.Client, body: dict[str, Any], code: str, field: str) -> None:
    assert_error(api.post("/ai/content_import_sources", json=body), 400, code, field)


def test_bodies_must_be_json_objects(api: httpx.Client) -> None:
    for content in (b"", b"not json", b"[1, 2]", b'"text"'):
        response = api.post(
            "/ai/external_pages", content=content, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "bad_request")


# --- external pages -----------------------------------------------------------------------------


def test_upsert_by_source_and_external_id(emulator: ServedApp, api: httpx.Client) -> None:
    source = new_source(api)
    created = api.post("/ai/external_pages", json=page_body(source["id"], "refunds"))
    assert created.status_code == 200, created.text
    page = created.json()
    assert page["type"] == "external_page"
    assert isinstance(page["id"], str) and page["id"].isdigit()
    assert page["source_id"] == source["id"] and isinstance(page["source_id"], int)
    assert page["external_id"] == "refunds"
    assert page["locale"] == "en"
    assert page["title"] == "Page refunds"
    assert page["url"] == "https://docs.example.com/refunds"
    assert (page["ai_agent_availability"], page["ai_copilot_availability"]) == (True, False)
    for stamp in ("created_at", "updated_at", "last_ingested_at"):
        assert isinstance(page[stamp], int)

    again = api.post(
        "/ai/external_pages",
        json=page_body(
            source["id"],
            "refunds",
            title="Refunds, revised",
            html="<p>Within 30 days</p>",
            url="https://docs.example.com/refunds-v2",
            ai_agent_availability=False,
            ai_copilot_availability=True,
        ),
    )
    assert again.status_code == 200, again.text
    updated = again.json()
    assert updated["id"] == page["id"]
    assert updated["created_at"] == page["created_at"]
    assert updated["title"] == "Refunds, revised"
    assert updated["html"] == "<p>Within 30 days</p>"
    assert updated["url"] == "https://docs.example.com/refunds-v2"
    assert (updated["ai_agent_availability"], updated["ai_copilot_availability"]) == (False, True)
    assert api.get(f"/ai/external_pages/{page['id']}").json() == updated
    assert [p for p in all_pages(api) if p["source_id"] == source["id"]] == [updated]

    # The same external id in another source is another page.
    other = new_source(api)
    elsewhere = api.post("/ai/external_pages", json=page_body(other["id"], "refunds")).json()
    assert elsewhere["id"] != page["id"]


def test_availability_flags_are_stored_and_feed_the_answerer(
    emulator: ServedApp, api: httpx.Client
) -> None:
    source = new_source(api)
    flags = {"both": (True, True), "agent": (True, False), "copilot": (False, True)}
    ids = {}
    for name, (agent, copilot) in flags.items():
        body = page_body(
            source["id"], name, ai_agent_availability=agent, ai_copilot_availability=copilot
        )
        ids[name] = int(api.post("/ai/external_pages", json=body).json()["id"])
    for name, (agent, copilot) in flags.items():
        got = api.get(f"/ai/external_pages/{ids[name]}").json()
        assert (got["ai_agent_availability"], got["ai_copilot_availability"]) == (agent, copilot)

    answerable = {p.id: p for p in emulator.store.pages()}
    assert ids["both"] in answerable and ids["agent"] in answerable
    assert ids["copilot"] not in answerable
    assert answerable[ids["agent"]].title == "Page agent"
    assert answerable[ids["agent"]].html == "<p>About agent</p>"
    assert answerable[ids["agent"]].url == "https://docs.example.com/agent"

    # A deactivated source's pages are not answered from.
    api.put(
        f"/ai/content_import_sources/{source['id']}",
        json={"url": source["url"], "sync_behavior": "api", "status": "deactivated"},
    ).raise_for_status()
    assert not set(ids.values()) & {p.id for p in emulator.store.pages()}


def test_page_without_url_is_stored_with_null_url(api: httpx.Client) -> None:
    source = new_source(api)
    body = page_body(source["id"], "no-url")
    del body["url"]
    response = api.post("/ai/external_pages", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["url"] is None


@pytest.mark.parametrize("locale", ["fr", "en-GB", "EN", "", 1])
def test_non_english_locale_is_refused(api: httpx.Client, locale: Any) -> None:
    source = new_source(api)
    response = api.post("/ai/external_pages", json=page_body(source["id"], "x", locale=locale))
    assert_error(response, 400, "parameter_invalid", "locale")
    assert not [p for p in all_pages(api) if p["source_id"] == source["id"]]


@pytest.mark.parametrize(
    "field",
    ["title", "html", "locale", "source_id", "external_id", "ai_agent_availability",
     "ai_copilot_availability"],
)  # fmt: skip
def test_page_required_fields(api: httpx.Client, field: str) -> None:
    source = new_source(api)
    body = page_body(source["id"], "req")
    del body[field]
    assert_error(api.post("/ai/external_pages", json=body), 400, "parameter_not_found", field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "   "),
        ("title", 5),
        ("html", ["<p>"]),
        ("url", "ftp://docs.example.com/x"),
        ("url", "/relative"),
        ("source_id", "12"),
        ("source_id", True),
        ("source_id", 0),
        ("source_id", 2**70),
        ("external_id", ""),
        ("external_id", 7),
        ("ai_agent_availability", "yes"),
        ("ai_copilot_availability", 1),
    ],
)
def test_page_invalid_fields(api: httpx.Client, field: str, value: Any) -> None:
    source = new_source(api)
    body = {**page_body(source["id"], "bad"), field: value}
    assert_error(api.post("/ai/external_pages", json=body), 400, "parameter_invalid", field)


def test_page_in_unknown_source_is_not_found(api: httpx.Client) -> None:
    response = api.post("/ai/external_pages", json=page_body(987_654_321, "orphan"))
    assert_error(response, 404, "not_found", "source_id")


def test_put_and_delete_page(api: httpx.Client) -> None:
    source = new_source(api)
    page = api.post("/ai/external_pages", json=page_body(source["id"], "a")).json()
    api.post("/ai/external_pages", json=page_body(source["id"], "b")).raise_for_status()
    path = f"/ai/external_pages/{page['id']}"

    put = {
        "title": "A, edited",
        "html": "<p>edited</p>",
        "url": "https://docs.example.com/a2",
        "locale": "en",
        "source_id": source["id"],
    }
    response = api.put(path, json=put)
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["id"] == page["id"] and edited["external_id"] == "a"
    assert edited["title"] == "A, edited" and edited["url"] == "https://docs.example.com/a2"
    # Flags left out of an update keep their values.
    assert (edited["ai_agent_availability"], edited["ai_copilot_availability"]) == (True, False)

    flipped = api.put(path, json={**put, "ai_agent_availability": False}).json()
    assert flipped["ai_agent_availability"] is False and flipped["fin_availability"] is False

    assert_error(api.put(path, json={**put, "external_id": "b"}), 400, "parameter_invalid",
                 "external_id")  # fmt: skip
    other = new_source(api)
    assert_error(api.put(path, json={**put, "source_id": other["id"]}), 400, "parameter_invalid",
                 "source_id")  # fmt: skip
    assert_error(api.put(path, json={**put, "locale": "de"}), 400, "parameter_invalid", "locale")
    no_url = {k: v for k, v in put.items() if k != "url"}
    assert_error(api.put(path, json=no_url), 400, "parameter_not_found", "url")

    deleted = api.delete(path)
    assert deleted.status_code == 200
    assert deleted.json()["id"] == page["id"] and deleted.json()["type"] == "external_page"
    assert_error(api.get(path), 404, "not_found")
    assert_error(api.put(path, json=put), 404, "not_found")
    assert_error(api.delete(path), 404, "not_found")
    # The external id is free again: posting it creates a new page.
    recreated = api.post("/ai/external_pages", json=page_body(source["id"], "a")).json()
    assert recreated["id"] != page["id"]


def test_deleting_a_source_deletes_its_pages(emulator: ServedApp, api: httpx.Client) -> None:
    doomed, kept = new_source(api), new_source(api)
    doomed_ids = [
        api.post("/ai/external_pages", json=page_body(doomed["id"], f"d{i}")).json()["id"]
        for i in range(3)
    ]
    kept_id = api.post("/ai/external_pages", json=page_body(kept["id"], "k")).json()["id"]

    assert api.delete(f"/ai/content_import_sources/{doomed['id']}").status_code == 200
    for page_id in doomed_ids:
        assert_error(api.get(f"/ai/external_pages/{page_id}"), 404, "not_found")
    remaining = {p["id"] for p in all_pages(api)}
    assert not set(doomed_ids) & remaining and kept_id in remaining
    assert not {int(i) for i in doomed_ids} & {p.id for p in emulator.store.pages()}
    # Its id is gone for pages too.
    assert_error(
        api.post("/ai/external_pages", json=page_body(doomed["id"], "late")),
        404,
        "not_found",
        "source_id",
    )


@pytest.mark.parametrize(
    "path",
    [
        "/ai/content_import_sources/999999",
        "/ai/content_import_sources/abc",
        "/ai/content_import_sources/-1",
        "/ai/external_pages/999999",
        "/ai/external_pages/1.5",
        "/ai/nothing_here",
    ],
)
def test_unknown_ids_and_routes_are_not_found(api: httpx.Client, path: str) -> None:
    assert_error(api.get(path), 404, "not_found")


def test_list_paging(api: httpx.Client) -> None:
    source = new_source(api)
    for i in range(5):
        api.post("/ai/external_pages", json=page_body(source["id"], f"p{i}")).raise_for_status()
    first = api.get("/ai/external_pages", params={"per_page": 2}).json()
    assert len(first["data"]) == 2
    assert first["pages"]["per_page"] == 2 and first["pages"]["page"] == 1
    assert first["pages"]["total_pages"] == -(-first["total_count"] // 2)
    ids = [p["id"] for p in all_pages(api)]
    assert len(ids) == len(set(ids)) == first["total_count"]
    for bad in ({"per_page": 0}, {"per_page": 151}, {"page": "x"}):
        assert_error(api.get("/ai/external_pages", params=bad), 400, "parameter_invalid",
                     next(iter(bad)))  # fmt: skip


# --- rate limit ---------------------------------------------------------------------------------


def test_rate_limiter_windows() -> None:
    now = [1000.2]
    limiter = RateLimiter(3, 10, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(4)] == [
        (True, 2, 1010),
        (True, 1, 1010),
        (True, 0, 1010),
        (False, 0, 1010),
    ]
    assert limiter.hit("b") == (True, 2, 1010)  # per token
    now[0] = 1010.0
    assert limiter.hit("a") == (True, 2, 1020)


def test_rate_limit_answers_429_then_recovers_after_reset(limited: ServedApp) -> None:
    with limited.client() as client:
        ok = client.get("/ai/content_import_sources")
        assert ok.headers["X-RateLimit-Limit"] == "5"
        assert int(ok.headers["X-RateLimit-Remaining"]) <= 4
        # At most two windows' worth before the limit shows (the burst may straddle a window).
        for _ in range(11):
            response = client.get("/ai/content_import_sources")
            if response.status_code == 429:
                break
        else:
            pytest.fail("no 429 within 12 requests at 5 per second")
        assert_error(response, 429, "rate_limit_exceeded")
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert response.headers["X-RateLimit-Remaining"] == "0"
        reset = int(response.headers["X-RateLimit-Reset"])
        assert time.time() < reset <= time.time() + 2

        deadline = time.monotonic() + 5
        while True:
            response = client.get("/ai/content_import_sources")
            if response.status_code == 200:
                break
            assert response.status_code == 429
            assert time.monotonic() < deadline, "still limited long after X-RateLimit-Reset"
            time.sleep(0.05)
        assert time.time() >= reset - 0.05  # not let through early
        assert int(response.headers["X-RateLimit-Remaining"]) == 4


def test_unauthenticated_requests_do_not_use_the_allowance(limited: ServedApp) -> None:
    with limited.client(token="wrong") as stranger:
        for _ in range(10):
            assert stranger.get("/ai/external_pages").status_code == 401
    with limited.client() as client:
        assert client.get("/ai/external_pages").status_code == 200


def test_a_client_honouring_reset_gets_a_burst_through_exactly(limited: ServedApp) -> None:
    """Three threads push 12 pages (and rewrite 3 of them) through 5 requests per second."""
    with limited.client() as setup:
        kb = {"url": "https://kb.example.com", "sync_behavior": "api"}
        source_id = send(setup, "POST", "/ai/content_import_sources", kb)["id"]
    writes = [page_body(source_id, f"kb-{i}") for i in range(12)]
    writes += [page_body(source_id, f"kb-{i}", title=f"KB {i} v2") for i in (0, 5, 11)]
    errors: list[BaseException] = []

    def worker(chunk: list[dict[str, Any]]) -> None:
        try:
            with limited.client() as client:
                for body in chunk:
                    send(client, "POST", "/ai/external_pages", body)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    # Updates go after their creates: each thread writes its own external ids, in order.
    chunks: list[list[dict[str, Any]]] = [[], [], []]
    for body in writes:
        chunks[int(body["external_id"].split("-")[1]) % 3].append(body)
    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors

    with limited.client() as client:
        listed = send(client, "GET", "/ai/external_pages?per_page=150", None)
    pages = listed["data"]
    assert listed["total_count"] == 12
    assert sorted(p["external_id"] for p in pages) == sorted(f"kb-{i}" for i in range(12))
    assert len({p["id"] for p in pages}) == 12
    titles = {p["external_id"]: p["title"] for p in pages}
    assert titles["kb-0"] == "KB 0 v2" and titles["kb-5"] == "KB 5 v2"
    assert titles["kb-11"] == "KB 11 v2" and titles["kb-1"] == "Page kb-1"
    assert len(limited.store.pages()) == 12


def send(client: httpx.Client, method: str, path: str, body: Any) -> Any:
    """One call, waiting for X-RateLimit-Reset whenever told to (a bounded number of times)."""
    for _ in range(20):
        response = client.request(method, path, json=body)
        if response.status_code != 429:
            response.raise_for_status()
            return response.json()
        wait = int(response.headers["X-RateLimit-Reset"]) - time.time()
        assert wait <= 2, "reset announced too far ahead"
        time.sleep(max(wait, 0) + 0.01)
    raise AssertionError("rate limited 20 times in a row")


def test_factory_needs_a_token(tmp_path: Any) -> None:
    with pytest.raises(ValueError):
        create_content_api(f"sqlite:///{tmp_path / 'x.db'}", [])
