"""The Cloudify Manager REST client: one `Manager` per configured manager, with failover across its nodes.

This package is the only part of the bot that imports httpx. Every httpx exception and every error answer is
translated here, where it enters, into the `bot.errors` tree with a message naming the manager and node.
Requests are shaped exactly as the official `cfy` 7.0.5 CLI sends them, and each call accepts only the
status cfy expects (see shared/reference/cfy-cli-wire.md).

    client.py     Manager: identity, derived clients, status, maintenance, executions, events, cluster
    snapshots.py  the snapshot calls of Manager (list, create, delete, download, upload, restore)
    exchange.py   the exchange under every call: failover across nodes, logging, httpx errors
    answers.py    error answers (status, error_code) and unusable bodies -> bot.errors, with messages
    nodes.py      node failover bookkeeping: the node that answers now, why the others failed
    wire.py       how calls are shaped (cfy's query and body spelling) and plain answers read; Page, Download
    transport.py  wsgi_transport: WSGI apps (the simulator) in-process behind the real client

Everything the client logs goes to the `cfy_bot.cloudify` logger.
"""

from bot.cloudify.client import Manager
from bot.cloudify.transport import wsgi_transport
from bot.cloudify.wire import API, CHUNK_SIZE, EXECUTION_ACTIONS, Download, Page

__all__ = ["API", "CHUNK_SIZE", "EXECUTION_ACTIONS", "Download", "Manager", "Page", "wsgi_transport"]
