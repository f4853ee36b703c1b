"""Every command module, imported once so each declaration registers itself."""

from commands import cluster, maintenance, operations, overview, restore, snapshots

__all__ = ["cluster", "maintenance", "operations", "overview", "restore", "snapshots"]
from commands import backups, transfer  # noqa: E402,F401 - snapshot transfer and archive commands register themselves
from commands import audit  # noqa: E402,F401 - `audit` registers itself
from commands import incidents, runbooks  # noqa: E402,F401 - incidents and the recovery runbooks register themselves
from commands import backup_jobs  # noqa: E402,F401 - daily backups, retention and summaries register themselves
