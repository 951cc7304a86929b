"""Intercom's Data Connectors kept in step with findesk's lookups (``findesk connectors sync``)."""
