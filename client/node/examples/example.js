#!/usr/bin/env node
'use strict';
// hookstream Node.js client example: publish events, subscribe with a saved resume token.
//
//   node client/node/examples/example.js publish --stream demo/cam1 --type demo.hello \
//       --data '{"n": 1}' --count 5
//   node client/node/examples/example.js subscribe --stream 'demo/>' --from-beginning \
//       --state-file /tmp/demo.state
//
// `subscribe` prints one JSON line per event and saves the resume token (and per-stream seqs)
// to --state-file after each one; run it again and it continues right after the last event.
// Options: --server host:port (default 127.0.0.1:7070), --until-caught-up (exit when history is
// exhausted instead of following live events).

const fs = require('fs');
const hs = require('..');

function parseArgs(argv) {
  const args = { command: argv[0], stream: [], type: [], server: '127.0.0.1:7070', count: 1 };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    const [key, inline] = a.startsWith('--') ? a.slice(2).split(/=(.*)/s) : [null, null];
    if (key === null) throw new Error(`unexpected argument ${a}`);
    const flag = ['from-beginning', 'until-caught-up'].includes(key);
    const value = flag ? true : (inline !== undefined ? inline : argv[++i]);
    if (key === 'stream' || key === 'type') args[key].push(value);
    else args[key.replace(/-(.)/g, (_, c) => c.toUpperCase())] = value;
  }
  return args;
}

function loadState(file) {
  if (!file || !fs.existsSync(file)) return {};
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function saveState(file, sub) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ resume_token: sub.resumeToken, last_seqs: sub.lastSeqs }));
  fs.renameSync(tmp, file);
}

async function publishCmd(args) {
  const events = [];
  for (let i = 0; i < Number(args.count); i++) {
    events.push(hs.makeEvent({ stream: args.stream[0], type: args.type[0], data: args.data || '',
      source: args.source || 'example.js' }));
  }
  const results = await hs.publish(args.server, events);
  results.forEach((r, i) => console.log(JSON.stringify({ id: events[i].id, stream: events[i].stream,
    seq: r.seq, position: r.position, duplicate: r.duplicate })));
}

async function subscribeCmd(args) {
  const state = loadState(args.stateFile);
  const sub = hs.subscribe(args.server, {
    streams: args.stream,
    types: args.type,
    from: args.fromBeginning ? 'beginning' : 'now',
    resumeToken: state.resume_token,
    lastSeqs: state.last_seqs,
    onControl: (kind) => {
      console.error(`[${kind}]`);
      if (kind === 'caught_up' && args.untilCaughtUp) sub.close();
    },
    onRetry: (err, delayMs) => console.error(`[retry in ${Math.round(delayMs)} ms after ${err.code}]`),
  });
  process.once('SIGINT', () => sub.close());
  for await (const { event: e, resume_token: token } of sub) {
    const text = e.data.toString('utf8');
    const data = Buffer.from(text, 'utf8').equals(e.data) ? text : `base64:${e.data.toString('base64')}`;
    console.log(JSON.stringify({ stream: e.stream, seq: e.seq, position: e.position, id: e.id,
      type: e.type, source: e.source, data, resume_token: token }));
    if (args.stateFile) saveState(args.stateFile, sub);
  }
  if (args.stateFile && sub.resumeToken) saveState(args.stateFile, sub); // a later checkpoint
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.command === 'publish') return publishCmd(args);
  if (args.command === 'subscribe') return subscribeCmd(args);
  throw new Error('usage: example.js publish|subscribe [--server host:port] [options]');
}

main().catch((err) => {
  console.error(`error: ${err.message}`);
  process.exitCode = 1;
});
