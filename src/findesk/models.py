"""Every table, imported in one place so that the metadata (and Alembic) sees them all."""

from findesk.agents.models import Agent
from findesk.alerts.models import AlertPreference, WebhookEndpoint
from findesk.attachments.models import StoredFile
from findesk.audit.models import AuditEntry
from findesk.auth.models import AccessToken, AgentToken, OAuthClient, WebSession
from findesk.chat.models import (
    ChatConversation,
    ChatInboundEvent,
    ChatMessageExtra,
    ChatSession,
    ChatUpload,
)
from findesk.connectors.models import IntercomConnector, IntercomConnectorExecution
from findesk.conversations.models import (
    Conversation,
    ConversationCount,
    ConversationEvent,
    ConversationRead,
    ConversationTag,
    Message,
)
from findesk.csat.models import CsatRating
from findesk.fin_api.models import SeenRequestSignature
from findesk.fin_ledger.models import FinCall, PendingFetch
from findesk.idempotency.models import IdempotencyKey
from findesk.intercom_export.models import IntercomReportJob, IntercomReportRow
from findesk.kit.db import Base
from findesk.knowledge.models import (
    Article,
    ArticleCollection,
    ArticleTranslation,
    CollectionMember,
    CollectionTranslation,
    ContentSource,
)
from findesk.live.models import Activity
from findesk.lookups.models import Lookup, LookupCall, LookupToken
from findesk.notifier.models import OutboxEvent, TypingSignal
from findesk.objects.models import (
    IntercomObjectDelete,
    ObjectConversationLink,
    ObjectInstance,
    ObjectType,
    ObjectUserLink,
)
from findesk.replies.models import Macro, SavedReply
from findesk.reports.models import ReportDay, ReportFact, ReportState
from findesk.routing.models import RoutingRule
from findesk.search.models import SearchHead
from findesk.sla.models import SlaPolicy, SlaTimer
from findesk.teams.models import Team, TeamMember
from findesk.throttle.models import ThrottleCounter
from findesk.tickets.models import Ticket, TicketState, TicketType
from findesk.users.models import EndUser, EndUserAlias

__all__ = [
    "AccessToken",
    "Activity",
    "Agent",
    "AgentToken",
    "AlertPreference",
    "Article",
    "ArticleCollection",
    "ArticleTranslation",
    "AuditEntry",
    "Base",
    "ChatConversation",
    "ChatInboundEvent",
    "ChatMessageExtra",
    "ChatSession",
    "ChatUpload",
    "CollectionMember",
    "CollectionTranslation",
    "ContentSource",
    "Conversation",
    "ConversationCount",
    "ConversationEvent",
    "ConversationRead",
    "ConversationTag",
    "CsatRating",
    "EndUser",
    "EndUserAlias",
    "FinCall",
    "IdempotencyKey",
    "IntercomConnector",
    "IntercomConnectorExecution",
    "IntercomObjectDelete",
    "IntercomReportJob",
    "IntercomReportRow",
    "Lookup",
    "LookupCall",
    "LookupToken",
    "Macro",
    "Message",
    "OAuthClient",
    "ObjectConversationLink",
    "ObjectInstance",
    "ObjectType",
    "ObjectUserLink",
    "OutboxEvent",
    "PendingFetch",
    "ReportDay",
    "ReportFact",
    "ReportState",
    "RoutingRule",
    "SavedReply",
    "SearchHead",
    "SeenRequestSignature",
    "SlaPolicy",
    "SlaTimer",
    "StoredFile",
    "Team",
    "TeamMember",
    "ThrottleCounter",
    "Ticket",
    "TicketState",
    "TicketType",
    "TypingSignal",
    "WebSession",
    "WebhookEndpoint",
]
