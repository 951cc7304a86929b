"""findesk: an open-source helpdesk for teams that run Intercom's Fin AI agent."""

__version__ = "0.1.0"
