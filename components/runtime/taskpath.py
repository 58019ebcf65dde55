"""Loom's task path: submit tasks to any executor with dependencies, retries and records.

Fine-grained work goes through here, not through Prefect. A task's arguments may be other
tasks' handles; it is dispatched once they all succeeded, with their values in their place.
Each attempt runs :func:`execute_attempt` on the worker, which stamps start/end times and the
worker id and decides (at execution, from a seeded hash) whether to inject a failure, so a
retry of the same task can succeed.

On a thread pool the path does not pay for one ``Future`` per task: ready tasks go on a queue,
and at most ``workers`` drain loops, each one pool work item, pull from it until it is empty
(self-scheduling, so load balance and latency are those of the pool). Other executors (process
pools, Dask) get at most two submissions in flight per worker; ready tasks beyond them wait on
the lane's queue and leave in batches (:func:`execute_batch`), each a share of what waits
(guided self-scheduling: ``waiting / (2 × workers)``, at most :data:`MAX_BATCH`), so a burst
of small tasks pays one round trip per batch rather than per task, while a few tasks still
leave one by one at once. Each attempt of a batch keeps its own times, worker, CPU seconds,
failure and retry; a worker lost takes its batch's attempts with it, and each is run again.

An executor with a pool per site (``pools``: site → executor, as the ``executor`` group builds
where a recipe's sites set ``workers``) gives the path one lane per pool: a task submitted with
``site=`` runs in that site's pool, others in the first; dependencies cross lanes freely.
"""

from __future__ import annotations

import hashlib
import os
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from components.error_info import ErrorInfo
from components.runtime.protocols import DataMover, LoomExecutor, WorkerHook, WorkerLost

FailureKind = Literal["exception", "zero_division", "import_error"]
# Attempts lost with their worker that a task may re-run beyond its own retries (Dask's
# ``allowed-failures`` default): a dead worker is not the task's failure.
WORKER_LOSS_RETRIES = 3
# Attempts one submission to a process or Dask pool carries at most: a batch's results come
# back together, so a cap keeps one slow attempt from holding many finished ones back.
MAX_BATCH = 64


class InjectedFailure(RuntimeError):
    """The failure that failure injection raises for kind ``exception``."""


class DependencyFailed(RuntimeError):
    """A task did not run because a task it depends on failed."""


@dataclass(frozen=True, slots=True)
class FailureSpec:
    """Inject a failure into a fraction ``rate`` of task attempts.

    Whether attempt ``a`` of task ``t`` fails is a pure function of ``(seed, t, a)``, decided on
    the worker when the attempt runs: runs are repeatable and retries can recover. Only
    attempts that start between ``start`` and ``end`` (Unix seconds) can fail: a fault's window.
    """

    rate: float
    kind: FailureKind
    seed: int
    start: float = 0.0
    end: float = float("inf")

    def fails(self, task_id: int, attempt: int) -> bool:
        """Whether this attempt of this task fails."""
        if not self.start <= time.time() < self.end:
            return False
        digest = hashlib.blake2b(
            f"{self.seed}:{task_id}:{attempt}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "little") / 2.0**64 < self.rate

    def raise_failure(self, task_id: int, attempt: int) -> None:
        """Raise the configured kind of failure."""
        if self.kind == "zero_division":
            _ = 1 / (task_id - task_id)
        if self.kind == "import_error":
            import importlib

            importlib.import_module("loom_injected_missing_module")
        raise InjectedFailure(f"injected failure in task {task_id}, attempt {attempt}")


_worker_prefix: tuple[int, str] = (-1, "")


def _worker_id() -> str:
    global _worker_prefix
    pid = os.getpid()
    if _worker_prefix[0] != pid:  # recomputed once per process
        _worker_prefix = (pid, f"{socket.gethostname()}:{pid}")
    return f"{_worker_prefix[1]}:{threading.current_thread().name}"


AttemptResult = tuple[bool, Any, float, float, str, float, dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class WithKeywords:
    """``fn`` called with its last ``len(names)`` positional arguments as keywords.

    Keyword arguments travel as trailing positional ones, so dependencies, the data mover's
    proxies and their release treat them like any other argument.
    """

    fn: Callable[..., Any]
    names: tuple[str, ...]

    def __call__(self, *args: Any) -> Any:
        """Call ``fn`` with the trailing arguments by name."""
        cut = len(args) - len(self.names)
        return self.fn(*args[:cut], **dict(zip(self.names, args[cut:], strict=True)))


class Shipped:
    """Arguments in an opaque box, for a path with a data mover.

    Dask walks the tuples and lists it is given, and touching a proxy there (``isinstance``,
    ``getattr(__dask_future__)``) would fetch it on the client.
    """

    __slots__ = ("args",)

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args

    def __reduce__(self) -> tuple[type[Shipped], tuple[tuple[Any, ...]]]:
        return Shipped, (self.args,)


def execute_attempt(
    fn: Callable[..., Any],
    args: tuple[Any, ...] | Shipped,
    task_id: int,
    attempt: int,
    failure: FailureSpec | None,
    hook: WorkerHook | None = None,
) -> AttemptResult:
    """Run one attempt of a task on a worker (a process or Dask worker).

    Returns:
        ``(ok, value, start, end, worker, cpu_s, moved)``: ``cpu_s`` is the worker process's
        CPU time during the attempt; ``moved`` the data-movement record where a data mover's
        hook ran. On failure ``value`` is ``(type, message)`` so that unpicklable exceptions
        still travel back from process and Dask workers.

    """
    cpu = time.process_time()
    if isinstance(args, Shipped):
        args = args.args
    ok, value, start, end, moved = _run_attempt(fn, args, task_id, attempt, failure, hook)
    return ok, value, start, end, _worker_id(), time.process_time() - cpu, moved


class _Batch:
    """Attempts in an opaque box (as :class:`Shipped`: Dask walks the lists it is given)."""

    __slots__ = ("attempts",)

    def __init__(self, attempts: list[tuple[Callable[..., Any], Any, int, int]]) -> None:
        self.attempts = attempts


def execute_batch(
    batch: _Batch, failure: FailureSpec | None, hook: WorkerHook | None = None
) -> list[AttemptResult]:
    """Run a batch's attempts one after another on a worker: each one's :func:`execute_attempt`."""
    return [
        execute_attempt(fn, args, task_id, attempt, failure, hook)
        for fn, args, task_id, attempt in batch.attempts
    ]


def _run_attempt(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    task_id: int,
    attempt: int,
    failure: FailureSpec | None,
    hook: WorkerHook | None = None,
) -> tuple[bool, Any, float, float, dict[str, Any] | None]:
    start = time.time()
    moved: dict[str, Any] | None = None
    try:
        if failure is not None and failure.fails(task_id, attempt):
            failure.raise_failure(task_id, attempt)
        if hook is None:
            value = fn(*args)
        else:
            value, moved = hook(fn, args)
        ok = True
    except Exception as exc:
        value = ErrorInfo.of(exc)
        ok = False
    return ok, value, start, time.time(), moved


class _ThreadCpu:
    """Per-task CPU time of one pool thread's drain loops (see :meth:`TaskPath._drain`).

    The thread's CPU clock is read through its clock id where the OS gives one (Linux), so the
    last slice can be counted by :meth:`TaskPath.wait` from the waiting thread and a drain loop
    that runs out of work reads no clock.
    """

    SLICE_S = 0.001

    def __init__(self) -> None:
        self.pending: list[TaskHandle] = []
        self._lock = threading.Lock()  # the pool thread and wait() may both flush
        self._read: Callable[[], float]
        try:
            clock = time.pthread_getcpuclockid(threading.get_ident())
            self._read = partial(time.clock_gettime, clock)
            self.remote = True
        except (AttributeError, OSError):
            self._read = time.thread_time
            self.remote = False
        self.cpu = self._read()
        self.since = time.time()

    def flush(self) -> None:
        """Share the thread time since the last flush among the tasks run since."""
        with self._lock:
            if not self.pending:
                return
            now = self._read()
            used, self.cpu = now - self.cpu, now
            tasks = self.pending[:]
            self.pending.clear()  # the same list: the drain loop appends to it
            self.since = tasks[-1].end
        walls = [max(0.0, h.end - h.start) for h in tasks]
        total = sum(walls)
        for handle, wall in zip(tasks, walls, strict=True):
            handle.cpu_s += used * (wall / total if total > 0 else 1 / len(tasks))


def _nbytes(value: Any) -> int:
    # type(), not isinstance(): isinstance reads __class__, which resolves a proxy.
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return len(value)
    if kind is memoryview:
        return int(value.nbytes)
    return 0


def _dependency_error(parent: TaskHandle) -> ErrorInfo:
    # The parent's own error travels down the chain: its root cause, never only "failed".
    cause = parent.error.line if parent.error is not None else "unknown cause"
    if parent.error is not None and parent.error.type == DependencyFailed.__name__:
        cause = parent.error.message.split(": ", 1)[-1]
    return ErrorInfo(DependencyFailed.__name__, f"parent task {parent.task_id} failed: {cause}")


class TaskHandle:
    """One task's state and record; pass it as an argument to make another task depend on it."""

    __slots__ = (
        "args",
        "attempts",
        "bytes_in",
        "bytes_out",
        "children",
        "cpu_s",
        "created",
        "dispatched",
        "done",
        "end",
        "error",
        "finished",
        "fn",
        "keep",
        "lane",
        "lost",
        "moved",
        "name",
        "parents",
        "pending",
        "retry_causes",
        "start",
        "success",
        "task_id",
        "value",
        "worker",
    )

    def __init__(self, task_id: int, name: str, fn: Callable[..., Any], args: tuple[Any, ...]):
        self.task_id = task_id
        self.name = name
        self.fn = fn
        self.args = args
        self.parents: list[int] = []
        self.children: list[TaskHandle] = []
        self.pending = 0
        self.attempts = 0
        self.lost = 0  # attempts lost with their worker
        self.retry_causes: list[str] = []
        self.created = time.time()
        self.dispatched = 0.0
        self.start = 0.0
        self.end = 0.0
        self.done = 0.0
        self.worker = ""
        self.bytes_in = 0
        self.bytes_out = 0
        self.cpu_s = 0.0
        self.success = False
        self.finished = False
        self.error: ErrorInfo | None = None
        self.value: Any = None
        self.moved: dict[str, Any] | None = None
        self.keep = False
        self.lane: _Lane

    def record(self) -> dict[str, Any]:
        """The task's record: timestamps (Unix seconds), worker, bytes, outcome, attempts."""
        return {
            "task_id": self.task_id,
            "name": self.name,
            "parent_task_ids": self.parents,
            "created_time": self.created,
            "submit_time": self.dispatched,
            "start_time": self.start,
            "end_time": self.end,
            "done_time": self.done,
            "worker": self.worker,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "cpu_s": self.cpu_s,
            "success": self.success,
            "attempts": self.attempts,
            "retry_causes": self.retry_causes,
            **({"moved": self.moved} if self.moved is not None else {}),
            **({"site": self.lane.site} if self.lane.site is not None else {}),
            "exception": None if self.error is None else self.error.to_dict(),
        }


class _Lane:
    """One pool of the path's executor and, on a thread pool, its ready tasks and drain loops."""

    __slots__ = (
        "drainers",
        "executor",
        "in_flight",
        "inline",
        "max_drainers",
        "max_in_flight",
        "ready",
        "site",
    )

    def __init__(self, site: str | None, executor: LoomExecutor) -> None:
        self.site = site
        self.executor = executor
        self.inline = isinstance(executor, ThreadPoolExecutor)
        self.ready: deque[TaskHandle] = deque()
        self.drainers = 0
        self.max_drainers = max(1, int(getattr(executor, "workers", 1)))
        # Other pools: batches submitted and not yet back, and how many may be.
        self.in_flight = 0
        self.max_in_flight = 2 * self.max_drainers


class TaskPath:
    """Submits tasks to an executor and keeps their records.

    Args:
        executor: Where attempts run.
        max_attempts: Attempts per task before it counts as failed (1 = no retries).
        failure: Optional failure injection.
        mover: How inputs and results travel (the ``dataflow`` group); None: by value. Values
            it holds are freed when their last consumer finished or when the path closes:
            read results before leaving the ``with`` block.

    """

    def __init__(
        self,
        executor: LoomExecutor,
        *,
        max_attempts: int = 1,
        failure: FailureSpec | None = None,
        mover: DataMover | None = None,
    ) -> None:
        self._max_attempts = max_attempts
        self._failure = failure
        self._mover = mover
        self._hook = None if mover is None else mover.worker
        self._lock = threading.Lock()
        self._all_done = threading.Event()
        # list.append is atomic and the length only grows: finishes are counted without a lock.
        self._finished: list[int] = []
        self._finish_order: queue.SimpleQueue[TaskHandle] = queue.SimpleQueue()
        self.tasks: list[TaskHandle] = []
        pools: Mapping[str, LoomExecutor] | None = getattr(executor, "pools", None)
        self._lanes: dict[str | None, _Lane] = (
            {None: _Lane(None, executor)}
            if not pools
            else {site: _Lane(site, pool) for site, pool in pools.items()}
        )
        self._default_lane = next(iter(self._lanes.values()))
        # Each pool thread's CPU meter; the last slices are counted by wait() (see _drain).
        self._meters: dict[int, _ThreadCpu] = {}
        # Other executors: dispatches triggered from their callbacks go through this thread, as
        # submitting from a pool's own callback thread can block it (process pool wake-up pipe,
        # Dask event loop).
        self._queue: queue.SimpleQueue[TaskHandle | _Lane | None] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        if not all(lane.inline for lane in self._lanes.values()):
            self._dispatcher = threading.Thread(
                target=self._dispatch_loop, name="loom-dispatch", daemon=True
            )
            self._dispatcher.start()

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str = "task",
        keep: bool = False,
        kwargs: Mapping[str, Any] | None = None,
        site: str | None = None,
    ) -> TaskHandle:
        """Submit ``fn(*args, **kwargs)``; handles among the arguments become dependencies.

        With a data mover, a value other tasks consume is freed after the last of them;
        ``keep=True`` holds it until the path closes, for the caller to read. ``site`` picks
        the pool where the executor has one per site (else it is ignored: one pool serves all).

        Raises:
            KeyError: The executor has pools by site, none of them ``site``.

        """
        if kwargs:
            fn = WithKeywords(fn, tuple(kwargs))
            args = (*args, *kwargs.values())
        handle = TaskHandle(len(self.tasks), name, fn, args)
        handle.keep = keep
        handle.lane = self._lane(site)
        self._all_done.clear()
        self.tasks.append(handle)  # before dispatch, so a finished task is always counted
        # type(), not isinstance(): isinstance reads __class__, which resolves a proxy.
        parents = [a for a in args if type(a) is TaskHandle] if args else None
        if not parents:  # the common case takes no lock
            self._dispatch(handle)
            return handle
        failed_parent: TaskHandle | None = None
        with self._lock:
            for parent in parents:
                handle.parents.append(parent.task_id)
                if not parent.finished:
                    parent.children.append(handle)
                    handle.pending += 1
                elif not parent.success:
                    failed_parent = parent
                elif self._mover is not None:  # one more consumer of a finished value
                    self._mover.retain(parent.value, 1)
        if failed_parent is not None:
            with self._lock:
                handle.pending = 0
                handle.error = _dependency_error(failed_parent)
            self._finish(handle)
        elif handle.pending == 0:
            self._dispatch(handle)
        return handle

    def _lane(self, site: str | None) -> _Lane:
        if site is None or None in self._lanes:
            return self._default_lane
        try:
            return self._lanes[site]
        except KeyError:
            raise KeyError(
                f"site {site!r} has no pool; the executor's sites: "
                f"{', '.join(str(s) for s in self._lanes)}"
            ) from None

    @property
    def sites(self) -> list[str]:
        """The sites with a pool of their own (none: one pool serves every task)."""
        return [site for site in self._lanes if site is not None]

    def map(
        self,
        fn: Callable[..., Any],
        items: Iterable[Any],
        *,
        name: str = "task",
        keep: bool = False,
        kwargs: Mapping[str, Any] | None = None,
    ) -> list[TaskHandle]:
        """One task ``fn(item, **kwargs)`` per item; shared keyword values are sent once."""
        return [self.submit(fn, item, name=name, keep=keep, kwargs=kwargs) for item in items]

    @property
    def completed(self) -> int:
        """Number of finished tasks."""
        return len(self._finished)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted task finished; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.completed < len(self.tasks):
            self._all_done.clear()
            if self.completed >= len(self.tasks):  # re-check: a finish may precede the clear
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._all_done.wait(remaining)
        for meter in list(self._meters.values()):
            meter.flush()  # the tasks of the last slices, from this thread if need be
        return True

    def next_finished(self, timeout: float | None = None) -> TaskHandle | None:
        """The next task to finish, in finishing order, each once; None after ``timeout`` s.

        For coordinators that react to each result as it comes (asynchronous aggregation).
        """
        try:
            return self._finish_order.get(timeout=timeout)
        except queue.Empty:
            return None

    def drop(self, handles: Iterable[TaskHandle]) -> None:
        """Forget the values and arguments of tasks; their records stay.

        A coordinator that runs many rounds calls this after :meth:`wait` once a round's
        results are read, so the path does not hold every intermediate value until it closes
        (with a data mover the stored values are already freed after their last consumer;
        this drops what remains: proxies, or the values themselves when sent by value).

        Raises:
            ValueError: Some task on the path is unfinished (it may still need a value).

        """
        if self.completed < len(self.tasks):
            raise ValueError("drop() needs every task finished: call wait() first")
        for handle in handles:
            handle.value = None
            handle.args = ()

    def iter_progress(self, interval_s: float = 0.1) -> Iterator[int]:
        """Yield the number of finished tasks every ``interval_s`` until all are finished."""
        while not self.wait(interval_s):
            yield self.completed
        yield self.completed

    def close(self) -> None:
        """Stop the dispatcher thread; the data mover frees what it still holds."""
        if self._dispatcher is not None:
            self._queue.put(None)
            self._dispatcher.join()
            self._dispatcher = None
        if self._mover is not None:
            self._mover.discard()

    def __enter__(self) -> TaskPath:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _dispatch_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if type(item) is _Lane:
                self._send(item)
            else:
                self._dispatch(item)  # type: ignore[arg-type]

    def _redispatch(self, handle: TaskHandle) -> None:
        """Dispatch a retry or a newly ready child from a completion (never blocks a pool)."""
        if handle.lane.inline:
            self._dispatch(handle)
        else:
            self._queue.put(handle)

    def _dispatch(self, handle: TaskHandle) -> None:
        handle.attempts += 1
        if handle.attempts == 1:
            if handle.parents:
                handle.args = tuple(a.value if type(a) is TaskHandle else a for a in handle.args)
            if handle.args:
                handle.bytes_in = sum(_nbytes(a) for a in handle.args)
                if self._mover is not None:
                    handle.args = self._mover.send(handle.args)
            handle.dispatched = time.time()
        lane = handle.lane
        lane.ready.append(handle)
        if lane.inline:
            if lane.drainers < lane.max_drainers:  # unlocked peek; confirmed under the lock
                self._start_drainer(lane)
        elif lane.in_flight < lane.max_in_flight:  # likewise
            self._send(lane)

    def _send(self, lane: _Lane) -> None:
        """Submit a batch of the lane's ready attempts, if a submission may be in flight."""
        with self._lock:
            if lane.in_flight >= lane.max_in_flight or not lane.ready:
                return
            lane.in_flight += 1
            ready = lane.ready
            size = min(len(ready), MAX_BATCH, max(1, len(ready) // lane.max_in_flight))
            batch = [ready.popleft() for _ in range(size)]
        shipped = self._mover is not None
        try:
            future = lane.executor.submit(
                execute_batch,
                _Batch(
                    [
                        (h.fn, Shipped(h.args) if shipped else h.args, h.task_id, h.attempts)
                        for h in batch
                    ]
                ),
                self._failure,
                self._hook,
            )
        except Exception as exc:  # executor shut down or broken: nothing queued can run
            with self._lock:
                lane.in_flight -= 1
                batch += lane.ready
                lane.ready.clear()
            for handle in batch:
                self._fail_undispatched(handle, exc)
            return
        future.add_done_callback(partial(self._batch_done, lane, batch))

    def _batch_done(
        self, lane: _Lane, batch: list[TaskHandle], future: Future[list[AttemptResult]]
    ) -> None:
        try:
            results: list[AttemptResult] | None = future.result()
            lost = None
        except BaseException as exc:  # the worker died or the batch was cancelled
            results, lost = None, ErrorInfo.of(exc)
        with self._lock:
            lane.in_flight -= 1
        self._queue.put(lane)  # the next batch, from the dispatcher: never from a pool callback
        for index, handle in enumerate(batch):
            if results is None:
                self._complete(handle, False, lost)
                continue
            ok, value, handle.start, handle.end, handle.worker, cpu, handle.moved = results[index]
            handle.cpu_s += cpu
            self._complete(handle, ok, value)

    def _start_drainer(self, lane: _Lane) -> None:
        with self._lock:
            if lane.drainers >= lane.max_drainers:
                return
            lane.drainers += 1
        try:
            lane.executor.submit(self._drain, lane)
        except Exception as exc:  # executor shut down: nothing queued can run any more
            with self._lock:
                lane.drainers -= 1
            while lane.ready:
                self._fail_undispatched(lane.ready.popleft(), exc)

    def _drain(self, lane: _Lane) -> None:
        """Run ready tasks on this pool thread until none is left.

        Each task's CPU time is this thread's: read once per task that runs a millisecond or
        more, and once per millisecond for shorter ones, whose slice of thread time is then
        shared by wall time (a clock read costs about a no-op task's run here).
        """
        ready, failure, hook, worker = lane.ready, self._failure, self._hook, _worker_id()
        ident = threading.get_ident()
        meter = self._meters.get(ident)
        if meter is None:
            meter = self._meters[ident] = _ThreadCpu()
        pending, slice_s = meter.pending, _ThreadCpu.SLICE_S  # the hot loop's own names
        while True:
            try:
                handle = ready.popleft()
            except IndexError:
                if not meter.remote:
                    meter.flush()  # no clock readable from other threads: count now
                # Give up the slot, then look again: a task queued by a producer that saw
                # every slot taken is either seen here or sees the freed slot itself.
                with self._lock:
                    lane.drainers -= 1
                if not ready:
                    return
                with self._lock:
                    if lane.drainers >= lane.max_drainers:
                        return
                    lane.drainers += 1
                continue
            ok, value, handle.start, handle.end, handle.moved = _run_attempt(
                handle.fn, handle.args, handle.task_id, handle.attempts, failure, hook
            )
            handle.worker = worker
            pending.append(handle)
            if handle.end - meter.since >= slice_s:
                meter.flush()
            self._complete(handle, ok, value)

    def _complete(self, handle: TaskHandle, ok: bool, value: Any) -> None:
        if not ok:
            lost = isinstance(value, ErrorInfo) and value.type == WorkerLost.__name__
            if lost and handle.lost < WORKER_LOSS_RETRIES:
                handle.lost += 1
            allowed = self._max_attempts + handle.lost  # lost attempts do not count
            if handle.attempts < allowed:
                handle.retry_causes.append(value.line if isinstance(value, ErrorInfo) else "?")
                self._redispatch(handle)
                return
        handle.done = time.time()
        handle.success = ok
        if ok:
            handle.value = value
            handle.bytes_out = _nbytes(value)
            if handle.moved is not None:
                handle.bytes_out = handle.moved.get("bytes_out", handle.bytes_out)
        else:
            handle.error = value
        self._finish(handle)

    def _settle(self, handle: TaskHandle) -> None:
        """Under the lock: the finished task's value gains its waiting consumers.

        The task stops holding its inputs: its parents' values and what ``send`` made.
        """
        assert self._mover is not None
        if handle.success:
            self._mover.retain(handle.value, len(handle.children) + handle.keep)
        if handle.attempts:  # dispatched: its shipped arguments hold every input
            for arg in handle.args:
                self._mover.release(arg)
        else:  # failed before dispatch: only its parents' values were held for it
            for task_id in handle.parents:
                parent = self.tasks[task_id]
                if parent.success:
                    self._mover.release(parent.value)

    def _fail_undispatched(self, handle: TaskHandle, exc: Exception) -> None:
        handle.error = ErrorInfo.of(exc)
        self._finish(handle)

    def _finish(self, first: TaskHandle) -> None:
        # Iterative: a failure propagates down a chain of any length without recursion.
        work = [first]
        while work:
            handle = work.pop()
            if not handle.done:
                handle.done = time.time()
            ready: list[TaskHandle] = []
            with self._lock:
                handle.finished = True
                if self._mover is not None:
                    self._settle(handle)
                for child in handle.children:
                    child.pending -= 1
                    if child.error is not None:
                        continue  # already failed through another parent
                    if not handle.success:
                        child.error = _dependency_error(handle)
                        work.append(child)
                    elif child.pending == 0:
                        ready.append(child)
                handle.children = []
            self._finished.append(handle.task_id)
            self._finish_order.put(handle)
            if len(self._finished) >= len(self.tasks):
                self._all_done.set()
            for child in ready:
                self._redispatch(child)
