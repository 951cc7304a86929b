"""Alerts that reach people outside the open tab: outbound webhooks and email, both delivered
through the notifier's outbox (its leases, retries, dead-letter and replay)."""
