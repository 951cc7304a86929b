"""Full-text search over conversations: message text, titles, end users' names and emails."""
