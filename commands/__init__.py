"""Every command module, imported once so each declaration registers itself."""

from commands import cluster, maintenance, operations, overview, restore, snapshots

__all__ = ["cluster", "maintenance", "operations", "overview", "restore", "snapshots"]
