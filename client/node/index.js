'use strict';
// hookstream Node.js client (DESIGN.md §4, §8): an auto-resuming subscribe (an async iterator)
// and a retrying publish, on @grpc/grpc-js. The .proto files are loaded at run time from
// protos/ (HOOKSTREAM_PROTO_DIR or the `protoDir` option overrides where).
//
//   const hs = require('hookstream-client');
//   const client = hs.createClient('127.0.0.1:7070');
//   for await (const delivered of hs.subscribe(client, { streams: ['live/>'], from: 'beginning' })) {
//     handle(delivered.event);
//     save(delivered.resume_token);   // later: hs.subscribe(client, { resumeToken })
//   }
//
// Messages use the .proto field names (keepCase): resume_token, head_position, ...; 64-bit
// integers (seq, position) are JavaScript numbers; bytes are Buffers; enums are strings.

const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const { status } = grpc;

const DEFAULT_PROTO_DIR = path.resolve(__dirname, '..', '..', 'protos');

/** Options passed to @grpc/proto-loader. */
const LOADER_OPTIONS = Object.freeze({
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** Channel options for long-lived subscriptions: no receive limit, reconnect backoff <= 2 s. */
const CHANNEL_OPTIONS = Object.freeze({
  'grpc.max_receive_message_length': -1,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2000,
});

/**
 * Codes a subscription cannot get past by retrying: they are thrown as SubscriptionError.
 * Everything else (UNAVAILABLE from a drain or a broken connection, a CANCELLED this client did
 * not cause, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN) is retried.
 */
const FATAL_SUBSCRIBE_CODES = new Set([
  status.OUT_OF_RANGE, // token older than retention
  status.FAILED_PRECONDITION, // token of another log, or ahead of it
  status.INVALID_ARGUMENT, // bad filter, damaged or forged token
  status.UNIMPLEMENTED,
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.DATA_LOSS,
]);

/**
 * Codes publish retries; the client-assigned ids make every retry safe (the server
 * de-duplicates). DEADLINE_EXCEEDED: an attempt waits for the channel to connect (waitForReady)
 * and may time out before the server is back. CANCELLED: this client never cancels its own
 * publish, but a server that is shutting down cancels calls that reach it during the drain.
 */
const DEFAULT_PUBLISH_RETRY_CODES = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.CANCELLED,
]);

const START_NAMES = {
  now: 'START_NOW',
  beginning: 'START_BEGINNING',
  last_per_stream: 'START_LAST_PER_STREAM',
};

class HookstreamError extends Error {}

/** The server refused the subscription for good (OUT_OF_RANGE, FAILED_PRECONDITION, ...). */
class SubscriptionError extends HookstreamError {
  constructor(code, details, resumeToken, cause) {
    super(`${codeName(code)}: ${details}`);
    this.name = 'SubscriptionError';
    /** The gRPC status code (a number, see grpc.status). */
    this.code = code;
    this.details = details;
    /** The token the subscription would have resumed from. */
    this.resumeToken = resumeToken;
    this.cause = cause;
  }
}

/** An event's per-stream seq is not the one after the last seen (a gap or a duplicate). */
class SequenceBreakError extends HookstreamError {
  constructor(stream, expectedSeq, gotSeq, position, detail = '') {
    super(`seq break on stream "${stream}": expected seq ${expectedSeq}, got ${gotSeq} ` +
          `(position ${position})${detail}`);
    this.name = 'SequenceBreakError';
    this.stream = stream;
    this.expectedSeq = expectedSeq;
    this.gotSeq = gotSeq;
    this.position = position;
  }
}

function codeName(code) {
  return Object.keys(status).find((k) => status[k] === code) || String(code);
}

function isGrpcError(err) {
  return err != null && typeof err.code === 'number' && 'details' in err;
}

/** Exponential backoff with jitter: initial, initial*multiplier, ... capped at maximum (ms). */
class Backoff {
  constructor({ initialMs = 100, maxMs = 10000, multiplier = 1.6, jitter = 0.2, random = Math.random } = {}) {
    Object.assign(this, { initialMs, maxMs, multiplier, jitter, random });
    this._next = initialMs;
  }

  reset() {
    this._next = this.initialMs;
  }

  nextDelayMs() {
    const base = this._next;
    this._next = Math.min(this.maxMs, this._next * this.multiplier);
    return Math.max(0, base * (1 + this.jitter * (2 * this.random() - 1)));
  }
}

const protoCache = new Map();

/**
 * Loads hookstream/v1/event_stream.proto and returns the `hookstream.v1` package object
 * (EventStream is the client constructor).
 * @param {string} [protoDir] directory holding hookstream/v1/*.proto
 */
function loadProto(protoDir) {
  const dir = protoDir || process.env.HOOKSTREAM_PROTO_DIR || DEFAULT_PROTO_DIR;
  if (!protoCache.has(dir)) {
    const def = protoLoader.loadSync('hookstream/v1/event_stream.proto', {
      ...LOADER_OPTIONS,
      includeDirs: [dir],
    });
    protoCache.set(dir, grpc.loadPackageDefinition(def).hookstream.v1);
  }
  return protoCache.get(dir);
}

/**
 * An EventStream client (insecure by default).
 * @param {string} target host:port
 * @param {{credentials?: object, channelOptions?: object, protoDir?: string}} [options]
 */
function createClient(target, { credentials, channelOptions, protoDir } = {}) {
  const { EventStream } = loadProto(protoDir);
  return new EventStream(target, credentials || grpc.credentials.createInsecure(), {
    ...CHANNEL_OPTIONS,
    ...(channelOptions || {}),
  });
}

function toMetadata(metadata) {
  if (metadata instanceof grpc.Metadata) return metadata;
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata || {})) md.set(k, v);
  return md;
}

function durationMs(ms) {
  return { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) };
}

/**
 * An async iterator of DeliveredEvent ({event, resume_token}) that resumes by itself.
 *
 * After a transient failure (UNAVAILABLE, a CANCELLED it did not cause, ...) it waits with
 * backoff and subscribes again from the token of the last event it handed out, or from a later
 * checkpoint / heartbeat / caught_up token (those arrive only when everything before them was
 * handed out). While the server is unreachable a call waits for it (waitForReady). It checks
 * per-stream seq continuity and position order across resumes and throws SequenceBreakError (or
 * calls onSeqBreak). A request the server refuses for good (OUT_OF_RANGE, FAILED_PRECONDITION,
 * INVALID_ARGUMENT, ...) throws SubscriptionError.
 */
class Subscription {
  constructor(target, options = {}) {
    if (typeof target === 'string') {
      this._client = createClient(target, options);
      this._ownsClient = true;
    } else {
      this._client = target;
      this._ownsClient = false;
    }
    const from = options.from === undefined ? 'now' : options.from;
    this._streams = options.streams || [];
    this._types = options.types || [];
    this._from = START_NAMES[from] || from;
    this._token = options.resumeToken || null;
    this._lastSeqs = new Map(Object.entries(options.lastSeqs || {}));
    this._lastPosition = 0;
    this._heartbeatMs = options.heartbeatIntervalMs;
    this._maxBatchEvents = options.maxBatchEvents || 0;
    this._maxBatchBytes = options.maxBatchBytes || 0;
    this._onControl = options.onControl;
    this._onSeqBreak = options.onSeqBreak;
    this._onRetry = options.onRetry;
    this._backoff = options.backoff || new Backoff();
    this._maxRetryMs = options.maxRetryMs;
    this._metadata = options.metadata;
    this._closed = false;
    this._call = null;
    this._wake = null;
    /** log_id from the server's `subscribed` message. */
    this.logId = null;
    /** How many times it re-subscribed by itself. */
    this.reconnects = 0;
    this._gen = this._run();
  }

  /** Token of the last event handed out, or of a later checkpoint; null before any. */
  get resumeToken() {
    return this._token;
  }

  /** Per-stream last seq handed out, as a plain object (save it with the token). */
  get lastSeqs() {
    return Object.fromEntries(this._lastSeqs);
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  next() {
    return this._gen.next();
  }

  /** Called by `for await` when the loop is left early: ends the subscription. */
  async return(value) {
    this.close();
    return this._gen.return(value);
  }

  /** Ends the subscription: iteration stops, nothing is resumed. */
  close() {
    if (this._closed) return;
    this._closed = true;
    if (this._call) this._call.cancel();
    if (this._wake) this._wake();
    if (this._ownsClient) this._client.close();
  }

  _request() {
    const req = {
      streams: this._streams,
      types: this._types,
      max_batch_events: this._maxBatchEvents,
      max_batch_bytes: this._maxBatchBytes,
    };
    if (this._token) {
      req.resume_token = this._token;
    } else {
      // Nothing handed out yet: the original start again.
      req.from = this._from;
    }
    if (this._heartbeatMs !== undefined) req.heartbeat_interval = durationMs(this._heartbeatMs);
    return req;
  }

  _check(event) {
    const seq = Number(event.seq);
    const position = Number(event.position);
    const last = this._lastSeqs.get(event.stream);
    let problem = null;
    if (last !== undefined && seq !== last + 1) {
      problem = new SequenceBreakError(event.stream, last + 1, seq, position);
    } else if (position <= this._lastPosition) {
      problem = new SequenceBreakError(event.stream, (last || 0) + 1, seq, position,
        `: position not after the previous event's ${this._lastPosition}`);
    }
    this._lastSeqs.set(event.stream, seq);
    this._lastPosition = Math.max(this._lastPosition, position);
    if (problem) {
      if (!this._onSeqBreak) throw problem;
      this._onSeqBreak(problem);
    }
  }

  _control(kind, msg) {
    if (kind === 'subscribed') {
      this.logId = msg.subscribed.log_id;
    } else if (kind === 'gap') {
      // Events were skipped on request (EXPIRED_RESTART_FROM_OLDEST): no continuity across.
      this._lastSeqs.clear();
    } else {
      // Control messages come after every event before them was handed out, so their token
      // never skips an event the application has not seen.
      const token = msg[kind] && msg[kind].resume_token;
      if (token) this._token = token;
    }
    if (this._onControl) this._onControl(kind, msg);
  }

  _sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this._wake = done;
    }).finally(() => {
      this._wake = null;
    });
  }

  async *_run() {
    let failingSince = null;
    try {
      while (!this._closed) {
        const call = this._client.Subscribe(this._request(), toMetadata(this._metadata), {
          // While the server is unreachable, wait for the channel to connect instead of failing.
          waitForReady: true,
        });
        // Errors reach this loop through the iterator; this keeps a late one from being thrown
        // as an unhandled 'error' event after the iterator is gone.
        call.on('error', () => {});
        this._call = call;
        let error = null;
        try {
          for await (const msg of call) {
            if (msg.message !== 'subscribed') { // Past the start: the call works.
              failingSince = null;
              this._backoff.reset();
            }
            if (msg.message === 'events') {
              for (const delivered of msg.events.events) {
                this._check(delivered.event);
                // Once the consumer asks for the next item it is done with this one: a resume
                // after that starts right behind it.
                this._token = delivered.resume_token;
                yield delivered;
              }
            } else if (msg.message) {
              this._control(msg.message, msg);
            }
          }
        } catch (err) {
          if (!isGrpcError(err)) throw err; // SequenceBreakError, an onControl exception, ...
          error = err;
        } finally {
          this._call = null;
          call.cancel();
        }
        if (this._closed) return;
        if (error && FATAL_SUBSCRIBE_CODES.has(error.code)) {
          throw new SubscriptionError(error.code, error.details || '', this._token, error);
        }
        const now = Date.now();
        if (failingSince === null) {
          failingSince = now;
        } else if (this._maxRetryMs !== undefined && now - failingSince > this._maxRetryMs) {
          if (error) throw new SubscriptionError(error.code, error.details || '', this._token, error);
          throw new HookstreamError('subscription keeps ending; giving up');
        }
        const delay = this._backoff.nextDelayMs();
        if (this._onRetry && error) this._onRetry(error, delay);
        this.reconnects += 1;
        await this._sleep(delay);
      }
    } finally {
      if (this._ownsClient) this._client.close();
    }
  }
}

/**
 * Subscribes; returns an auto-resuming Subscription (an async iterator of DeliveredEvent).
 * @param {object|string} client an EventStream client from createClient(), or "host:port"
 *   (then the subscription makes and closes its own client)
 * @param {SubscribeOptions} [options]
 */
function subscribe(client, options) {
  return new Subscription(client, options);
}

/**
 * An EventInput with a client-assigned id (a random UUID unless given), so retries dedup.
 * `data`: Buffer / Uint8Array / string as is; any other value is stored as its JSON text with
 * content_type application/json. `time`: a Date.
 */
function makeEvent({ stream, type, data, id, source, content_type: contentType, attributes, time, expected_seq: expectedSeq }) {
  let bytes;
  let ct = contentType || '';
  if (data === undefined || data === null) {
    bytes = Buffer.alloc(0);
  } else if (Buffer.isBuffer(data) || data instanceof Uint8Array) {
    bytes = Buffer.from(data);
  } else if (typeof data === 'string') {
    bytes = Buffer.from(data, 'utf8');
  } else {
    bytes = Buffer.from(JSON.stringify(data), 'utf8');
    ct = ct || 'application/json';
  }
  const ev = {
    id: id || crypto.randomUUID(),
    stream,
    type,
    source: source || '',
    content_type: ct,
    data: bytes,
    attributes: attributes || {},
  };
  if (time instanceof Date) {
    const ms = time.getTime();
    ev.time = { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
  } else if (time) {
    ev.time = time;
  }
  if (expectedSeq !== undefined && expectedSeq !== null) ev.expected_seq = expectedSeq;
  return ev;
}

/**
 * Publishes one atomic batch; resolves to its PublishResults ({position, seq, duplicate, id}),
 * same order as `events`.
 *
 * Every event gets a client-assigned id before the first attempt (a random UUID where it has
 * none), so a retry of a batch whose acknowledgement was lost stores nothing twice: the server
 * answers duplicate = true with the original positions (inside its dedup window, default 2 min).
 * An attempt waits for the channel to connect (waitForReady), at most `timeoutMs`; UNAVAILABLE,
 * DEADLINE_EXCEEDED and CANCELLED (`retryCodes`) are retried with backoff until `retryTimeoutMs`
 * has passed.
 * @param {object|string} client an EventStream client, or "host:port"
 * @param {Array<object>} events EventInput-shaped objects (see makeEvent)
 * @param {PublishOptions} [options]
 */
async function publish(client, events, {
  source, timeoutMs = 10000, retryTimeoutMs = 60000, retryCodes = DEFAULT_PUBLISH_RETRY_CODES,
  backoff, metadata,
} = {}) {
  const own = typeof client === 'string';
  const c = own ? createClient(client) : client;
  const batch = events.map((e) => {
    const ev = makeEvent(e);
    if (source !== undefined && !ev.source) ev.source = source;
    return ev;
  });
  const codes = retryCodes instanceof Set ? retryCodes : new Set(retryCodes);
  const bo = backoff || new Backoff({ initialMs: 50, maxMs: 2000 });
  const giveUp = Date.now() + retryTimeoutMs;
  try {
    for (;;) {
      const attemptMs = Math.max(1, Math.min(timeoutMs, giveUp - Date.now()));
      try {
        const response = await new Promise((resolve, reject) => {
          c.Publish({ events: batch }, toMetadata(metadata),
            { deadline: Date.now() + attemptMs, waitForReady: true },
            (err, res) => (err ? reject(err) : resolve(res)));
        });
        return response.results;
      } catch (err) {
        const delay = bo.nextDelayMs();
        if (!isGrpcError(err) || !codes.has(err.code) || Date.now() + delay >= giveUp) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  } finally {
    if (own) c.close();
  }
}

module.exports = {
  Backoff,
  CHANNEL_OPTIONS,
  DEFAULT_PUBLISH_RETRY_CODES,
  FATAL_SUBSCRIBE_CODES,
  HookstreamError,
  LOADER_OPTIONS,
  SequenceBreakError,
  Subscription,
  SubscriptionError,
  createClient,
  grpc,
  loadProto,
  makeEvent,
  publish,
  status,
  subscribe,
};
