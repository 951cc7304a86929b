"""The Fin Custom Helpdesk API: the endpoints Fin calls, in the REST and posts-only variants."""
