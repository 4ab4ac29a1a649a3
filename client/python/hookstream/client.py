"""Auto-resuming subscribe and retrying publish for hookstream (DESIGN.md §4, §8).

    import hookstream
    for delivered in hookstream.subscribe("127.0.0.1:7070", streams=["live/>"], start="beginning"):
        handle(delivered.event)              # a hookstream.v1.Event
        save(delivered.resume_token)         # resume later with subscribe(..., resume_token=...)
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Callable, Dict, Iterable, Iterator, Mapping, Optional, Sequence, Union

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from hookstream.v1 import event_stream_pb2 as pb
from hookstream.v1 import event_stream_pb2_grpc as pb_grpc

Target = Union[str, grpc.Channel]

# A subscription ends with these only when something is wrong with the request itself; retrying
# cannot help, so they are raised to the caller (DESIGN.md §3.7, §3.9, §4).
FATAL_SUBSCRIBE_CODES = frozenset(
    {
        grpc.StatusCode.OUT_OF_RANGE,  # token older than retention
        grpc.StatusCode.FAILED_PRECONDITION,  # token of another log, or ahead of it
        grpc.StatusCode.INVALID_ARGUMENT,  # bad filter, damaged or forged token
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.DATA_LOSS,
    }
)
# Everything else (UNAVAILABLE from a drain or a broken connection, a CANCELLED this client did not
# cause, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN) is retried with backoff.

# Publish retries these; the client-assigned ids make every retry safe (the server de-duplicates).
# DEADLINE_EXCEEDED: an attempt waits for the channel to connect (wait_for_ready) and may time out
# before the server is back. CANCELLED: this client never cancels its own publish, but a server
# that is shutting down cancels calls that reach it during the drain (they are not stored).
DEFAULT_PUBLISH_RETRY_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)

START_NAMES = {
    "now": pb.SubscribeRequest.START_NOW,
    "beginning": pb.SubscribeRequest.START_BEGINNING,
    "last_per_stream": pb.SubscribeRequest.START_LAST_PER_STREAM,
}


class HookstreamError(Exception):
    """Base class of the errors this package raises."""


class SubscriptionError(HookstreamError):
    """The server refused the subscription for good (OUT_OF_RANGE, FAILED_PRECONDITION, ...).

    ``code`` is the grpc.StatusCode, ``details`` the server's message, ``resume_token`` the token
    the subscription would have resumed from.
    """

    def __init__(self, code: grpc.StatusCode, details: str, resume_token: Optional[str]):
        super().__init__("%s: %s" % (code.name, details))
        self.code = code
        self.details = details
        self.resume_token = resume_token


class SequenceBreakError(HookstreamError):
    """An event's per-stream seq is not the one after the last seen (a gap or a duplicate)."""

    def __init__(self, stream: str, expected_seq: int, got_seq: int, position: int, detail: str = ""):
        super().__init__(
            "seq break on stream %r: expected seq %d, got %d (position %d)%s"
            % (stream, expected_seq, got_seq, position, detail)
        )
        self.stream = stream
        self.expected_seq = expected_seq
        self.got_seq = got_seq
        self.position = position


class Backoff:
    """Exponential backoff with jitter: initial, initial*multiplier, ... capped at maximum."""

    def __init__(self, initial: float = 0.1, maximum: float = 10.0, multiplier: float = 1.6,
                 jitter: float = 0.2, rng: Optional[random.Random] = None):
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._next = initial

    def reset(self) -> None:
        self._next = self.initial

    def next_delay(self) -> float:
        base = self._next
        self._next = min(self.maximum, self._next * self.multiplier)
        return max(0.0, base * (1 + self.jitter * self._rng.uniform(-1, 1)))


def channel(target: str, options: Optional[Sequence] = None) -> grpc.Channel:
    """An insecure channel with options suited to long-lived subscriptions.

    No receive-size limit (a batch can be large) and a reconnect backoff capped at 2 s, so a
    restarted server is found again quickly. For TLS, build your own grpc.secure_channel.
    """
    opts = {
        "grpc.max_receive_message_length": -1,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 2000,
    }
    for key, value in options or ():
        opts[key] = value
    return grpc.insecure_channel(target, options=list(opts.items()))


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(round(seconds * 1e9)))
    return d


class Subscription(Iterator["pb.DeliveredEvent"]):
    """An iterator of ``hookstream.v1.DeliveredEvent`` that resumes by itself.

    Use ``subscribe(...)`` to make one. After a transient failure (UNAVAILABLE, a CANCELLED it did
    not cause, ...) it waits with backoff and subscribes again from the token of the last event it
    handed out, or from a later checkpoint / heartbeat / caught_up token (those arrive only when
    everything before them was handed out). It checks per-stream seq continuity and position
    order across resumes and raises ``SequenceBreakError`` (or calls ``on_seq_break``). A request
    the server refuses for good (OUT_OF_RANGE, FAILED_PRECONDITION, INVALID_ARGUMENT, ...) raises
    ``SubscriptionError``.

    ``resume_token`` is the token to save: after you processed the last event it handed you, it
    covers everything up to there. ``last_seqs`` is the per-stream last seq seen; pass both to a
    later ``subscribe(...)`` to continue with continuity checks across a process restart.
    """

    def __init__(
        self,
        target: Target,
        *,
        streams: Iterable[str] = (),
        types: Iterable[str] = (),
        start: Union[str, int] = "now",
        resume_token: Optional[str] = None,
        last_seqs: Optional[Mapping[str, int]] = None,
        heartbeat_interval: Optional[float] = None,
        max_batch_events: int = 0,
        max_batch_bytes: int = 0,
        on_control: Optional[Callable[[str, "pb.SubscribeResponse"], None]] = None,
        on_seq_break: Optional[Callable[[SequenceBreakError], None]] = None,
        on_retry: Optional[Callable[[grpc.RpcError, float], None]] = None,
        backoff: Optional[Backoff] = None,
        max_retry_time: Optional[float] = None,
        metadata: Optional[Sequence] = None,
    ):
        if isinstance(target, str):
            self._channel = channel(target)
            self._owns_channel = True
        else:
            self._channel = target
            self._owns_channel = False
        self._stub = pb_grpc.EventStreamStub(self._channel)
        self._streams = list(streams)
        self._types = list(types)
        self._start = START_NAMES[start] if isinstance(start, str) else int(start)
        self._token = resume_token or None
        self._heartbeat_interval = heartbeat_interval
        self._max_batch_events = max_batch_events
        self._max_batch_bytes = max_batch_bytes
        self._on_control = on_control
        self._on_seq_break = on_seq_break
        self._on_retry = on_retry
        self._backoff = backoff or Backoff()
        self._max_retry_time = max_retry_time
        self._metadata = list(metadata) if metadata else None
        self._last_seqs: Dict[str, int] = dict(last_seqs or {})
        self._last_position = 0
        self._lock = threading.Lock()  # guards _closed and _call
        self._iterating = threading.Lock()  # held while a thread runs the generator
        self._call = None
        self._closed = False
        self._wake = threading.Event()
        self.log_id: Optional[str] = None
        self.reconnects = 0
        self._gen = self._run()

    # -- public -------------------------------------------------------------------------------

    @property
    def resume_token(self) -> Optional[str]:
        """Token of the last event handed out, or of a later checkpoint; None before any."""
        return self._token

    @property
    def last_seqs(self) -> Dict[str, int]:
        """Per-stream last seq handed out (a copy)."""
        return dict(self._last_seqs)

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> "pb.DeliveredEvent":
        with self._iterating:
            return next(self._gen)

    def close(self) -> None:
        """Ends the subscription (from any thread): iteration stops, nothing is resumed."""
        with self._lock:
            self._closed = True
            call = self._call
        self._wake.set()
        if call is not None:
            call.cancel()
        # Nobody iterating: close the generator here (its cleanup runs now). Otherwise the
        # iterating thread (maybe this one, inside a callback) sees _closed and ends by itself.
        if self._iterating.acquire(blocking=False):
            try:
                self._gen.close()
            finally:
                self._iterating.release()
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _request(self) -> "pb.SubscribeRequest":
        req = pb.SubscribeRequest(streams=self._streams, types=self._types,
                                  max_batch_events=self._max_batch_events,
                                  max_batch_bytes=self._max_batch_bytes)
        if self._token:
            req.resume_token = self._token
        else:
            # Nothing handed out yet: the original start again. (START_NOW gets a caught_up token
            # as soon as it is live, so a retry of it rarely comes here.)
            setattr(req, "from", self._start)
        if self._heartbeat_interval is not None:
            req.heartbeat_interval.CopyFrom(_duration(self._heartbeat_interval))
        return req

    def _check(self, event: "pb.Event") -> None:
        problem = None
        last = self._last_seqs.get(event.stream)
        if last is not None and event.seq != last + 1:
            problem = SequenceBreakError(event.stream, last + 1, event.seq, event.position)
        elif event.position <= self._last_position:
            problem = SequenceBreakError(
                event.stream, (last or 0) + 1, event.seq, event.position,
                ": position not after the previous event's %d" % self._last_position)
        self._last_seqs[event.stream] = event.seq
        self._last_position = max(self._last_position, event.position)
        if problem is not None:
            if self._on_seq_break is None:
                raise problem
            self._on_seq_break(problem)

    def _control(self, kind: str, msg: "pb.SubscribeResponse") -> None:
        if kind == "subscribed":
            self.log_id = msg.subscribed.log_id
        elif kind == "gap":
            # Events were skipped on request (EXPIRED_RESTART_FROM_OLDEST): no continuity across.
            self._last_seqs.clear()
        else:
            body = getattr(msg, kind)
            token = getattr(body, "resume_token", "")
            # Control messages come after every event before them was handed out, so their
            # token never skips an event the application has not seen.
            if token:
                self._token = token
        if self._on_control is not None:
            self._on_control(kind, msg)

    def _run(self) -> Iterator["pb.DeliveredEvent"]:
        failing_since: Optional[float] = None
        try:
            while True:
                with self._lock:
                    if self._closed:
                        return
                    # wait_for_ready: while the server is unreachable the call waits for the channel
                    # to connect (and keeps it trying) instead of failing at once.
                    call = self._stub.Subscribe(self._request(), metadata=self._metadata,
                                                wait_for_ready=True)
                    self._call = call
                try:
                    for msg in call:
                        kind = msg.WhichOneof("message")
                        if kind != "subscribed":  # Past the start: the call works.
                            failing_since = None
                            self._backoff.reset()
                        if kind == "events":
                            for delivered in msg.events.events:
                                self._check(delivered.event)
                                # Once the consumer asks for the next item it is done with this
                                # one: a resume after that starts right behind it.
                                self._token = delivered.resume_token
                                yield delivered
                        elif kind is not None:
                            self._control(kind, msg)
                    error: Optional[grpc.RpcError] = None  # Ended with OK: resume all the same.
                except grpc.RpcError as e:
                    error = e
                finally:
                    with self._lock:
                        self._call = None
                    call.cancel()
                with self._lock:
                    if self._closed:
                        return
                if error is not None and error.code() in FATAL_SUBSCRIBE_CODES:
                    raise SubscriptionError(error.code(), error.details() or "", self._token) from error
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                elif self._max_retry_time is not None and now - failing_since > self._max_retry_time:
                    if error is not None:
                        raise SubscriptionError(error.code(), error.details() or "", self._token) from error
                    raise HookstreamError("subscription keeps ending; giving up")
                delay = self._backoff.next_delay()
                if self._on_retry is not None and error is not None:
                    self._on_retry(error, delay)
                self.reconnects += 1
                self._wake.wait(delay)
        finally:
            if self._owns_channel:
                self._channel.close()


def subscribe(target: Target, **kwargs) -> Subscription:
    """Subscribes and returns a ``Subscription`` (an auto-resuming iterator of DeliveredEvent).

    target: "host:port" (the subscription makes and closes its own channel) or a grpc.Channel.
    streams: stream patterns ("a/*/c", "a/>"); none = all. types: event types ("zlm.*").
    start: "now" (default) | "beginning"; resume_token: a saved token (takes precedence).
    last_seqs: {stream: last seq} saved with the token, to keep checking continuity.
    heartbeat_interval (seconds), max_batch_events, max_batch_bytes: as in SubscribeRequest.
    on_control(kind, SubscribeResponse): every non-event message ("subscribed", "caught_up", ...).
    on_seq_break(SequenceBreakError): report instead of raising. on_retry(error, delay).
    backoff: a Backoff; max_retry_time: give up after the call keeps failing this long (default:
    never). While the server is unreachable a call waits for it (gRPC wait_for_ready).
    metadata: call metadata, e.g. [("authorization", "Bearer ...")].
    """
    return Subscription(target, **kwargs)


def make_event(stream: str, type: str, data: Union[bytes, str] = b"", *, id: Optional[str] = None,
               source: str = "", content_type: str = "", attributes: Optional[Mapping[str, str]] = None,
               time: Optional[float] = None, expected_seq: Optional[int] = None) -> "pb.EventInput":
    """An EventInput with a client-assigned id (a random UUID unless given), so retries dedup."""
    ev = pb.EventInput(id=id or uuid.uuid4().hex, stream=stream, type=type, source=source,
                       content_type=content_type,
                       data=data.encode("utf-8") if isinstance(data, str) else bytes(data),
                       attributes=dict(attributes or {}))
    if time is not None:
        ts = timestamp_pb2.Timestamp()
        ts.FromNanoseconds(int(round(time * 1e9)))
        ev.time.CopyFrom(ts)
    if expected_seq is not None:
        ev.expected_seq = expected_seq
    return ev


def publish(
    target: Target,
    events: Iterable[Union["pb.EventInput", Mapping]],
    *,
    source: Optional[str] = None,
    timeout: float = 10.0,
    retry_timeout: float = 60.0,
    retry_codes: Iterable[grpc.StatusCode] = DEFAULT_PUBLISH_RETRY_CODES,
    backoff: Optional[Backoff] = None,
    metadata: Optional[Sequence] = None,
) -> Sequence["pb.PublishResult"]:
    """Publishes one atomic batch and returns its PublishResults (same order as ``events``).

    Every event gets a client-assigned id before the first attempt (a random UUID where it has
    none), so a retry of a batch whose acknowledgement was lost stores nothing twice: the server
    answers ``duplicate = True`` with the original positions (inside its dedup window, default
    2 minutes). An attempt waits for the channel to connect (gRPC wait_for_ready), at most
    ``timeout`` seconds; UNAVAILABLE, DEADLINE_EXCEEDED and CANCELLED (``retry_codes``) are
    retried with backoff until ``retry_timeout`` seconds have passed. ``source`` fills in events without one.
    Events are EventInput messages or dicts of make_event's arguments.
    """
    batch = []
    for e in events:
        if isinstance(e, pb.EventInput):
            ev = pb.EventInput()
            ev.CopyFrom(e)
            if not ev.id:
                ev.id = uuid.uuid4().hex
        else:
            ev = make_event(**e)
        if source is not None and not ev.source:
            ev.source = source
        batch.append(ev)
    request = pb.PublishRequest(events=batch)
    retry_codes = frozenset(retry_codes)
    backoff = backoff or Backoff(initial=0.05, maximum=2.0)
    own = isinstance(target, str)
    ch = channel(target) if own else target
    try:
        stub = pb_grpc.EventStreamStub(ch)
        give_up = time.monotonic() + retry_timeout
        while True:
            attempt_timeout = max(0.001, min(timeout, give_up - time.monotonic()))
            try:
                # wait_for_ready: an attempt made while the server restarts waits for it (and
                # keeps the channel connecting) instead of failing at once.
                return stub.Publish(request, timeout=attempt_timeout, metadata=metadata,
                                    wait_for_ready=True).results
            except grpc.RpcError as e:
                delay = backoff.next_delay()
                if e.code() not in retry_codes or time.monotonic() + delay >= give_up:
                    raise
                time.sleep(delay)
    finally:
        if own:
            ch.close()
