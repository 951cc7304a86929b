"""Articles on the wire (the agent API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from findesk.kit.schemas import Timestamp
from findesk.kit.text import ARTICLE_TITLE_MAX, STORABLE, limited
from findesk.knowledge import intercom_articles, locales, service
from findesk.knowledge.models import Article, ArticleTranslation

BodyFormat = Literal["markdown", "html"]
State = Literal["draft", "published", "archived"]

# Whitespace is collapsed before the service's 255-character limit applies.
TitleText = Annotated[str, limited(1024), STORABLE]
# Characters here; the service also holds the source to as many bytes of UTF-8.
BodyText = Annotated[str, limited(service.MAX_BODY), STORABLE]
_TITLE_DESCRIPTION = (
    f"Plain text; at most {ARTICLE_TITLE_MAX} characters once runs of whitespace are collapsed."
)
_BODY_DESCRIPTION = "What the author writes, in `body_format`; rendered to sanitised HTML."
_URL_DESCRIPTION = (
    "The article's page in an existing help centre, cited by Fin instead of findesk's own "
    "`/help` page."
)
_SLUG_DESCRIPTION = "Its `/help/{slug}` path (made from the title when left out; kept unique)."


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArticleCreate(_In):
    title: TitleText = Field(description=_TITLE_DESCRIPTION)
    body: BodyText = Field(default="", description=_BODY_DESCRIPTION)
    body_format: BodyFormat = "markdown"
    url: str | None = Field(default=None, max_length=service.MAX_URL, description=_URL_DESCRIPTION)
    locale: str = Field(default="en", max_length=35, description="A language tag: en, pt-BR.")
    state: State = "draft"
    slug: str | None = Field(default=None, max_length=120, description=_SLUG_DESCRIPTION)

    def to_draft(self) -> service.ArticleDraft:
        return service.ArticleDraft(
            title=self.title,
            body=self.body,
            body_format=self.body_format,
            url=self.url,
            locale=self.locale,
            state=self.state,
            slug=self.slug,
        )


def _null_only_for_url(schema: dict[str, Any]) -> None:
    """The schema offers null only where it is accepted (``ArticlePatch._only_url_clears``):
    left out, a field is unchanged; null, it is refused."""
    for name, prop in schema["properties"].items():
        if name != "url" and "anyOf" in prop:
            [kept] = [branch for branch in prop.pop("anyOf") if branch.get("type") != "null"]
            prop.update(kept)
            prop.pop("default", None)


class ArticlePatch(_In):
    """Only the fields present change; `url: null` goes back to findesk's own `/help` page."""

    model_config = ConfigDict(json_schema_extra=_null_only_for_url)

    title: TitleText | None = Field(default=None, description=_TITLE_DESCRIPTION)
    body: BodyText | None = Field(default=None, description=_BODY_DESCRIPTION)
    body_format: BodyFormat | None = None
    url: str | None = Field(default=None, max_length=service.MAX_URL, description=_URL_DESCRIPTION)
    locale: str | None = Field(default=None, max_length=35)
    state: State | None = None
    slug: str | None = Field(default=None, max_length=120, description=_SLUG_DESCRIPTION)

    @model_validator(mode="after")
    def _only_url_clears(self) -> ArticlePatch:
        # A null anything else would silently change nothing: say so instead.
        for name in sorted(self.model_fields_set - {"url"}):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def to_draft(self) -> service.ArticleDraft:
        draft = service.ArticleDraft(
            title=self.title,
            body=self.body,
            body_format=self.body_format,
            locale=self.locale,
            state=self.state,
            slug=self.slug,
        )
        if "url" in self.model_fields_set:
            draft.url = self.url
        return draft


class FinCopy(BaseModel):
    """The article's external page in Fin's Content Library."""

    page_id: str | None = Field(description="Fin's id of the page; null while there is none.")
    pending: bool = Field(description="A change is waiting to be sent to Fin.")
    published_at: Timestamp | None = Field(description="When Fin last accepted the page.")
    error: str | None = Field(description="Why the last attempt failed; null after a success.")
    error_at: Timestamp | None
    attempts: int = Field(description="Failed attempts since the last success.")
    publishable: bool = Field(description="Whether Fin should have a page for the article.")
    note: str | None = Field(description="Why the article is not in Fin's library, if it is not.")


class IntercomCopy(BaseModel):
    """The article's copy in Intercom's help centre (Articles API): its languages other than
    English, with English as the default language."""

    article_id: str | None = Field(description="Intercom's id of the article; null while none.")
    pending: bool = Field(description="A change is waiting to be sent to Intercom.")
    published_at: Timestamp | None = Field(description="When Intercom last accepted it.")
    error: str | None = Field(description="Why the last attempt failed; null after a success.")
    error_at: Timestamp | None
    attempts: int = Field(description="Failed attempts since the last success.")

    @classmethod
    def of(cls, article: Article) -> IntercomCopy:
        return cls(
            article_id=article.intercom_article_id,
            pending=article.intercom_pending,
            published_at=article.intercom_published_at,
            error=article.intercom_error,
            error_at=article.intercom_error_at,
            attempts=article.intercom_attempts,
        )


class ArticleView(BaseModel):
    id: str
    title: str
    slug: str
    body: str = Field(description="The source, as written, in `body_format`.")
    body_format: BodyFormat
    body_html: str = Field(description="The rendered, sanitised HTML shown and sent to Fin.")
    url: str = Field(description="The public URL Fin cites.")
    custom_url: str | None = Field(description="The URL given for the article, if any.")
    locale: str
    state: State
    author_id: str | None
    created_at: Timestamp
    updated_at: Timestamp
    published_at: Timestamp | None
    fin: FinCopy
    intercom: IntercomCopy

    @classmethod
    def of(cls, article: Article, base_url: str) -> ArticleView:
        return cls(
            id=article.id,
            title=article.title,
            slug=article.slug,
            body=article.body_source,
            body_format="html" if article.body_format == "html" else "markdown",
            body_html=article.body_html,
            url=service.public_url(article, base_url),
            custom_url=article.url,
            locale=article.locale,
            state=_state(article.state),
            author_id=article.author_id,
            created_at=article.created_at,
            updated_at=article.updated_at,
            published_at=article.published_at,
            fin=FinCopy(
                page_id=article.fin_page_id,
                pending=article.fin_pending,
                published_at=article.fin_published_at,
                error=article.fin_error,
                error_at=article.fin_error_at,
                attempts=article.fin_attempts,
                publishable=service.is_publishable(article),
                note=_fin_note(article),
            ),
            intercom=IntercomCopy.of(article),
        )


class ArticlePage(BaseModel):
    items: list[ArticleView]
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="Pass as `offset` for the next page; null at the end."
    )


class PreviewIn(_In):
    body: BodyText
    body_format: BodyFormat = "markdown"


class PreviewOut(BaseModel):
    html: str = Field(description="The sanitised HTML the body renders to.")


def _state(value: str) -> State:
    if value == "published":
        return "published"
    return "archived" if value == "archived" else "draft"


def _fin_note(article: Article) -> str | None:
    if article.state == "draft":
        return "Not publishable: drafts are not sent to Fin."
    if article.state == "archived":
        return "Not publishable: archived articles are taken out of Fin's library."
    if not service.is_english(article):
        return (
            f"Not publishable: external pages are English only (this article's locale is "
            f"{article.locale})."
        )
    return None


# --- translations ------------------------------------------------------------------------------

DescriptionText = Annotated[str, limited(service.MAX_DESCRIPTION * 4), STORABLE]
_LOCALE_DESCRIPTION = f"One of Intercom's help centre languages: {locales.supported_list()}."


class TranslationCreate(_In):
    locale: str = Field(max_length=16, description=_LOCALE_DESCRIPTION)
    title: TitleText = Field(description=_TITLE_DESCRIPTION)
    description: DescriptionText = Field(default="", description="A short summary, plain text.")
    body: BodyText = Field(default="", description=_BODY_DESCRIPTION)
    body_format: BodyFormat = "markdown"
    state: State = "draft"

    def to_draft(self) -> service.TranslationDraft:
        return service.TranslationDraft(
            title=self.title,
            description=self.description,
            body=self.body,
            body_format=self.body_format,
            state=self.state,
        )


def _no_nulls(schema: dict[str, Any]) -> None:
    for prop in schema["properties"].values():
        if "anyOf" in prop:
            [kept] = [branch for branch in prop.pop("anyOf") if branch.get("type") != "null"]
            prop.update(kept)
            prop.pop("default", None)


class TranslationPatch(_In):
    """Only the fields present change."""

    model_config = ConfigDict(json_schema_extra=_no_nulls)

    title: TitleText | None = Field(default=None, description=_TITLE_DESCRIPTION)
    description: DescriptionText | None = None
    body: BodyText | None = Field(default=None, description=_BODY_DESCRIPTION)
    body_format: BodyFormat | None = None
    state: State | None = None

    @model_validator(mode="after")
    def _no_null(self) -> TranslationPatch:
        for name in sorted(self.model_fields_set):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def to_draft(self) -> service.TranslationDraft:
        return service.TranslationDraft(
            title=self.title,
            description=self.description,
            body=self.body,
            body_format=self.body_format,
            state=self.state,
        )


class TranslationView(BaseModel):
    article_id: str
    locale: str
    title: str
    description: str
    body: str = Field(description="The source, as written, in `body_format`.")
    body_format: BodyFormat
    body_html: str = Field(description="The rendered, sanitised HTML shown and sent.")
    state: State
    url: str = Field(description="Its page in findesk's help centre (once published).")
    created_at: Timestamp
    updated_at: Timestamp
    published_at: Timestamp | None
    intercom_sent_at: Timestamp | None = Field(
        description="When Intercom last accepted this language's content."
    )
    intercom_current: bool = Field(description="Intercom has this language's content as it is now.")
    intercom: IntercomCopy = Field(description="The article's copy in Intercom (all languages).")

    @classmethod
    def of(
        cls,
        article: Article,
        translation: ArticleTranslation,
        base_url: str,
        author_id: int | None,
    ) -> TranslationView:
        return cls(
            article_id=article.id,
            locale=translation.locale,
            title=translation.title,
            description=translation.description,
            body=translation.body_source,
            body_format="html" if translation.body_format == "html" else "markdown",
            body_html=translation.body_html,
            state=_state(translation.state),
            url=f"{base_url.rstrip('/')}/help/{translation.locale}/{article.slug}",
            created_at=translation.created_at,
            updated_at=translation.updated_at,
            published_at=translation.published_at,
            intercom_sent_at=translation.intercom_sent_at,
            intercom_current=intercom_articles.translation_is_current(translation, author_id),
            intercom=IntercomCopy.of(article),
        )


class TranslationList(BaseModel):
    items: list[TranslationView]
