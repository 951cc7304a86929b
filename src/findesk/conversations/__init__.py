"""Conversations and their messages, tags, attributes and ownership."""
