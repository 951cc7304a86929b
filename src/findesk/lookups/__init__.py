"""Lookups: admin-defined reads of findesk's data that Fin calls as Data Connectors."""
