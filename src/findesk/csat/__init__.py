"""CSAT: when a conversation is resolved, a rating request with a link to a public page, and
the rating the end user gives there (1 to 5 and a comment), once per conversation."""
