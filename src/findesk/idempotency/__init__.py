"""Idempotency keys: a client's retry of a POST gets the first answer, and changes nothing more."""
