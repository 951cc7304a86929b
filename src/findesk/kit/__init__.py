"""Shared plumbing: settings, database, ids, time, HTML, errors, secrets."""
