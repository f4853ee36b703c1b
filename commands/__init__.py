"""Every command module, imported once so each declaration registers itself."""

from commands import cluster, maintenance, overview, snapshots

__all__ = ["cluster", "maintenance", "overview", "snapshots"]
