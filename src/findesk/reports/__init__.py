"""Reports: what Fin resolved, what the team did, and whether Intercom's numbers agree."""
