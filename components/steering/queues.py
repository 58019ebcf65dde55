"""Colmena's in-process pipe queues, safe for several agents sending at once.

A Thinker's agents are threads, and several of them may send requests at the same moment (a
task submitter and an event responder, say). ``multiprocessing.Connection.send`` writes a
message over 16 KiB as two writes, so two threads sending large messages on one pipe interleave
their bytes and the reader fails (``UnpicklingError: invalid load key``; found with the
reallocation policy, whose retrain request carries 1,000 candidates). Colmena's ``PipeQueues``
has no lock; these queues take one per pipe end. The server's shallow copy shares them.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

from colmena.queue.python import PipeQueues


class LockedPipeQueues(PipeQueues):
    """``PipeQueues`` whose senders take turns on each pipe."""

    def __init__(self, topics: Collection[str] = (), **options: Any) -> None:
        super().__init__(topics, **options)
        self._request_lock = threading.Lock()
        self._result_locks = {topic: threading.Lock() for topic in self.topics}

    def _send_request(self, message: str, topic: str) -> None:
        with self._request_lock:
            super()._send_request(message, topic)

    def _send_result(self, message: str, topic: str) -> None:
        with self._result_locks[topic]:
            super()._send_result(message, topic)
