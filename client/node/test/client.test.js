'use strict';
// Tests of the Node.js client against the real hookstreamd (and a scripted fake for error paths).
// The randomized test prints its seed; HOOKSTREAM_CLIENT_SEED=<seed> replays its schedule.
// Run through ctest (node_client_test), or by hand from client/node:
//   HOOKSTREAMD=../../build/server/main/hookstreamd node --test test/client.test.js

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

let hs;
try {
  hs = require('..');
} catch (err) {
  throw new Error(`cannot load the client (${err.message}); run \`npm ci --prefix client/node\``);
}
const { grpc, status } = hs;

const EXAMPLE = path.join(__dirname, '..', 'examples', 'example.js');
const STREAMS = Array.from({ length: 8 }, (_, i) => `poly/node/cam${i}`);
// HOOKSTREAM_CLIENT_SCALE=N multiplies the work of the randomized test (a longer soak by hand).
const SCALE = Number(process.env.HOOKSTREAM_CLIENT_SCALE || 1);
const INITIAL_EVENTS = 1500 * SCALE; // published before subscribing
const LIVE_EVENTS = 1000 * SCALE; // published while the subscriber runs, across the server restart
const CUTS = 10 * SCALE; // random disconnects of the subscriber
const fastBackoff = () => new hs.Backoff({ initialMs: 20, maxMs: 500 });

// mulberry32: a small seeded PRNG.
function rngFrom(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  return { next, int, pick: (arr) => arr[int(0, arr.length - 1)] };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// One real hookstreamd child. It runs under `setpriv --pdeathsig KILL`, so it dies with this
// process even if no teardown runs; stop() (registered with after()) ends it by PID.
class ServerProcess {
  constructor(dataDir) {
    this.binary = process.env.HOOKSTREAMD;
    if (!this.binary || !fs.existsSync(this.binary)) {
      throw new Error(`set HOOKSTREAMD to the hookstreamd binary (got ${this.binary})`);
    }
    this.dataDir = dataDir;
    this.proc = null;
    this.port = 0;
    this.log = '';
  }

  get target() {
    return `127.0.0.1:${this.port}`;
  }

  start(port = 0) {
    const args = [this.binary, `--data_dir=${this.dataDir}`, `--grpc_listen=127.0.0.1:${port}`, "--http_listen=off"];
    const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
    const [cmd, ...rest] = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', ...args] : args;
    this.log += `==== ${args.join(' ')}\n`;
    const proc = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    return withTimeout(new Promise((resolve, reject) => {
      let pending = '';
      const onData = (chunk) => {
        this.log += chunk;
        pending += chunk;
        const m = /event=server\.started .*grpc_port=(\d+)\n/.exec(pending);
        if (m) {
          pending = '';
          this.port = Number(m[1]);
          resolve(this.port);
        }
      };
      proc.stdout.setEncoding('utf8').on('data', onData);
      proc.stderr.setEncoding('utf8').on('data', onData);
      proc.once('error', reject);
      proc.exited.then(({ code, signal }) => reject(new Error(
        `hookstreamd exited (${code ?? signal}) before starting; log:\n${this.log}`)));
    }), 30000, 'the hookstreamd start line');
  }

  async terminate() {
    this.proc.kill('SIGTERM');
    const { code, signal } = await withTimeout(this.proc.exited, 30000, 'hookstreamd to drain');
    return code ?? signal;
  }

  async stop() {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      try {
        await withTimeout(p.exited, 15000, 'hookstreamd to stop');
      } catch {
        p.kill('SIGKILL');
        await p.exited;
      }
    }
  }
}

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'hookstream_node_test_'));
const servers = [];
const closers = []; // subscriptions, clients and fake servers: closed in teardown, even after a failure
after(async () => {
  for (const close of closers) close();
  await Promise.all(servers.map((s) => s.stop()));
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

// hs.subscribe / hs.createClient, remembered for teardown.
function subscribe(target, options) {
  const sub = hs.subscribe(target, options);
  closers.push(() => sub.close());
  return sub;
}
function createClient(target) {
  const client = hs.createClient(target);
  closers.push(() => client.close());
  return client;
}

async function newServer(name) {
  const s = new ServerProcess(path.join(tmpRoot, name));
  servers.push(s);
  await s.start();
  return s;
}

function runExample(args) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [EXAMPLE, ...args], { timeout: 30000, maxBuffer: 1 << 28 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`example.js failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

// A promise that resolves when `pred()` holds; `check()` re-evaluates it (event driven, no
// polling): the consumer calls check() after each event.
function waiter() {
  const waits = [];
  return {
    until(pred) {
      if (pred()) return Promise.resolve();
      return new Promise((resolve) => waits.push({ pred, resolve }));
    },
    check() {
      for (let i = waits.length - 1; i >= 0; i--) {
        if (waits[i].pred()) {
          waits[i].resolve();
          waits.splice(i, 1);
        }
      }
    },
  };
}

test('publish, subscribe with random cut-offs, server restart, resume from a saved token',
  { timeout: 90000 * SCALE }, async () => {
    const seed = Number(process.env.HOOKSTREAM_CLIENT_SEED || Math.floor(Math.random() * 2 ** 31));
    console.log(`node_client_test seed: ${seed} (HOOKSTREAM_CLIENT_SEED=${seed} replays it)`);
    const rng = rngFrom(seed);
    const total = INITIAL_EVENTS + LIVE_EVENTS;
    const server = await newServer('data');
    const port = server.port;
    const published = new Map(); // id -> EventInput
    const acks = new Map(); // id -> [position, seq]

    const makeBatch = (start, count) => {
      const batch = [];
      for (let n = start; n < start + count; n++) {
        const data = Buffer.alloc(rng.int(0, 300));
        for (let i = 0; i < data.length; i++) data[i] = rng.int(0, 255);
        const ev = hs.makeEvent({ stream: rng.pick(STREAMS), type: 'poly.test', data,
          source: 'node-test', attributes: { n: String(n) } });
        published.set(ev.id, ev);
        batch.push(ev);
      }
      return batch;
    };
    const record = (batch, results) => {
      assert.equal(results.length, batch.length);
      batch.forEach((ev, i) => {
        const r = results[i];
        assert.equal(r.id, ev.id);
        if (acks.has(ev.id)) assert.deepEqual(acks.get(ev.id), [r.position, r.seq], 'dedup moved an event');
        acks.set(ev.id, [r.position, r.seq]);
      });
    };

    // 1. History in random batches with client-assigned ids; re-sending a batch (a retry whose
    // ack was lost) stores nothing and answers with the original positions.
    const client = createClient(server.target);
    let n = 0;
    let first = null;
    while (n < INITIAL_EVENTS) {
      const count = Math.min(rng.int(1, 50), INITIAL_EVENTS - n);
      const batch = makeBatch(n, count);
      record(batch, await hs.publish(client, batch));
      first = first || batch;
      n += count;
    }
    const again = await hs.publish(client, first);
    assert.ok(again.every((r) => r.duplicate));
    assert.deepEqual(again.map((r) => [r.position, r.seq]), first.map((e) => acks.get(e.id)));
    client.close();

    const liveBatches = [];
    while (n < total) {
      const count = Math.min(rng.int(1, 30), total - n);
      liveBatches.push(makeBatch(n, count));
      n += count;
    }
    const cutKind = new Map();
    while (cutKind.size < CUTS) cutKind.set(rng.int(1, total - 2), rng.pick(['cancel_call', 'close_channel']));
    const restartAt = rng.int(Math.floor(total / 4), Math.floor((3 * total) / 4));
    const saveAt = rng.int(1, total - 1);
    const liveStartAt = rng.int(1, INITIAL_EVENTS);
    console.log(`cuts: ${JSON.stringify([...cutKind].sort((a, b) => a[0] - b[0]))}; restart after ` +
      `${restartAt} events; token saved after ${saveAt}; live publishing from ${liveStartAt}`);

    const received = []; // {id, stream, seq, position, data, attributes}
    const breaks = [];
    const saved = {};
    const progress = waiter();
    let reconnects = 0;
    let sub = null;
    const newSub = (resumeToken, lastSeqs) => subscribe(`127.0.0.1:${port}`, {
      from: 'beginning', resumeToken, lastSeqs, backoff: fastBackoff(),
      maxBatchEvents: rng.int(1, 64), onSeqBreak: (b) => breaks.push(b),
    });

    const consume = async () => {
      sub = newSub();
      try {
        while (received.length < total) {
          const { value: d, done } = await sub.next();
          if (done) break;
          const e = d.event;
          received.push({ id: e.id, stream: e.stream, seq: e.seq, position: e.position, data: e.data,
            attributes: { ...e.attributes } });
          const count = received.length;
          if (count === saveAt) {
            // What an application persists: the last processed event's token.
            Object.assign(saved, { token: d.resume_token, lastSeqs: sub.lastSeqs, count });
          }
          const kind = cutKind.get(count);
          if (kind === 'cancel_call') {
            // A CANCELLED the helper did not cause: it must resume by itself.
            if (sub._call) sub._call.cancel();
          } else if (kind === 'close_channel') {
            // The application drops its client and resumes on a fresh one.
            reconnects += sub.reconnects;
            const { resumeToken, lastSeqs } = sub;
            sub.close();
            sub = newSub(resumeToken, lastSeqs);
          }
          progress.check();
        }
      } finally {
        reconnects += sub.reconnects;
        sub.close();
      }
    };

    const publishLive = async () => {
      await progress.until(() => received.length >= liveStartAt);
      const pclient = createClient(`127.0.0.1:${port}`);
      try {
        for (const batch of liveBatches) {
          record(batch, await hs.publish(pclient, batch, { backoff: fastBackoff(), retryTimeoutMs: 45000 * SCALE }));
        }
      } finally {
        pclient.close();
      }
    };

    // 2. The server restarts once (SIGTERM, then the same data dir and port) under the
    // subscriber and the publisher.
    const restart = async () => {
      await progress.until(() => received.length >= restartAt);
      assert.equal(await server.terminate(), 0, 'hookstreamd did not drain cleanly');
      await server.start(port);
    };

    const consumer = consume();
    try {
      await withTimeout(Promise.all([consumer, publishLive(), restart()]), 45000 * SCALE,
        'every event to be delivered');
    } catch (err) {
      if (sub) sub.close();
      err.message += ` (received ${received.length} of ${total}, acked ${acks.size})\n` +
        `--- hookstreamd log ---\n${server.log}`;
      throw err;
    }
    console.log(`received ${received.length} events, ${reconnects} resumes inside the helper`);
    assert.ok(reconnects > 0);

    // 3. Every acknowledged event exactly once, where the ack said, per stream in order.
    assert.deepEqual(breaks.map(String), [], 'the helper saw seq breaks');
    const ids = received.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, 'events delivered twice');
    assert.equal(acks.size, total);
    assert.deepEqual([...ids].sort(), [...acks.keys()].sort(), 'delivered set != acknowledged set');
    const lastSeq = new Map();
    let lastPosition = 0;
    for (const r of received) {
      assert.equal(r.seq, (lastSeq.get(r.stream) || 0) + 1, `stream ${r.stream}`);
      lastSeq.set(r.stream, r.seq);
      assert.ok(r.position > lastPosition);
      lastPosition = r.position;
      assert.deepEqual([r.position, r.seq], acks.get(r.id));
      const ev = published.get(r.id);
      assert.equal(r.stream, ev.stream);
      assert.ok(r.data.equals(ev.data));
      assert.deepEqual(r.attributes, ev.attributes);
    }

    // 4. Full client restart: a new process resumes from the saved token and gets exactly what
    // followed that event, then (from the token it saved) nothing more.
    const stateFile = path.join(tmpRoot, 'client.state');
    fs.writeFileSync(stateFile, JSON.stringify({ resume_token: saved.token, last_seqs: saved.lastSeqs }));
    const args = ['subscribe', '--server', `127.0.0.1:${port}`, '--state-file', stateFile, '--until-caught-up'];
    const out = await runExample(args);
    const got = out.split('\n').filter(Boolean).map((l) => JSON.parse(l).id);
    assert.deepEqual(got, ids.slice(saved.count));
    assert.equal(await runExample(args), '');
  });

test('checkpoint tokens and refusals from the real server', { timeout: 60000 }, async () => {
  const server = await newServer('refusals');
  const client = createClient(server.target);
  try {
    await hs.publish(client, [{ stream: 'other/x', type: 't', data: 'noise' }]);
    // A filter that matches nothing still gets a token (caught_up / checkpoint).
    const kinds = [];
    let quiet;
    const gotToken = new Promise((resolve) => {
      quiet = subscribe(client, { streams: ['quiet/>'], from: 'beginning',
        onControl: (k) => { kinds.push(k); if (quiet.resumeToken) resolve(); } });
    });
    const pending = quiet.next();
    await withTimeout(gotToken, 10000, 'a caught_up token');
    quiet.close();
    assert.deepEqual(await pending, { value: undefined, done: true });
    assert.ok(kinds.includes('caught_up'));
    const token = quiet.resumeToken;

    // Resuming from it delivers only what is published after, exactly once.
    await hs.publish(client, [{ stream: 'quiet/a', type: 't', data: '1' }, { stream: 'other/x', type: 't', data: '2' }]);
    const sub2 = subscribe(client, { streams: ['quiet/>'], resumeToken: token });
    const { value: d } = await sub2.next();
    sub2.close();
    assert.deepEqual([d.event.stream, d.event.seq, d.event.data.toString()], ['quiet/a', 1, '1']);

    const refused = async (options) => {
      const s = subscribe(client, { backoff: fastBackoff(), ...options });
      try {
        await s.next();
      } catch (err) {
        assert.ok(err instanceof hs.SubscriptionError, String(err));
        return err.code;
      } finally {
        s.close();
      }
      assert.fail('subscription was not refused');
    };
    // A damaged token: INVALID_ARGUMENT at once, not retried.
    const i = token.length - 2;
    const bad = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
    assert.equal(await refused({ resumeToken: bad }), status.INVALID_ARGUMENT);
    // A bad pattern: INVALID_ARGUMENT.
    assert.equal(await refused({ streams: ['a/>/b'] }), status.INVALID_ARGUMENT);
    // A token of another log: FAILED_PRECONDITION.
    const other = await newServer('other');
    let foreign;
    const gotForeign = new Promise((resolve) => {
      foreign = subscribe(other.target, { onControl: () => foreign.resumeToken && resolve() });
    });
    const pendingForeign = foreign.next();
    await withTimeout(gotForeign, 10000, 'a token from the other server');
    foreign.close();
    await pendingForeign;
    assert.equal(await refused({ resumeToken: foreign.resumeToken }), status.FAILED_PRECONDITION);
  } finally {
    client.close();
  }
});

// A scripted fake EventStream for what the real server cannot be made to do on demand
// (OUT_OF_RANGE needs retention, a seq break needs a broken server).
async function fakeServer(impl) {
  const server = new grpc.Server();
  server.addService(hs.loadProto().EventStream.service, impl);
  const port = await new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0',
    grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  closers.push(() => server.forceShutdown());
  return { target: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

const delivered = (stream, seq, position, token) => ({
  events: { events: [{ event: { stream, seq, position, id: `e${position}` }, resume_token: token }] },
});

function scriptedSubscribe(scripts, requests) {
  return {
    Subscribe(call) {
      requests.push(call.request);
      const script = scripts.shift() || [status.UNIMPLEMENTED];
      call.write({ subscribed: { log_id: 'fake' } });
      for (const step of script) {
        if (typeof step === 'number') {
          call.emit('error', { code: step, details: `scripted ${step}` });
          return;
        }
        call.write(step);
      }
      call.end();
    },
  };
}

test('resumes on transient codes, throws OUT_OF_RANGE', { timeout: 30000 }, async () => {
  const requests = [];
  const fake = await fakeServer(scriptedSubscribe([
    [delivered('s', 1, 1, 't1'), status.UNAVAILABLE],
    [delivered('s', 2, 2, 't2'), status.CANCELLED], // not caused by the client
    [{ checkpoint: { resume_token: 'c5', position: 5 } }, status.INTERNAL],
    [delivered('s', 3, 6, 't6'), status.OUT_OF_RANGE],
  ], requests));
  try {
    const sub = subscribe(fake.target, { from: 'beginning', backoff: fastBackoff() });
    const seqs = [];
    await assert.rejects(async () => {
      for await (const d of sub) seqs.push(d.event.seq);
    }, (err) => err instanceof hs.SubscriptionError && err.code === status.OUT_OF_RANGE &&
      err.resumeToken === 't6');
    assert.deepEqual(seqs, [1, 2, 3]);
    assert.deepEqual(requests.map((r) => r.resume_token || r.from), ['START_BEGINNING', 't1', 't2', 'c5']);
  } finally {
    fake.close();
  }
});

test('reports seq breaks, also across a saved state', { timeout: 30000 }, async () => {
  let fake = await fakeServer(scriptedSubscribe([[delivered('s', 1, 1, 't1'), delivered('s', 3, 2, 't2')]], []));
  try {
    const sub = subscribe(fake.target, { from: 'beginning' });
    assert.equal((await sub.next()).value.event.seq, 1);
    await assert.rejects(sub.next(), (err) => err instanceof hs.SequenceBreakError &&
      err.stream === 's' && err.expectedSeq === 2 && err.gotSeq === 3);
  } finally {
    fake.close();
  }
  fake = await fakeServer(scriptedSubscribe([[delivered('s', 5, 9, 't9')]], []));
  try {
    const breaks = [];
    const sub = subscribe(fake.target, { resumeToken: 't8', lastSeqs: { s: 3 }, onSeqBreak: (b) => breaks.push(b) });
    assert.equal((await sub.next()).value.event.seq, 5);
    sub.close();
    assert.deepEqual(breaks.map((b) => [b.expectedSeq, b.gotSeq]), [[4, 5]]);
  } finally {
    fake.close();
  }
});

test('close() ends a waiting iteration; publish retries with stable ids', { timeout: 30000 }, async () => {
  const calls = [];
  const fake = await fakeServer({
    ...scriptedSubscribe([[delivered('s', 1, 1, 't1')]], []),
    Publish(call, callback) {
      calls.push(call.request.events.map((e) => e.id));
      if (calls.length < 3) return callback({ code: status.UNAVAILABLE, details: 'draining' });
      return callback(null, { results: call.request.events.map((e, i) => ({ position: i + 1, seq: i + 1, id: e.id })) });
    },
  });
  try {
    const sub = subscribe(fake.target, { from: 'beginning' });
    assert.equal((await sub.next()).value.event.seq, 1);
    const waiting = sub.next(); // nothing more is coming
    sub.close();
    assert.deepEqual(await waiting, { value: undefined, done: true });

    const results = await hs.publish(fake.target, [{ stream: 'a', type: 't' }, { stream: 'b', type: 't' }],
      { backoff: fastBackoff() });
    assert.equal(calls.length, 3);
    assert.ok(calls.every((c) => JSON.stringify(c) === JSON.stringify(calls[0])), 'ids changed between retries');
    assert.deepEqual(results.map((r) => r.id), calls[0]);
    assert.ok(calls[0].every(Boolean));
  } finally {
    fake.close();
  }
});
