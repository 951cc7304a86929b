"""Telling Fin which conversation changed: the transactional outbox and its delivery."""
