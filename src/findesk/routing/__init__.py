"""Routing rules: where a conversation goes when Fin hands it over, or when it is opened for a
person."""
