"""Principals, tokens, namespaces and per-topic grants: the fabric's access-control layer.

As in Octopus, every principal owns the namespace named after it; a topic's full name is
``<namespace>.<topic>``. The owner may do anything with its topics; anybody else needs a
grant. Tokens are kept as SHA-256 digests only.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading

from components.events.protocol import Access, TopicAccessDenied, TopicError

NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid namespace or topic name, else raise a clear error."""
    if not NAME.match(name):
        raise TopicError(f"{kind} name {name!r} is invalid: use 1-100 letters, digits, '_' or '-'")
    return name


def full_name(namespace: str, topic: str) -> str:
    """``<namespace>.<topic>``, or ``topic`` unchanged when it is already a full name."""
    if "." in topic:
        owner, short = topic.split(".", 1)
        check_name("namespace", owner)
        check_name("topic", short)
        return topic
    return f"{check_name('namespace', namespace)}.{check_name('topic', topic)}"


def owner_of(topic: str) -> str:
    """The namespace part of a full topic name."""
    return topic.split(".", 1)[0]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccessControl:
    """Who may read and write which topic.

    ``version`` grows with every grant change, so clients can cache a check and see a
    revoke on their next call.
    """

    def __init__(self) -> None:
        self._principals: dict[str, str] = {}  # token digest → principal
        self._names: set[str] = set()
        self._grants: dict[str, dict[str, Access]] = {}  # topic → principal → access
        self._lock = threading.Lock()
        self.version = 0

    def add_principal(self, name: str, token: str | None = None) -> str:
        """Register ``name`` and return its token (a fresh random one unless given)."""
        check_name("principal", name)
        token = token or secrets.token_urlsafe(24)
        with self._lock:
            if name in self._names:
                raise TopicAccessDenied(f"principal {name!r} already exists")
            self._names.add(name)
            self._principals[_digest(token)] = name
        return token

    def principals(self) -> list[str]:
        """Registered principal names."""
        return sorted(self._names)

    def authenticate(self, token: str) -> str:
        """The principal that owns ``token``."""
        try:
            return self._principals[_digest(token)]
        except KeyError:
            raise TopicAccessDenied("unknown token: no principal has it") from None

    def allowed(self, principal: str, topic: str) -> Access:
        """What ``principal`` may do on ``topic`` (owners may do everything)."""
        if owner_of(topic) == principal:
            return Access.READ_WRITE
        return self._grants.get(topic, {}).get(principal, Access.NONE)

    def require(self, principal: str, topic: str, needed: Access) -> None:
        """Raise :class:`TopicAccessDenied` unless ``principal`` holds ``needed`` on ``topic``."""
        if needed not in self.allowed(principal, topic):
            raise TopicAccessDenied(
                f"principal {principal!r} may not {needed.label} topic {topic!r}: "
                f"it holds {self.allowed(principal, topic).label}; the owner "
                f"{owner_of(topic)!r} can grant it"
            )

    def require_owner(self, principal: str, topic: str, action: str) -> None:
        """Only the namespace owner may create, delete or grant on a topic."""
        if owner_of(topic) != principal:
            raise TopicAccessDenied(
                f"principal {principal!r} may not {action} {topic!r}: only its owner "
                f"{owner_of(topic)!r} may"
            )

    def grant(self, topic: str, principal: str, access: Access) -> Access:
        """Add ``access`` for ``principal`` on ``topic``; return what it now holds."""
        if principal not in self._names:
            raise TopicAccessDenied(
                f"cannot grant to unknown principal {principal!r}; known: "
                f"{', '.join(self.principals())}"
            )
        with self._lock:
            held = self._grants.setdefault(topic, {}).get(principal, Access.NONE) | access
            self._grants[topic][principal] = held
            self.version += 1
        return held

    def revoke(self, topic: str, principal: str, access: Access) -> Access:
        """Remove ``access`` for ``principal`` on ``topic``; return what is left."""
        with self._lock:
            grants = self._grants.get(topic, {})
            left = grants.get(principal, Access.NONE) & ~access
            if left == Access.NONE:
                grants.pop(principal, None)
            else:
                grants[principal] = left
            self.version += 1
        return left

    def grants(self, topic: str) -> dict[str, Access]:
        """Principal → access on ``topic`` (the owner is implied, not listed)."""
        return dict(self._grants.get(topic, {}))

    def forget_topic(self, topic: str) -> None:
        """Drop every grant on a deleted topic."""
        with self._lock:
            self._grants.pop(topic, None)
            self.version += 1

    def readable(self, principal: str) -> set[str]:
        """Topics of other namespaces that ``principal`` holds any grant on."""
        return {t for t, g in self._grants.items() if principal in g}
