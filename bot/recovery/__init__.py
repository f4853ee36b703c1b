"""The guide's procedures: recovery runbooks (data files) as live checklists, and incident rooms."""
