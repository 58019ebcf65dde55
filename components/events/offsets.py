"""Which offsets a consumer has returned: stored for the next commit, and never past a gap.

A consumer stores the offset after each event it returns, and commits what is stored. The
store is explicit (``enable.auto.offset.store=false``) so that events dropped here are never
committed.

On a Kafka cluster a partition's offsets are dense (outside compacted and transactional
topics): a consumer's next event is at the offset after its last one. The embedded tansu
broker breaks this under concurrent producers: a fetch can return a batch while an earlier
batch of the same partition is still being written, and a consumer whose position moves
past the earlier batch never reads it (measured: 242 to 1,661 of 160,000 events lost in
one of three runs of four producers). With ``gap_wait_s`` > 0 the tracker notices the jump,
seeks the partition back to the first missing offset and drops what came after the jump;
the missing batch is there a few milliseconds later. A jump still there after
``gap_wait_s`` is accepted with a warning (a real gap: a compacted or transactional topic).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, Message, TopicPartition

log = logging.getLogger(__name__)

_partition = Message.partition
_topic = Message.topic

Key = tuple[str, int]  # (topic, partition)


class ReturnedOffsets:
    """The next offset of every assigned partition of one consumer, and its pending jumps."""

    def __init__(
        self,
        client: Consumer,
        gap_wait_s: float,
        *,
        single_topic: bool,
        from_log_start: bool,
    ) -> None:
        """Track ``client``'s partitions.

        Args:
            client: The consumer; created with ``enable.auto.offset.store=false``.
            gap_wait_s: How long to re-read a partition whose offsets jump (0: never).
            single_topic: The consumer reads one topic (checks need not compare topics).
            from_log_start: A group without committed offsets starts at the log start
                (``auto.offset.reset=earliest``); otherwise its first event sets the start.

        """
        self.client = client
        self.gap_wait_s = gap_wait_s
        self.single_topic = single_topic
        self.from_log_start = from_log_start
        self.next: dict[Key, int] = {}
        self.jumps: dict[Key, float] = {}  # partition → when its jump was first seen
        self.rereads = 0

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """Expect the group's committed offsets (or the log start, when there are none)."""
        if self.gap_wait_s <= 0:
            return
        try:
            committed = self.client.committed(list(partitions), timeout=10)
            for tp in committed:
                offset = tp.offset
                if offset == OFFSET_INVALID and self.from_log_start:
                    offset, _ = self.client.get_watermark_offsets(tp, timeout=10, cached=False)
                if offset >= 0:
                    self.next[(tp.topic, tp.partition)] = offset
        except KafkaException as exc:  # then the first event read sets the start
            log.warning("could not look up where the assigned partitions start: %s", exc)

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Forget partitions this consumer no longer reads."""
        for tp in partitions:
            self.next.pop((tp.topic, tp.partition), None)
            self.jumps.pop((tp.topic, tp.partition), None)

    def returned(self, messages: list[Any]) -> list[Any]:
        """Store the offsets of ``messages`` and return them, up to any partition's jump."""
        n = len(messages)
        first, last = messages[0], messages[-1]
        parts = list(map(_partition, messages))
        if parts.count(parts[0]) == n and (
            self.single_topic or list(map(_topic, messages)).count(first.topic()) == n
        ):
            # The usual case: one partition, dense offsets, going on where the last batch ended.
            key: Key = (first.topic(), first.partition())
            start = first.offset()
            if self.gap_wait_s <= 0 or (
                self.next.get(key, start) == start and last.offset() - start == n - 1
            ):
                self.next[key] = last.offset() + 1
                self.jumps.pop(key, None)
                self.client.store_offsets(message=last)
                return messages
        return self._each(messages)

    def _each(self, messages: list[Any]) -> list[Any]:
        kept: list[Any] = []
        rereading: set[Key] = set()
        read: set[Key] = set()
        now = time.monotonic()
        for message in messages:
            key = (message.topic(), message.partition())
            if key in rereading:
                continue
            offset = message.offset()
            expected = self.next.get(key, offset)
            if self.gap_wait_s > 0 and offset > expected:
                since = self.jumps.setdefault(key, now)
                if now - since < self.gap_wait_s:
                    self._reread(key, expected)
                    rereading.add(key)
                    continue
                log.warning(
                    "%s[%d]: offsets jump from %d to %d for %.1f s; reading on from %d",
                    key[0],
                    key[1],
                    expected,
                    offset,
                    now - since,
                    offset,
                )
            self.jumps.pop(key, None)
            self.next[key] = offset + 1
            kept.append(message)
            read.add(key)
        if read:
            self.client.store_offsets(
                offsets=[TopicPartition(t, p, self.next[(t, p)]) for t, p in read]
            )
        return kept

    def _reread(self, key: Key, offset: int) -> None:
        self.rereads += 1
        try:
            self.client.seek(TopicPartition(key[0], key[1], offset))
        except KafkaException as exc:
            log.warning("%s[%d]: could not re-read from %d (%s)", key[0], key[1], offset, exc)
