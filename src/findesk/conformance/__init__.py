"""A conformance suite for the Fin Custom Helpdesk contract: runs every rule against any helpdesk.

``findesk conformance`` runs it from the command line; :func:`findesk.conformance.runner.run`
runs it in-process.
"""
