"""One error tree for the whole bot; every error carries a message a person can act on."""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot raises on purpose; `str()` is the human message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(BotError):
    """The command text could not be understood (exit code 2)."""

    exit_code = 2

    def __init__(self, message: str, usage: str = "", suggestion: str = "") -> None:
        super().__init__(message)
        self.usage = usage
        self.suggestion = suggestion


class NothingToDo(BotError):
    """What was asked is already so (nothing to prune, today's backup already done and verified): exit 0."""

    exit_code = 0


class ConfigError(BotError):
    """Configuration is missing or invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("configuration problems:\n" + "\n".join(f"- {p}" for p in problems))
        self.problems = problems


class PermissionDenied(BotError):
    """The actor lacks the role a command needs."""


class NotFound(BotError):
    """A thing the user named does not exist (manager name, operation id, archive copy)."""


class OperationError(BotError):
    """An operation could not move to the requested state (already decided, expired, busy)."""


class Cancelled(OperationError):
    """A running operation stopped because someone cancelled it before its point of no return."""


class ArchiveError(BotError):
    """A snapshot archive copy could not be written, read or verified."""


class CopyKept(ArchiveError):
    """The archive keeps a verified copy of this snapshot id with other content: it is never replaced."""


# --- errors that come from a Cloudify manager -------------------------------------------------


class ManagerError(BotError):
    """A Cloudify manager answered with an error, or did not answer."""

    def __init__(
        self,
        message: str,
        *,
        manager: str = "",
        status: int | None = None,
        error_code: str = "",
        server_message: str = "",
    ) -> None:
        super().__init__(message)
        self.manager = manager
        self.status = status
        self.error_code = error_code
        self.server_message = server_message


class ManagerUnreachable(ManagerError):
    """No node of the manager could be reached (refused, timed out, 502 on every node)."""


class ManagerTimeout(ManagerUnreachable):
    """The manager accepted the connection but did not answer in time."""


class AuthenticationFailed(ManagerError):
    """401: wrong credentials, locked account or a bad token."""


class Forbidden(ManagerError):
    """403: unknown tenant or the Cloudify user lacks the permission."""


class TenantNotFound(Forbidden):
    """403 because the `Tenant` header names a tenant that does not exist."""


class ManagerNotFound(ManagerError):
    """404 from the manager (snapshot, execution) or an HTML 404 for an unknown route."""


class Conflict(ManagerError):
    """409: the id already exists (or a storage conflict)."""


class NotModified(ManagerError):
    """304: the manager was already in the requested state (maintenance mode)."""


class BadRequest(ManagerError):
    """400 with an error code not covered by a more specific class."""


class ExecutionsRunning(BadRequest):
    """400 existing_running_execution_error: other executions block a system workflow."""


class SnapshotActionError(BadRequest):
    """400 snapshot_action_error: e.g. a failed snapshot cannot be restored or downloaded."""


class MaintenanceModeActive(ManagerError):
    """503 maintenance_mode_active: the manager is in maintenance mode; never retried."""


class EnteringMaintenanceMode(ManagerError):
    """503 entering_maintenance_mode: maintenance is activating; mutations are refused."""


class ServerError(ManagerError):
    """5xx other than maintenance mode, or a body that is not what the API promises."""


class BadResponse(ManagerError):
    """The manager answered with HTML or garbage where JSON was expected."""


# --- the chat side of incidents (bot/recovery/chatport.py) ---

class ChatError(BotError):
    """The chat side refused or failed."""


class MissingScope(ChatError):
    """The chat app lacks a permission (a Slack OAuth scope)."""

    def __init__(self, scope: str, method: str = "") -> None:
        self.scope = scope
        call = f" for {method}" if method else ""
        super().__init__(f"the Slack app lacks the `{scope}` scope{call}: add it under OAuth & Permissions "
                         "(and in manifest.yml) and reinstall the app")


class NoChannels(ChatError):
    """This transport cannot create channels at all (the terminal)."""


class NameTaken(ChatError):
    """A channel of that name exists already."""
