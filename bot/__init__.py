"""cfy-bot: Slack chat-ops for Cloudify Manager backups (see DESIGN.md for the map of modules)."""
