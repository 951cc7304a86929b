"""findesk's own chat: the widget's API, visitors' identities, and Fin answering the chat through
Intercom's Fin Agent API or Custom Channel Events, with the inbox taking over on escalation."""
