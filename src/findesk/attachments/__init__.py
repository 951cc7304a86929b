"""Files agents attach to replies: stored by findesk, served by unguessable URLs."""
