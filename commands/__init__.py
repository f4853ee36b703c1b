"""Every command module, imported once so each declaration registers itself.

The import order is the order of `help` and of README's command table: from looking, to changing, to recovering.
"""

# isort: skip_file
from commands import overview, operations  # status, help; answering gates by typing
from commands import deployments  # what runs on the manager (cfy deployments list)
from commands import snapshots, snapshot_create, transfer  # snapshots: read, create, download / upload / delete
from commands import maintenance, executions, restore  # maintenance mode, executions, guided and plain restore
from commands import backups, backup_jobs, backup_prune, backup_reports  # archive checks; daily job, retention, reports
from commands import drills  # restore drills onto a disposable manager
from commands import cluster, runbooks, incidents  # clusters, recovery runbooks, incident rooms
from commands import audit  # who did what

__all__ = ["audit", "backup_jobs", "backup_prune", "backup_reports", "backups", "cluster", "deployments", "drills",
           "executions", "incidents", "maintenance", "operations", "overview", "restore", "runbooks", "snapshot_create",
           "snapshots", "transfer"]
