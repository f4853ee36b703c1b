"""The Cloudify Manager REST client (moved to bot/cloudify/client.py; this package re-exports its public names)."""

from bot.cloudify.client import API, CHUNK_SIZE, EXECUTION_ACTIONS, Download, Manager, Page, wsgi_transport

__all__ = ["API", "CHUNK_SIZE", "EXECUTION_ACTIONS", "Download", "Manager", "Page", "wsgi_transport"]
