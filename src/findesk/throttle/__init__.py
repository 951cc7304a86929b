"""Brute-force throttling: progressive delays on failed sign-ins and token requests, kept in the
database so that every app process shares them."""
