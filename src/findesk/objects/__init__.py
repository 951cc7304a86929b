"""Custom objects: admin-defined types (``Order``) and their instances, upserted by external id
and linked to end users and conversations, as Intercom's Custom Object Instances are."""
