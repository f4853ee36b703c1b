"""Front ends and wiring of a running bot: the cfy-bot entry point, the terminal shell, the demo, check, audit CLI."""
