"""Tickets: admin-defined ticket types with typed attributes, ticket states, and tickets,
made from a conversation (``service.convert``) or on their own."""
