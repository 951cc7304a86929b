"""Credentials: OAuth clients and access tokens for Fin, personal tokens for agents."""
