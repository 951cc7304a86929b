"""The knowledge base: articles kept in findesk, served at ``/help`` and published to Fin."""
