"""Colmena queues for Loom: locked pipes (default), Redis, and the event fabric.

Pipes. A Thinker's agents are threads, and several of them may send requests at the same moment (a
task submitter and an event responder, say). ``multiprocessing.Connection.send`` writes a
message over 16 KiB as two writes, so two threads sending large messages on one pipe interleave
their bytes and the reader fails (``UnpicklingError: invalid load key``; found with the
reallocation policy, whose retrain request carries 1,000 candidates). Colmena's ``PipeQueues``
has no lock; these queues take one per pipe end. The server's shallow copy shares them.
"""

from __future__ import annotations

import logging
import pickle
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Collection
from typing import Any

import redis
from colmena.exceptions import KillSignalException, TimeoutException
from colmena.queue.base import ColmenaQueues
from colmena.queue.python import PipeQueues
from colmena.queue.redis import RedisQueues

from components.base import dotted_name, from_dotted_name
from components.events.clients import CLOSE_TIMEOUT_S, call_bounded
from components.events.protocol import EventsError

log = logging.getLogger(__name__)
# Starts a message sent by reference (a Colmena message is JSON text, never a NUL byte).
_BY_REFERENCE = b"\x00loom-by-reference\x00"


class CountedQueues(ColmenaQueues):
    """Colmena queues that count a task as active before its request can be answered.

    Colmena's ``send_inputs`` sends the request and only then adds the task to the active set,
    while ``get_result`` removes a result's task from it. A fast server can answer in between:
    the removal finds nothing, the late addition stays for ever, ``active_count`` never reaches
    0 and the Thinker's result agent and ``wait_until_done`` wait for good (found with no-op
    tasks on a thread server). Here the bookkeeping lock is re-entrant and held across the whole
    send, so a result's removal waits until its task has been added.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._active_lock = threading.RLock()  # type: ignore[assignment]  # Colmena: a Lock

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._active_lock = threading.RLock()  # type: ignore[assignment]

    def send_inputs(self, *input_args: Any, **options: Any) -> str:
        """Colmena's ``send_inputs``, with the task counted before a result can be counted."""
        with self._active_lock:
            task_id: str = super().send_inputs(*input_args, **options)
        return task_id

    def abandon_outstanding(self) -> int:
        """Stop waiting for the tasks still out (a campaign past its timeout); how many.

        Colmena's result agents and ``wait_until_done`` wait while any task is active, in the
        Thinker's pool threads that Python joins at exit: with results that never come (a dead
        broker) they held the process for good.
        """
        with self._active_lock:
            count = len(self._active_tasks)
            self._active_tasks.clear()
            self._all_complete.set()
        return count


class LockedPipeQueues(CountedQueues, PipeQueues):
    """``PipeQueues`` whose senders take turns on each pipe."""

    def __init__(self, topics: Collection[str] = (), **options: Any) -> None:
        super().__init__(topics, **options)
        self._make_locks()

    def _make_locks(self) -> None:
        self._request_lock = threading.Lock()
        self._result_locks = {topic: threading.Lock() for topic in self.topics}

    def __getstate__(self) -> dict[str, Any]:
        """Colmena's state, without the locks (a copy in another process makes its own)."""
        state: dict[str, Any] = super().__getstate__()
        state.pop("_request_lock", None)
        state.pop("_result_locks", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._make_locks()

    def _send_request(self, message: str, topic: str) -> None:
        with self._request_lock:
            super()._send_request(message, topic)

    def _send_result(self, message: str, topic: str) -> None:
        with self._result_locks[topic]:
            super()._send_result(message, topic)


class FabricQueues(CountedQueues):
    """Colmena's queues over the ``events`` fabric: Kafka topics in one principal's namespace.

    Requests go to ``<prefix>-requests`` (the Colmena topic is the event key), results to
    ``<prefix>-result-<topic>``; each reader is a consumer in a group of its own, made and
    assigned when its role is set (a Thinker, a task server), before the campaign starts, so
    that the first message meets a ready reader. Pickled into another process, the queues
    reach the broker from there (a detached session of the same principal). The
    producer sends at once (``linger.ms`` 0) and the readers fetch with the fabric's prompt
    settings (``Session.prompt_settings``): latency matters more than batching here.

    A message over the broker's size limit goes by reference on its own: its bytes are put in
    a ProxyStore connector (the run's data flow's where it has one, else files in a folder of
    the queues' own) and the topic carries only the key; the reader takes the bytes and
    evicts them. Colmena's own ``proxystore_threshold`` still proxies single large values.

    Args:
        session: The principal's fabric session (``components.events.fabric.Session``).
        topics: Colmena topics besides ``default``.
        prefix: Topic prefix (default: ``colmena-`` and a random suffix).
        max_message_bytes: Largest message sent on the topics (the broker's limit).
        overflow: ProxyStore connector for messages over it (default: a temporary folder).
        **options: ``ColmenaQueues`` options (serialization, keep_inputs, ProxyStore).

    """

    def __init__(
        self,
        session: Any,
        topics: Collection[str] = (),
        prefix: str | None = None,
        *,
        serialization_method: str = "pickle",
        max_message_bytes: int = 1_000_000,
        overflow: Any | None = None,
        **options: Any,
    ) -> None:
        # Pickle, as pipes and Redis do: JSON cannot carry arrays, tuples or proxies.
        super().__init__(topics, serialization_method=serialization_method, **options)
        self.max_message_bytes = max_message_bytes
        self._overflow_folder: str | None = None
        if overflow is None:
            from proxystore.connectors.file import FileConnector

            self._overflow_folder = tempfile.mkdtemp(prefix="loom-colmena-overflow-")
            overflow = FileConnector(self._overflow_folder, clear=False)
        self._overflow = overflow
        self.by_reference = 0  # messages this copy sent by reference
        self.session = session
        self.prefix = prefix or f"colmena-{uuid.uuid4().hex[:8]}"
        self._requests = session.create_topic(f"{self.prefix}-requests")
        self._results = {t: session.create_topic(f"{self.prefix}-result-{t}") for t in self.topics}
        self._owner = True  # the copy that made the topics deletes them at close
        self._connect()

    def _connect(self) -> None:
        self._producer = self.session.producer(**{"linger.ms": 0})
        self._readers: dict[str, _Reader] = {}
        self._readers_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """The topics, the session (it pickles as a detached one) and the overflow's config."""
        state: dict[str, Any] = super().__getstate__()
        for name in ("_producer", "_readers", "_readers_lock"):
            state.pop(name, None)
        overflow = state.pop("_overflow")
        state["_overflow_config"] = (dotted_name(type(overflow)), overflow.config())
        state["_owner"] = False
        state["_overflow_folder"] = None  # the owner removes it
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        path, config = state.pop("_overflow_config")
        state["_overflow"] = from_dotted_name(path).from_config(config)
        super().__setstate__(state)
        self._connect()

    def __copy__(self) -> FabricQueues:
        """A copy in this process (a task server's) shares the producer and the readers."""
        clone = type(self).__new__(type(self))
        CountedQueues.__setstate__(clone, ColmenaQueues.__getstate__(self))
        clone._overflow_folder = None  # this copy's owner removes it
        return clone

    def set_role(self, role: Any) -> None:
        """Colmena's roles; each makes its readers now, so the first message meets them ready.

        A server reads requests, a client results. Only this process's role joins a reader
        group, so a server in another process (a pickled copy) is the one that gets requests.
        """
        super().set_role(role)
        names = {"server": [self._requests], "client": list(self._results.values())}
        for name in names.get(str(getattr(self.role, "value", self.role)), []):
            self._reader(name)

    def _reader(self, name: str) -> _Reader:
        with self._readers_lock:
            reader = self._readers.get(name)
            if reader is None:
                reader = self._readers[name] = _Reader(self.session, name)
                reader.ready()
            return reader

    def _send_request(self, message: str, topic: str) -> None:
        self._producer.produce(self._requests, self._encode(message), key=topic)
        self._producer.poll(0)

    def _encode(self, message: str) -> bytes:
        """The message, or a reference to it where it is over the broker's limit."""
        data = message.encode()
        if len(data) <= self.max_message_bytes:
            return data
        key = self._overflow.put(data)
        self.by_reference += 1
        if self.by_reference == 1:
            log.info(
                "a %s-byte Colmena message is over the broker's limit of %s bytes: it and any "
                "like it go by reference through %s",
                f"{len(data):,}",
                f"{self.max_message_bytes:,}",
                type(self._overflow).__name__,
            )
        return _BY_REFERENCE + pickle.dumps(key)

    def _decode(self, value: bytes) -> str:
        """The message, taken from the overflow store where it went by reference."""
        if not value.startswith(_BY_REFERENCE):
            return value.decode()
        key = pickle.loads(value[len(_BY_REFERENCE) :])  # our own topic's key
        data = self._overflow.get(key)
        if data is None:
            raise RuntimeError(f"a message sent by reference is gone from the store ({key})")
        self._overflow.evict(key)
        return bytes(data).decode()

    def _get_request(self, timeout: float | None = None) -> tuple[str, str]:
        event = self._reader(self._requests).get(timeout)
        message = self._decode(event.value)
        if message == "null":
            raise KillSignalException()
        return (event.key or b"default").decode(), message

    def _send_result(self, message: str, topic: str) -> None:
        self._producer.produce(self._results[topic], self._encode(message))
        self._producer.poll(0)

    def _get_result(self, topic: str, timeout: float | None = None) -> str:
        return self._decode(self._reader(self._results[topic]).get(timeout).value)

    def flush(self) -> None:
        """Empty the queues, as Colmena's ``flush`` does: what was sent is read and dropped.

        A topic this process has no reader of is drained by a reader that then leaves the
        group, so a server elsewhere still gets the requests sent after.
        """
        self._producer.flush()
        for name in (self._requests, *self._results.values()):
            reader = self._readers.get(name)
            if reader is not None:
                reader.drain()
                continue
            passing = _Reader(self.session, name)
            passing.ready()
            passing.drain()
            passing.close()

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Close the readers and the producer; delete the topics: in ``timeout_s`` at most.

        A broker that does not answer (killed, paused) cannot hold the campaign's end: what
        is left undone past the deadline is logged, not waited for.
        """
        deadline = time.monotonic() + timeout_s

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        for reader in self._readers.values():
            reader.close(left())
        try:
            self._producer.close(left())
        except EventsError as exc:
            log.warning("closing the Colmena queues %s: %s", self.prefix, exc)
        if self._owner:
            names = [name.split(".", 1)[1] for name in (self._requests, *self._results.values())]
            call_bounded(
                lambda: [self.session.delete_topic(n) for n in names],
                left(),
                f"deleting the topics of {self.prefix}",
            )
        if self._overflow_folder is not None:
            shutil.rmtree(self._overflow_folder, ignore_errors=True)


class _Reader:
    """One topic's consumer and the events it fetched but nobody took yet (one reader thread)."""

    def __init__(self, session: Any, topic: str) -> None:
        group = f"{topic.split('.', 1)[1]}-reader"
        self._consumer = session.consumer([topic], group=group, **session.prompt_settings())
        self._pending: deque[Any] = deque()

    def ready(self) -> None:
        """Wait until the topic is assigned to this reader."""
        self._pending.extend(self._consumer.wait_assigned(1))

    def get(self, timeout: float | None) -> Any:
        """The next event; ``TimeoutException`` after ``timeout`` s (None: wait for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            wait = 1.0 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutException()
            self._pending.extend(self._consumer.poll(500, min(wait, 1.0)))
        return self._pending.popleft()

    def drain(self) -> None:
        """Drop what was fetched and everything up to the topic's end as of now."""
        self._pending.clear()
        self._consumer.drain()

    def close(self, timeout_s: float | None = None) -> None:
        """Commit and leave the group (giving up after ``timeout_s``)."""
        self._consumer.close(timeout_s)


class BlockingRedisQueues(CountedQueues, RedisQueues):
    """Colmena's ``RedisQueues`` whose client waits as long as a blocking pop asks.

    Colmena waits for a message with ``BLPOP`` (timeout 0: for ever) on a client made with
    redis-py's defaults, and redis-py 8 gives every socket a 5 s read timeout. So a server that
    has no request for 5 s (every slot busy on a long task) dies of ``TimeoutError`` in its
    listening thread and the campaign hangs. These queues' client has no socket timeout.
    """

    def connect(self) -> None:
        """Connect to the Redis server, with no socket read timeout."""
        if not self.redis_client:
            client = redis.StrictRedis(
                host=self.hostname, port=self.port, decode_responses=True, socket_timeout=None
            )
            client.ping()  # fails here, as Colmena's does, when no server answers
            self.redis_client = client  # type: ignore[assignment]  # Colmena annotates None


def redis_queues(
    host: str, port: int, topics: Collection[str] = (), **options: Any
) -> BlockingRedisQueues:
    """Redis queues with a prefix of their own (``BlockingRedisQueues``).

    Colmena's default prefix is one ``uuid4()`` evaluated at import, so every queue made in a
    process without a prefix would share (and drain) the same lists.
    """
    return BlockingRedisQueues(
        topics, hostname=host, port=port, prefix=f"colmena-{uuid.uuid4().hex[:8]}", **options
    )
