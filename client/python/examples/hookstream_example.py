#!/usr/bin/python3
"""hookstream Python client example: publish events, subscribe with a saved resume token.

    export PYTHONPATH=build/client/python/gen:client/python
    /usr/bin/python3 client/python/examples/hookstream_example.py publish \
        --stream demo/cam1 --type demo.hello --data '{"n": 1}' --count 5
    /usr/bin/python3 client/python/examples/hookstream_example.py subscribe \
        --stream 'demo/>' --from-beginning --state-file /tmp/demo.state

`subscribe` prints one JSON line per event and saves the resume token (and per-stream seqs) to
--state-file after each one; run it again and it continues right after the last event printed.
"""

import argparse
import base64
import json
import os
import sys

import hookstream


def save_state(path, sub):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"resume_token": sub.resume_token, "last_seqs": sub.last_seqs}, f)
    os.replace(tmp, path)


def load_state(path):
    if not path or not os.path.exists(path):
        return None, None
    with open(path) as f:
        state = json.load(f)
    return state.get("resume_token"), state.get("last_seqs")


def cmd_publish(args):
    events = [
        hookstream.make_event(args.stream, args.type, args.data, source=args.source)
        for _ in range(args.count)
    ]
    for ev, result in zip(events, hookstream.publish(args.server, events)):
        print(json.dumps({"id": ev.id, "stream": ev.stream, "seq": result.seq,
                          "position": result.position, "duplicate": result.duplicate}))


def cmd_subscribe(args):
    token, last_seqs = load_state(args.state_file)
    stop = []

    def on_control(kind, msg):
        print("[%s]" % kind, file=sys.stderr)
        if kind == "caught_up" and args.until_caught_up:
            stop.append(True)
            sub.close()

    sub = hookstream.subscribe(
        args.server,
        streams=args.stream,
        types=args.type,
        start="beginning" if args.from_beginning else "now",
        resume_token=token,
        last_seqs=last_seqs,
        on_control=on_control,
        on_retry=lambda err, delay: print("[retry in %.2fs after %s]" % (delay, err.code().name),
                                          file=sys.stderr),
    )
    with sub:
        for delivered in sub:
            e = delivered.event
            try:
                data = e.data.decode("utf-8")
            except UnicodeDecodeError:
                data = "base64:" + base64.b64encode(e.data).decode()
            print(json.dumps({"stream": e.stream, "seq": e.seq, "position": e.position,
                              "id": e.id, "type": e.type, "source": e.source, "data": data,
                              "resume_token": delivered.resume_token}), flush=True)
            if args.state_file:
                save_state(args.state_file, sub)
    if args.state_file and sub.resume_token:
        save_state(args.state_file, sub)  # A later caught_up / checkpoint token, if any.


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--server", default="127.0.0.1:7070")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish", help="publish --count copies of one event (each its own id)")
    p.add_argument("--stream", required=True)
    p.add_argument("--type", required=True)
    p.add_argument("--data", default="")
    p.add_argument("--source", default="hookstream_example.py")
    p.add_argument("--count", type=int, default=1)
    s = sub.add_parser("subscribe", help="print events as JSON lines")
    s.add_argument("--stream", action="append", default=[], help="stream pattern (repeatable)")
    s.add_argument("--type", action="append", default=[], help="event type (repeatable)")
    s.add_argument("--from-beginning", action="store_true",
                   help="start at the oldest event when there is no saved token")
    s.add_argument("--state-file", help="where the resume token is loaded from and saved to")
    s.add_argument("--until-caught-up", action="store_true",
                   help="exit once history is exhausted instead of following live events")
    args = parser.parse_args()
    try:
        {"publish": cmd_publish, "subscribe": cmd_subscribe}[args.command](args)
    except hookstream.HookstreamError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
