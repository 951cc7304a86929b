"""The web inbox: where human agents see what Fin handed over, reply, take over and resolve."""
