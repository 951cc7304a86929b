"""SLA policies, their timers on conversations waiting for a person, breaches and escalation."""
