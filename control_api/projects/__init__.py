"""Projects: the first tenant-scoped resource, and the pattern later ones follow."""
