"""Members of an organization: create, list, change role, remove."""
