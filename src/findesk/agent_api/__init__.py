"""The agent-facing JSON API (``/api/v1``) that human agents and the inbox use."""
