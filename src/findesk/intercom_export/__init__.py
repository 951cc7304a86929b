"""Intercom's Reporting Data Export, fetched and reconciled with findesk's own history."""
