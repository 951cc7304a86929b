"""The live change feed: every conversation change, Fin's included, for the inbox's live view."""
