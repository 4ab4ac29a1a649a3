"""Tests of the Python client against the real hookstreamd (and a scripted fake for error paths).

The randomized test prints its seed; HOOKSTREAM_CLIENT_SEED=<seed> replays its schedule.
Run through ctest (python_client_test), or by hand:
    HOOKSTREAMD=build/server/main/hookstreamd PYTHONPATH=build/client/python/gen:client/python \
        /usr/bin/python3 -m unittest -v tests.test_client      # in client/python
"""

import collections
import concurrent.futures
import faulthandler
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

import hookstream
from hookstream import pb, pb_grpc

from tests.server_process import ServerProcess, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "hookstream_example.py")

STREAMS = ["poly/py/cam%d" % i for i in range(8)]
# HOOKSTREAM_CLIENT_SCALE=N multiplies the work of the randomized test (a longer soak by hand).
SCALE = int(os.environ.get("HOOKSTREAM_CLIENT_SCALE", "1"))
INITIAL_EVENTS = 1500 * SCALE  # published before subscribing
LIVE_EVENTS = 1000 * SCALE  # published while the subscriber runs, across the server restart
CUTS = 10 * SCALE  # random disconnects of the subscriber
FAST_BACKOFF = dict(initial=0.02, maximum=0.5)


def fast_backoff():
    return hookstream.Backoff(**FAST_BACKOFF)


class RealServerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="hookstream_py_test_")
        self.addCleanup(self.tmp.cleanup)
        self.servers = []
        self.server = self.new_server("data")

    def new_server(self, name):
        server = ServerProcess(os.path.join(self.tmp.name, name),
                               os.path.join(self.tmp.name, name + ".log"))
        self.servers.append(server)
        self.addCleanup(server.stop)  # always, by PID, whatever happens
        server.start()
        return server

    def fail_with_log(self, msg):
        faulthandler.dump_traceback(all_threads=True)  # where each thread is stuck
        self.fail("%s\n--- hookstreamd log ---\n%s" % (msg, self.server.log()))

    # -------------------------------------------------------------------------------------------

    def test_publish_subscribe_cut_restart_resume(self):
        seed = int(os.environ.get("HOOKSTREAM_CLIENT_SEED", random.randrange(1 << 31)))
        print("\npython_client_test seed: %d (HOOKSTREAM_CLIENT_SEED=%d replays it)" % (seed, seed),
              flush=True)
        rng = random.Random(seed)
        total = INITIAL_EVENTS + LIVE_EVENTS
        port = self.server.port
        published = {}  # id -> EventInput
        acks = {}  # id -> (position, seq)
        ack_lock = threading.Lock()

        def make_batch(start, count):
            batch = []
            for n in range(start, start + count):
                stream = rng.choice(STREAMS)
                data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
                ev = hookstream.make_event(stream, "poly.test", data, source="py-test",
                                           attributes={"n": str(n)})
                published[ev.id] = ev
                batch.append(ev)
            return batch

        def record(batch, results):
            self.assertEqual(len(results), len(batch))
            with ack_lock:
                for ev, r in zip(batch, results):
                    self.assertEqual(r.id, ev.id)
                    if ev.id in acks:
                        self.assertEqual(acks[ev.id], (r.position, r.seq), "dedup moved an event")
                    acks[ev.id] = (r.position, r.seq)

        # 1. History: publish in random batches with client-assigned ids; re-sending a batch (a
        # retry whose ack was lost) stores nothing and answers with the original positions.
        ch = hookstream.channel(self.server.target)
        self.addCleanup(ch.close)
        n = 0
        first = None
        while n < INITIAL_EVENTS:
            count = min(rng.randint(1, 50), INITIAL_EVENTS - n)
            batch = make_batch(n, count)
            record(batch, hookstream.publish(ch, batch))
            first = first or batch
            n += count
        again = hookstream.publish(ch, first)
        self.assertTrue(all(r.duplicate for r in again))
        self.assertEqual([(r.position, r.seq) for r in again], [acks[e.id] for e in first])

        # Live batches are made up front (one rng, one thread) and sent by a publisher thread.
        live_batches = []
        while n < total:
            count = min(rng.randint(1, 30), total - n)
            live_batches.append(make_batch(n, count))
            n += count
        cut_at = sorted(rng.sample(range(1, total - 1), CUTS))
        cut_kind = {c: rng.choice(["cancel_call", "close_channel"]) for c in cut_at}
        restart_at = rng.randint(total // 4, 3 * total // 4)
        save_at = rng.randint(1, total - 1)
        live_start_at = rng.randint(1, INITIAL_EVENTS)
        print("cuts: %s; restart after %d events; token saved after %d; live publishing from %d"
              % ([(c, cut_kind[c]) for c in cut_at], restart_at, save_at, live_start_at), flush=True)

        received = []  # (id, stream, seq, position, data, attributes)
        saved = {}
        state = {"sub": None, "error": None, "done": False, "reconnects": 0, "breaks": []}
        live_go = threading.Event()
        stop = threading.Event()
        progress = threading.Condition()

        def new_sub(token=None, last_seqs=None):
            return hookstream.subscribe(
                "127.0.0.1:%d" % port, start="beginning", resume_token=token,
                last_seqs=last_seqs, backoff=fast_backoff(), max_batch_events=rng.randint(1, 64),
                on_seq_break=state["breaks"].append)

        def consume():
            try:
                sub = new_sub()
                state["sub"] = sub
                while len(received) < total and not stop.is_set():
                    try:
                        d = next(sub)
                    except StopIteration:
                        break
                    e = d.event
                    received.append((e.id, e.stream, e.seq, e.position, e.data,
                                     dict(e.attributes)))
                    count = len(received)
                    if count == live_start_at:
                        live_go.set()
                    if count == save_at:
                        # What an application persists: the last processed event's token.
                        saved.update(token=d.resume_token, last_seqs=sub.last_seqs, count=count)
                    if count in cut_kind:
                        if cut_kind[count] == "cancel_call":
                            # A CANCELLED the helper did not cause: it must resume by itself.
                            call = sub._call
                            if call is not None:
                                call.cancel()
                        else:
                            # The application drops the channel and resumes on a fresh one.
                            state["reconnects"] += sub.reconnects
                            token, seqs = sub.resume_token, sub.last_seqs
                            sub.close()
                            sub = new_sub(token, seqs)
                            state["sub"] = sub
                    with progress:
                        progress.notify_all()
                state["reconnects"] += sub.reconnects
                sub.close()
            except BaseException as e:  # noqa: B902 - reported by the main thread
                state["error"] = e
            finally:
                state["done"] = True
                live_go.set()
                with progress:
                    progress.notify_all()

        def publish_live():
            try:
                live_go.wait()
                pch = hookstream.channel("127.0.0.1:%d" % port)
                try:
                    for batch in live_batches:
                        if stop.is_set():
                            return
                        record(batch, hookstream.publish(pch, batch, backoff=fast_backoff(),
                                                         retry_timeout=45 * SCALE))
                finally:
                    pch.close()
            except BaseException as e:  # noqa: B902
                state["publish_error"] = e
                with progress:
                    progress.notify_all()

        consumer = threading.Thread(target=consume, name="consumer", daemon=True)
        publisher = threading.Thread(target=publish_live, name="publisher", daemon=True)
        deadline = time.monotonic() + 45 * SCALE
        consumer.start()
        publisher.start()
        try:
            # 2. The server restarts once under the subscriber and the publisher (from this
            # thread: the server dies with the thread that spawned it).
            with progress:
                ok = progress.wait_for(lambda: len(received) >= restart_at or state["done"],
                                       timeout=deadline - time.monotonic())
            if not ok:
                self.fail_with_log("stalled at %d of %d events before the restart"
                                   % (len(received), total))
            if not state["done"]:
                code = self.server.terminate()
                self.assertEqual(code, 0, "hookstreamd did not drain cleanly")
                self.server.start(port=port)
            with progress:
                ok = progress.wait_for(lambda: state["done"] or state.get("publish_error"),
                                       timeout=deadline - time.monotonic())
            if state.get("publish_error") is not None:
                raise state["publish_error"]
            if not ok:
                self.fail_with_log("stalled at %d of %d events (acked %d)"
                                   % (len(received), total, len(acks)))
        finally:
            stop.set()
            if not state["done"] and state["sub"] is not None:
                state["sub"].close()
            consumer.join(10)
            publisher.join(50)
        if state["error"] is not None:
            raise state["error"]
        if state.get("publish_error") is not None:
            raise state["publish_error"]
        self.assertFalse(publisher.is_alive())
        print("received %d events, %d resumes inside the helper"
              % (len(received), state["reconnects"]), flush=True)
        self.assertGreater(state["reconnects"], 0)

        # 3. Every acknowledged event exactly once, where the ack said, per stream in order.
        self.assertEqual(state["breaks"], [], "the helper saw seq breaks")
        ids = [r[0] for r in received]
        dupes = [i for i, c in collections.Counter(ids).items() if c > 1]
        self.assertEqual(dupes, [], "events delivered twice")
        self.assertEqual(set(ids), set(acks), "delivered set != acknowledged set")
        self.assertEqual(len(acks), total)
        positions = [r[3] for r in received]
        self.assertEqual(positions, sorted(positions))
        last_seq = collections.defaultdict(int)
        for id_, stream, seq, position, data, attributes in received:
            self.assertEqual(seq, last_seq[stream] + 1, "stream %s" % stream)
            last_seq[stream] = seq
            self.assertEqual((position, seq), acks[id_])
            ev = published[id_]
            self.assertEqual((stream, data, attributes), (ev.stream, ev.data, dict(ev.attributes)))

        # 4. Full client restart: a new process resumes from the saved token and gets exactly
        # what followed that event, then nothing more.
        state_file = os.path.join(self.tmp.name, "client.state")
        with open(state_file, "w") as f:
            json.dump({"resume_token": saved["token"], "last_seqs": saved["last_seqs"]}, f)
        out = self.run_example(port, state_file)
        got = [json.loads(line)["id"] for line in out.splitlines()]
        self.assertEqual(got, ids[saved["count"]:])
        # Its state file now holds the last token: resuming from it yields nothing.
        self.assertEqual(self.run_example(port, state_file), "")

    def run_example(self, port, state_file):
        env = dict(os.environ)
        proc = subprocess.run(
            [sys.executable, EXAMPLE, "--server", "127.0.0.1:%d" % port, "subscribe",
             "--state-file", state_file, "--until-caught-up"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        return proc.stdout.decode()

    # -------------------------------------------------------------------------------------------

    def test_checkpoint_tokens_and_refusals(self):
        target = self.server.target
        hookstream.publish(target, [{"stream": "other/x", "type": "t", "data": "noise"}] * 1)
        # A filter that matches nothing still gets a token (caught_up / checkpoint).
        kinds = []
        sub = hookstream.subscribe(target, streams=["quiet/>"], start="beginning",
                                   on_control=lambda k, m: kinds.append(k))
        it = iter(sub)
        got = []
        t = threading.Thread(target=lambda: got.append(next(it, None)), daemon=True)
        t.start()
        wait_for(lambda: sub.resume_token, 10, "a caught_up token")
        sub.close()
        t.join(10)
        self.assertEqual(got, [None])
        self.assertIn("caught_up", kinds)
        token = sub.resume_token
        # Resuming from it delivers only what is published after, exactly once.
        hookstream.publish(target, [{"stream": "quiet/a", "type": "t", "data": "1"},
                                    {"stream": "other/x", "type": "t", "data": "2"}])
        with hookstream.subscribe(target, streams=["quiet/>"], resume_token=token) as sub2:
            d = next(sub2)
            self.assertEqual((d.event.stream, d.event.seq, d.event.data), ("quiet/a", 1, b"1"))

        # A damaged token: INVALID_ARGUMENT at once, not retried.
        bad = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        with self.assertRaises(hookstream.SubscriptionError) as cm:
            next(hookstream.subscribe(target, resume_token=bad, backoff=fast_backoff()))
        self.assertEqual(cm.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

        # A token of another log: FAILED_PRECONDITION.
        other = self.new_server("other")
        foreign = []
        osub = hookstream.subscribe(other.target, on_control=lambda k, m: foreign.append(k))
        threading.Thread(target=lambda: next(osub, None), daemon=True).start()
        wait_for(lambda: osub.resume_token, 10, "a token from the other server")
        osub.close()
        with self.assertRaises(hookstream.SubscriptionError) as cm:
            next(hookstream.subscribe(target, resume_token=osub.resume_token))
        self.assertEqual(cm.exception.code, grpc.StatusCode.FAILED_PRECONDITION)

        # A bad pattern: INVALID_ARGUMENT.
        with self.assertRaises(hookstream.SubscriptionError) as cm:
            next(hookstream.subscribe(target, streams=["a/>/b"]))
        self.assertEqual(cm.exception.code, grpc.StatusCode.INVALID_ARGUMENT)


# -----------------------------------------------------------------------------------------------
# A scripted fake EventStream for what the real server cannot be made to do on demand
# (OUT_OF_RANGE needs retention, a seq break needs a broken server).


def delivered(stream, seq, position, token):
    return pb.SubscribeResponse(events=pb.EventBatch(events=[pb.DeliveredEvent(
        event=pb.Event(stream=stream, seq=seq, position=position, id="e%d" % position),
        resume_token=token)]))


class FakeEventStream(pb_grpc.EventStreamServicer):
    def __init__(self, scripts):
        self.scripts = list(scripts)  # one per Subscribe call: list of messages or StatusCode
        self.requests = []

    def Subscribe(self, request, context):
        self.requests.append(request)
        script = self.scripts.pop(0) if self.scripts else [grpc.StatusCode.UNIMPLEMENTED]
        yield pb.SubscribeResponse(subscribed=pb.Subscribed(log_id="fake"))
        for step in script:
            if isinstance(step, grpc.StatusCode):
                context.abort(step, "scripted %s" % step.name)
            yield step


class FakeServerTest(unittest.TestCase):
    def serve(self, scripts):
        fake = FakeEventStream(scripts)
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_EventStreamServicer_to_server(fake, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        return fake, "127.0.0.1:%d" % port

    def test_resumes_on_transient_codes_and_raises_out_of_range(self):
        fake, target = self.serve([
            [delivered("s", 1, 1, "t1"), grpc.StatusCode.UNAVAILABLE],
            [delivered("s", 2, 2, "t2"), grpc.StatusCode.CANCELLED],  # not caused by the client
            [pb.SubscribeResponse(checkpoint=pb.Checkpoint(resume_token="c5", position=5)),
             grpc.StatusCode.INTERNAL],
            [delivered("s", 3, 6, "t6"), grpc.StatusCode.OUT_OF_RANGE],
        ])
        sub = hookstream.subscribe(target, start="beginning", backoff=fast_backoff())
        seqs = []
        with self.assertRaises(hookstream.SubscriptionError) as cm:
            for d in sub:
                seqs.append(d.event.seq)
        self.assertEqual(cm.exception.code, grpc.StatusCode.OUT_OF_RANGE)
        self.assertEqual(cm.exception.resume_token, "t6")
        self.assertEqual(seqs, [1, 2, 3])
        starts = [r.resume_token or r.WhichOneof("start") for r in fake.requests]
        self.assertEqual(starts, ["from", "t1", "t2", "c5"])
        self.assertEqual(fake.requests[0].__getattribute__("from"),
                         pb.SubscribeRequest.START_BEGINNING)

    def test_reports_seq_break(self):
        _, target = self.serve([[delivered("s", 1, 1, "t1"), delivered("s", 3, 2, "t2")]])
        sub = hookstream.subscribe(target, start="beginning")
        self.assertEqual(next(sub).event.seq, 1)
        with self.assertRaises(hookstream.SequenceBreakError) as cm:
            next(sub)
        self.assertEqual((cm.exception.stream, cm.exception.expected_seq, cm.exception.got_seq),
                         ("s", 2, 3))
        # Continuity carries over from a saved state into a new subscription.
        _, target = self.serve([[delivered("s", 5, 9, "t9")]])
        breaks = []
        sub = hookstream.subscribe(target, resume_token="t8", last_seqs={"s": 3},
                                   on_seq_break=breaks.append)
        self.assertEqual(next(sub).event.seq, 5)
        self.assertEqual([(b.expected_seq, b.got_seq) for b in breaks], [(4, 5)])
        sub.close()

    def test_close_from_another_thread_ends_iteration(self):
        _, target = self.serve([[delivered("s", 1, 1, "t1")]])
        sub = hookstream.subscribe(target, start="beginning")
        self.assertEqual(next(sub).event.seq, 1)
        # next() blocks (nothing more is coming) until close() ends it, from another thread.
        got = []
        t = threading.Thread(target=lambda: got.append(next(sub, None)), daemon=True)
        t.start()
        sub.close()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertEqual(got, [None])

    def test_publish_retries_unavailable_with_stable_ids(self):
        calls = []

        class Flaky(pb_grpc.EventStreamServicer):
            def Publish(self, request, context):
                calls.append([e.id for e in request.events])
                if len(calls) < 3:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "draining")
                return pb.PublishResponse(results=[
                    pb.PublishResult(position=i + 1, seq=i + 1, id=e.id)
                    for i, e in enumerate(request.events)])

        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        pb_grpc.add_EventStreamServicer_to_server(Flaky(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        results = hookstream.publish("127.0.0.1:%d" % port,
                                     [{"stream": "a", "type": "t"}, {"stream": "b", "type": "t"}],
                                     backoff=fast_backoff())
        self.assertEqual(len(calls), 3)
        self.assertTrue(all(c == calls[0] for c in calls), "ids changed between retries")
        self.assertEqual([r.id for r in results], calls[0])
        self.assertTrue(all(calls[0]))


if __name__ == "__main__":
    unittest.main()
