"""The audit log: who did what to agents, credentials and settings, when, from where."""
