"""Agents: the human support staff, and the bot agent that represents Fin."""
