"""Time-driven work: the scheduler, its timetable and cron rules, run claims, notifications (retention selection
is commands/retention.py, used by `backups run` and `backups prune`)."""
