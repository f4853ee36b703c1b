"""Who is in which Slack user group, for grants that name a group."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from slack_sdk import WebClient

from bot.clock import Clock
from bot.slack.client import error_text

log = logging.getLogger("cfy_bot.slack")


class SlackGroups:
    """`groups_of(user)` for the policy: cached user-group membership; no groups when Slack will not say."""

    def __init__(self, client: WebClient, wanted: Iterable[str], ttl: float = 300.0, retry: float = 60.0,
                 clock: Clock | None = None) -> None:
        self.client, self.ttl, self.retry = client, ttl, retry
        self.clock = clock or Clock()  # the cache's age is measured on it
        self.wanted = {g for g in wanted if g.startswith("S")}
        self._members: dict[str, set[str]] = {}
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self, user_id: str) -> frozenset[str]:
        if not self.wanted:
            return frozenset()  # no grant names a group: never ask Slack
        with self._lock:
            if self.clock.monotonic() >= self._expires:
                self._members, ok = self._load()
                self._expires = self.clock.monotonic() + (self.ttl if ok else self.retry)
            return frozenset(g for g, users in self._members.items() if user_id in users)

    def _load(self) -> tuple[dict[str, set[str]], bool]:
        try:
            groups = self.client.usergroups_list(include_users=True).get("usergroups") or []
            members = {}
            for g in groups:
                if g.get("id") in self.wanted:
                    users = g.get("users")
                    if users is None:
                        users = self.client.usergroups_users_list(usergroup=g["id"]).get("users") or []
                    members[g["id"]] = set(users)
            return members, True
        except Exception as exc:  # noqa: BLE001 - fail closed: no group grants, and say why
            log.error("cannot read Slack user groups (%s): grants to user groups are ignored until this works "
                      "(does the app have the usergroups:read scope?)", error_text(exc))
            return {}, False
