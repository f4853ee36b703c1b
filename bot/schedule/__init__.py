"""Time-driven work: the scheduler, its timetable and cron rules, run claims, retention selection, notifications."""
