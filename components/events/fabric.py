"""The event fabric: a Kafka connection, principals and grants, and per-principal sessions.

The same confluent-kafka code runs against the embedded broker and any Kafka cluster;
only where the bootstrap address comes from differs (``embedded.py``, ``kafka.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from components.events._access import AccessControl, check_name, full_name, owner_of
from components.events.clients import (
    CLOSE_TIMEOUT_S,
    FabricConsumer,
    FabricProducer,
    ValueFormat,
    call_bounded,
    dead_letter_sink,
)
from components.events.protocol import (
    Access,
    BrokerUnreachable,
    EventsError,
    TopicError,
    TopicInfo,
)
from components.events.topology import EventsConfig
from components.events.triggers import Trigger  # it names Session for types only: no cycle
from components.faults.protocol import Fault, Injected

EMBEDDED_GAP_WAIT_MS = 5000
PROMPT_FETCH_WAIT_MS = 1  # a prompt reader's fetch wait on the embedded broker in memory

if TYPE_CHECKING:
    from components.base import RunContext
    from components.events._acl_mirror import AclMirror
    from components.events._broker import TansuBroker
    from components.events.topology import TriggerSpec

log = logging.getLogger(__name__)
kafka_log = logging.getLogger("loom.librdkafka")


BROKER_FAULTS = frozenset({"broker_kill", "broker_restart", "broker_pause"})
OUTAGE_GRACE_S = 10.0  # after a broker fault heals, clients reconnect with backoff meanwhile


class ExpectedOutage(logging.Filter):
    """librdkafka's complaints while Loom itself holds the broker down are INFO, not ERROR.

    An injected broker fault makes every client log failed connections at ERROR until it
    reconnects; those lines would bury a real error. From the fault until ``OUTAGE_GRACE_S``
    after it heals, they are demoted (kept, at INFO).
    """

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.until = 0.0

    def begin(self) -> None:
        """The broker goes down now."""
        self.down = True

    def end(self) -> None:
        """The broker is back: a grace period for the clients to reconnect."""
        self.down = False
        self.until = time.monotonic() + OUTAGE_GRACE_S

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote warnings and errors during the outage; keep every record."""
        if record.levelno > logging.INFO and (self.down or time.monotonic() < self.until):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _timed(action: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        began = time.perf_counter()
        action()
        return time.perf_counter() - began

    return run


class KafkaEventFabric:
    """Topics, grants, producers, consumers and triggers over one Kafka cluster.

    Args:
        config: The ``events`` config (settings and topology).
        bootstrap: Where the cluster is, or None when ``broker`` provides it.
        broker: The embedded broker process, started on open and stopped on close.
        resources: Other things to open first and close last (an S3 server).
        mirror_acls: Mirror grants as Kafka ACLs (clusters with an authorizer).
        principal_settings: Per principal, librdkafka settings its clients add (SASL
            credentials), so that the broker sees who is asking.

    """

    def __init__(
        self,
        config: EventsConfig,
        *,
        bootstrap: str | None = None,
        broker: TansuBroker | None = None,
        resources: Sequence[Any] = (),
        mirror_acls: bool = False,
        principal_settings: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self._bootstrap = bootstrap
        self._resources = list(resources)
        self.acl = AccessControl()
        self.acl_mirror: AclMirror | None = None
        self._mirror_acls = mirror_acls
        self._principal_settings = dict(principal_settings or {})
        self._tokens: dict[str, str] = {}
        self._stack = ExitStack()
        self._outage = ExpectedOutage()
        self._closers: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.admin: AdminClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``host:port[,host:port...]`` of the cluster."""
        if self.broker is not None:
            return self.broker.bootstrap_servers
        assert self._bootstrap is not None
        return self._bootstrap

    def gap_wait_s(self) -> float:
        """How long consumers re-read a partition whose offsets jump (see ``offsets.py``).

        On by default only with the embedded broker: tansu can show a later batch of a
        partition before an earlier one; a Kafka cluster never does.
        """
        wait_ms = self.config.consumer.gap_wait_ms
        if wait_ms is None:
            wait_ms = EMBEDDED_GAP_WAIT_MS if self.broker is not None else 0
        return wait_ms / 1000

    def prompt_settings(self) -> dict[str, Any]:
        """Consumer settings of a reader that waits for one message at a time (an answer).

        The embedded broker answers a waiting fetch late when an event arrives, so the fetch
        wait bounds such a reader's latency (Colmena's reaction p50 1.5 / 3.4 / 22 ms at a
        wait of 1 / 10 / 100 ms). With its log in memory a 1 ms wait costs little; with the
        log on S3 each fetch reads the store, and a thousand a second starve the broker, as
        they would load a Kafka cluster, which answers at once anyway: the fabric's settings.
        """
        if self.broker is not None and getattr(self.config, "storage", None) == "memory":
            return {"fetch.wait.max.ms": PROMPT_FETCH_WAIT_MS}
        return {}

    def client_settings(self, principal: str | None = None) -> dict[str, Any]:
        """The librdkafka settings every client of ``principal`` starts from."""
        settings: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "logger": kafka_log,
            "socket.connection.setup.timeout.ms": int(self.config.connect_timeout_s * 1000),
        }
        settings.update(self.config.client_settings)
        if principal is not None:
            settings.update(self._principal_settings.get(principal, {}))
        return settings

    def __enter__(self) -> Self:
        try:
            for resource in self._resources:
                self._stack.enter_context(resource)
            if self.broker is not None:
                self._stack.enter_context(self.broker)
                kafka_log.addFilter(self._outage)
                self._stack.callback(kafka_log.removeFilter, self._outage)
            self.admin = AdminClient(self.client_settings())
            self.probe()
            if self._mirror_acls:
                from components.events._acl_mirror import AclMirror

                self.acl_mirror = AclMirror(self.admin, self.config.connect_timeout_s)
            self._open_topology()
        except BaseException:
            self._stack.close()
            raise
        return self

    def probe(self) -> int:
        """Ask the cluster for metadata; return its broker count.

        Raises:
            BrokerUnreachable: No broker answered within ``connect_timeout_s``.

        """
        assert self.admin is not None
        timeout = self.config.connect_timeout_s
        try:
            metadata = self.admin.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise BrokerUnreachable(
                f"no Kafka broker answered at {self.bootstrap_servers} within {timeout:g} s "
                f"({exc.args[0].str()}); check events.bootstrap_servers and that the cluster "
                "is up"
            ) from None
        return len(metadata.brokers)

    def _open_topology(self) -> None:
        for name in self.config.principals:
            self._tokens[name] = self.add_principal(name)
        for topic in self.config.topics:
            owner = self.config.owner(topic)
            session = self.session(owner)
            try:
                session.create_topic(
                    topic.name, partitions=topic.partitions, retention_ms=topic.retention_ms
                )
            except TopicError as exc:
                raise TopicError(
                    f"events.topics: {exc}; on a shared cluster a run's declared topics are its "
                    "own (created at the start, deleted at the end): one left by a run that did "
                    "not end cleanly must be deleted first, or declare another name"
                ) from None
            # A run's declared topics are its own: deleted when it ends (last opened first).
            self._stack.callback(self._delete_quietly, session, topic.name)
        for grant in self.config.grants:
            owner = owner_of(grant.topic)
            self.session(owner).grant(
                grant.topic, grant.principal, read=grant.read, write=grant.write
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close_clients()
        self._stack.close()

    @staticmethod
    def _delete_quietly(session: Session, topic: str) -> None:
        try:
            session.delete_topic(topic)
        except EventsError as exc:  # the broker may be gone already; nothing to keep then
            log.warning("could not delete topic %s at the end: %s", topic, exc)

    def close_clients(self) -> None:
        """Stop triggers, flush producers and commit consumers opened through sessions."""
        with self._lock:
            closers, self._closers = self._closers[::-1], []
        for close in closers:
            try:
                close()
            except EventsError as exc:
                log.warning("while closing: %s", exc)

    def on_close(self, close: Callable[[], None]) -> None:
        """Run ``close`` when the fabric closes (clients opened through sessions)."""
        with self._lock:
            self._closers.append(close)

    def restart_broker(self, *, crash: bool = False) -> float:
        """Stop (or kill) the embedded broker and start it again; the seconds it was down."""
        if self.broker is None:
            raise EventsError(
                "restart_broker needs the embedded broker (events=embedded); an external "
                "cluster is not Loom's to restart"
            )
        return self.broker.restart(crash=crash)

    # -- faults (the embedded broker) -------------------------------------------------------

    def fault_targets(self, kind: str) -> list[str]:
        """``broker`` for the broker kinds, where Loom runs the broker."""
        return ["broker"] if self.broker is not None and kind in BROKER_FAULTS else []

    def inject(self, kind: str, targets: Sequence[str], fault: Fault) -> Injected:
        """Kill (SIGKILL), stop (SIGTERM) or pause (SIGSTOP) the broker; heal: start it again.

        With no ``duration_s`` a killed or stopped broker starts again at once (its downtime
        is then the restart's own), and a paused one stays paused until the trial ends.
        """
        del targets
        broker = self.broker
        assert broker is not None
        outage = self._outage
        outage.begin()

        def healed(action: Callable[[], object]) -> Callable[[], object]:
            def run() -> object:
                try:
                    return action()
                finally:
                    outage.end()

            return run

        if kind == "broker_pause":
            broker.pause()
            return Injected(f"SIGSTOP broker pid {broker.pid}", _timed(healed(broker.resume)))
        crash = kind == "broker_kill"
        signal = "SIGKILL" if crash else "SIGTERM"
        pid = broker.pid
        if not fault.duration_s:
            took = healed(lambda: broker.restart(crash=crash))()
            assert isinstance(took, float)
            return Injected(f"{signal} broker pid {pid}, restarted in {took:.2f} s", None, took)
        if crash:
            broker.kill()
        else:
            broker.stop()
        return Injected(f"{signal} broker pid {pid}, down", _timed(healed(broker.start)))

    # -- principals ------------------------------------------------------------------------

    def add_principal(self, name: str) -> str:
        """Register a principal (namespace ``name``) and return its token."""
        return self.acl.add_principal(name)

    def token_of(self, name: str) -> str:
        """The token of a principal the topology declared."""
        try:
            return self._tokens[name]
        except KeyError:
            raise EventsError(
                f"principal {name!r} was not declared in events.principals "
                f"({', '.join(self._tokens)})"
            ) from None

    def login(self, token: str) -> Session:
        """The session of the principal that owns ``token``."""
        return Session(self, self.acl.authenticate(token))

    def session(self, name: str) -> Session:
        """The session of a declared principal (scenarios and tests)."""
        return self.login(self.token_of(name))

    # -- admin helpers used by sessions ---------------------------------------------------

    def _admin_result(self, futures: Mapping[Any, Any], action: str) -> None:
        for name, future in futures.items():
            try:
                future.result(timeout=self.config.connect_timeout_s)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TopicError(f"topic {name!r} already exists") from None
                if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise TopicError(f"topic {name!r} does not exist") from None
                raise EventsError(f"{action} {name!r} failed: {error.str()}") from None
            except TimeoutError:
                raise BrokerUnreachable(
                    f"{action} {name!r}: the cluster did not answer within "
                    f"{self.config.connect_timeout_s:g} s"
                ) from None

    def wait_for_topic(self, name: str, partitions: int) -> None:
        """Block until metadata shows ``name`` with all its partitions.

        Clients that subscribe before then see a half-made topic (librdkafka 2.x has crashed
        on such metadata from tansu), so creation returns only when the topic is whole.
        """
        deadline = time.monotonic() + self.config.connect_timeout_s
        while self.topic_names().get(name) != partitions:
            if time.monotonic() > deadline:
                raise BrokerUnreachable(
                    f"topic {name!r} did not appear within {self.config.connect_timeout_s:g} s"
                )
            time.sleep(0.01)

    def topic_names(self) -> dict[str, int]:
        """Every topic on the cluster → its partition count."""
        assert self.admin is not None
        try:
            metadata = self.admin.list_topics(timeout=self.config.connect_timeout_s)
        except KafkaException as exc:
            raise BrokerUnreachable(f"listing topics failed: {exc.args[0].str()}") from None
        return {name: len(t.partitions) for name, t in metadata.topics.items()}


class Session:
    """What one authenticated principal may do; namespace = the principal's name."""

    def __init__(self, fabric: KafkaEventFabric, principal: str) -> None:
        self.fabric = fabric
        self.principal = principal

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled, a session becomes a :class:`DetachedSession` of the same principal."""
        fabric = self.fabric
        settings = fabric.client_settings(self.principal)
        settings.pop("logger", None)  # a Python logger does not pickle; the copy sets its own
        return DetachedSession, (
            self.principal,
            settings,
            fabric.config.producer.librdkafka(),
            fabric.config.consumer.librdkafka(),
            fabric.gap_wait_s(),
            fabric.config.producer.delivery_timeout_s,
            fabric.prompt_settings(),
        )

    @property
    def namespace(self) -> str:
        """The namespace this principal owns."""
        return self.principal

    def prompt_settings(self) -> dict[str, Any]:
        """See :meth:`KafkaEventFabric.prompt_settings`."""
        return self.fabric.prompt_settings()

    def _full(self, topic: str) -> str:
        return full_name(self.principal, topic)

    # -- topics ----------------------------------------------------------------------------

    def create_topic(
        self, topic: str, *, partitions: int = 1, retention_ms: int | None = None
    ) -> str:
        """Create a topic in this principal's namespace; return its full name."""
        name = self._full(topic)
        self.fabric.acl.require_owner(self.principal, name, "create")
        if not 1 <= partitions <= 10_000:
            raise TopicError(f"partitions={partitions} is out of range 1..10000")
        config = {"retention.ms": str(retention_ms)} if retention_ms is not None else {}
        assert self.fabric.admin is not None
        futures = self.fabric.admin.create_topics(
            [NewTopic(name, partitions, config=config)],
            request_timeout=self.fabric.config.connect_timeout_s,
        )
        self.fabric._admin_result(futures, "creating topic")
        self.fabric.wait_for_topic(name, partitions)
        return name

    def delete_topic(self, topic: str) -> None:
        """Delete one of this principal's topics and every grant on it."""
        name = self._full(topic)
        self.fabric.acl.require_owner(self.principal, name, "delete")
        assert self.fabric.admin is not None
        futures = self.fabric.admin.delete_topics(
            [name], request_timeout=self.fabric.config.connect_timeout_s
        )
        self.fabric._admin_result(futures, "deleting topic")
        self.fabric.acl.forget_topic(name)
        if self.fabric.acl_mirror is not None:
            self.fabric.acl_mirror.forget(name)

    def list_topics(self) -> list[str]:
        """Topics this principal owns or holds a grant on."""
        granted = self.fabric.acl.readable(self.principal)
        prefix = self.namespace + "."
        return sorted(
            name for name in self.fabric.topic_names() if name.startswith(prefix) or name in granted
        )

    def describe_topic(self, topic: str) -> TopicInfo:
        """Partitions, retention and grants of a topic this principal may see."""
        name = self._full(topic)
        if self.fabric.acl.allowed(self.principal, name) == Access.NONE:
            self.fabric.acl.require(self.principal, name, Access.READ)
        partitions = self.fabric.topic_names().get(name)
        if partitions is None:
            raise TopicError(f"topic {name!r} does not exist")
        assert self.fabric.admin is not None
        retention: int | None = None
        try:
            resource = ConfigResource(ConfigResource.Type.TOPIC, name)
            for future in self.fabric.admin.describe_configs([resource]).values():
                entries = future.result(timeout=self.fabric.config.connect_timeout_s)
                if "retention.ms" in entries and entries["retention.ms"].value is not None:
                    retention = int(entries["retention.ms"].value)
        except KafkaException as exc:
            log.info("describe_configs(%s) failed: %s", name, exc)
        return TopicInfo(name, owner_of(name), partitions, retention, self.fabric.acl.grants(name))

    # -- grants ----------------------------------------------------------------------------

    def grant(
        self, topic: str, principal: str, *, read: bool = True, write: bool = False
    ) -> Access:
        """Let ``principal`` read and/or write one of this principal's topics."""
        name = self._full(topic)
        self.fabric.acl.require_owner(self.principal, name, "grant access to")
        held = self.fabric.acl.grant(name, principal, Access.of(read=read, write=write))
        if self.fabric.acl_mirror is not None:
            self.fabric.acl_mirror.grant(name, principal, held)
        return held

    def revoke(
        self, topic: str, principal: str, *, read: bool = True, write: bool = True
    ) -> Access:
        """Take read and/or write access away; takes effect on the next produce or poll."""
        name = self._full(topic)
        self.fabric.acl.require_owner(self.principal, name, "revoke access to")
        removed = Access.of(read=read, write=write)
        left = self.fabric.acl.revoke(name, principal, removed)
        if self.fabric.acl_mirror is not None:
            self.fabric.acl_mirror.revoke(name, principal, removed)
        return left

    def list_grants(self, topic: str) -> dict[str, Access]:
        """Principal → access on one of this principal's topics."""
        name = self._full(topic)
        self.fabric.acl.require_owner(self.principal, name, "list access to")
        return self.fabric.acl.grants(name)

    # -- clients ---------------------------------------------------------------------------

    def producer(self, *, value_format: ValueFormat = "bytes", **settings: Any) -> FabricProducer:
        """A producer with the fabric's producer settings (``settings`` override them)."""
        cfg = self.fabric.config.producer
        merged = {**self.fabric.client_settings(self.principal), **cfg.librdkafka(), **settings}
        producer = FabricProducer(
            self.fabric.acl,
            self.principal,
            merged,
            value_format=value_format,
            flush_timeout_s=cfg.delivery_timeout_s,
        )

        def close() -> None:
            # Bounded twice: librdkafka's flush by its timeout, the call by a thread (a
            # report that cannot be served must not hold the run past its timeout either).
            call_bounded(
                lambda: producer.close(CLOSE_TIMEOUT_S), CLOSE_TIMEOUT_S + 1, "closing a producer"
            )

        self.fabric.on_close(close)
        return producer

    def consumer(
        self,
        topics: Sequence[str],
        *,
        group: str,
        value_format: ValueFormat = "bytes",
        dead_letter_topic: str | None = None,
        **settings: Any,
    ) -> FabricConsumer:
        """A consumer in group ``<namespace>.<group>`` reading ``topics``.

        Undecodable events go to ``dead_letter_topic`` (a topic this principal may write).
        """
        check_name("group", group)
        sink = None
        if dead_letter_topic is not None:
            sink = dead_letter_sink(self.producer(), self._full(dead_letter_topic))
        merged = {
            **self.fabric.client_settings(self.principal),
            **self.fabric.config.consumer.librdkafka(),
            "group.id": f"{self.namespace}.{group}",
            **settings,
        }
        consumer = FabricConsumer(
            self.fabric.acl,
            self.principal,
            topics,
            merged,
            value_format=value_format,
            dead_letter=sink,
            gap_wait_s=self.fabric.gap_wait_s(),
        )
        self.fabric.on_close(lambda: consumer.close(CLOSE_TIMEOUT_S))
        return consumer

    def trigger(self, spec: TriggerSpec, executor: Any) -> Trigger:
        """Start a trigger: ``spec.handler`` runs on ``executor`` for matching events."""
        trigger = Trigger(self, spec, executor)
        self.fabric.on_close(trigger.stop)
        return trigger


class DetachedSession:
    """A principal's session carried to another process (what a :class:`Session` pickles to).

    Its producers and consumers reach the broker straight from that process, with the
    fabric's settings as they were when it was pickled. It can use the topics of its own
    namespace (an owner may do everything there); grants that other principals made live in
    the fabric's process and do not travel, and topics are managed through the fabric.
    """

    def __init__(
        self,
        principal: str,
        settings: Mapping[str, Any],
        producer_settings: Mapping[str, Any],
        consumer_settings: Mapping[str, Any],
        gap_wait_s: float,
        flush_timeout_s: float,
        prompt_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.principal = principal
        self._prompt_settings = dict(prompt_settings or {})
        self._settings = {**settings, "logger": kafka_log}
        self._producer_settings = dict(producer_settings)
        self._consumer_settings = dict(consumer_settings)
        self._gap_wait_s = gap_wait_s
        self._flush_timeout_s = flush_timeout_s
        self._acl = AccessControl()
        self._acl.add_principal(principal)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """It pickles again as itself."""
        settings = {k: v for k, v in self._settings.items() if k != "logger"}
        return DetachedSession, (
            self.principal,
            settings,
            self._producer_settings,
            self._consumer_settings,
            self._gap_wait_s,
            self._flush_timeout_s,
            self._prompt_settings,
        )

    @property
    def namespace(self) -> str:
        """The namespace this principal owns."""
        return self.principal

    def prompt_settings(self) -> dict[str, Any]:
        """The fabric's :meth:`KafkaEventFabric.prompt_settings`, as they were when pickled."""
        return dict(self._prompt_settings)

    def producer(self, *, value_format: ValueFormat = "bytes", **settings: Any) -> FabricProducer:
        """A producer with the fabric's producer settings (``settings`` override them)."""
        merged = {**self._settings, **self._producer_settings, **settings}
        return FabricProducer(
            self._acl,
            self.principal,
            merged,
            value_format=value_format,
            flush_timeout_s=self._flush_timeout_s,
        )

    def consumer(
        self,
        topics: Sequence[str],
        *,
        group: str,
        value_format: ValueFormat = "bytes",
        **settings: Any,
    ) -> FabricConsumer:
        """A consumer in group ``<namespace>.<group>`` reading ``topics``."""
        check_name("group", group)
        merged = {
            **self._settings,
            **self._consumer_settings,
            "group.id": f"{self.namespace}.{group}",
            **settings,
        }
        return FabricConsumer(
            self._acl,
            self.principal,
            topics,
            merged,
            value_format=value_format,
            gap_wait_s=self._gap_wait_s,
        )


def fabric_of(ctx: RunContext) -> KafkaEventFabric:
    """The opened event fabric of a run (its ``events`` component)."""
    return ctx.component("events", KafkaEventFabric)
