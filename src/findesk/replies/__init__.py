"""Saved replies (canned answers with placeholders) and macros (named lists of actions)."""
