// Types of the hookstream Node.js client (index.js). Message objects use the .proto field names
// (@grpc/proto-loader keepCase); 64-bit integers are numbers, bytes are Buffers, enums strings.
import * as grpc from '@grpc/grpc-js';

export { grpc };
export declare const status: typeof grpc.status;

export interface Timestamp { seconds: number; nanos: number; }

export interface Event {
  id: string;
  stream: string;
  type: string;
  source: string;
  time: Timestamp | null;
  content_type: string;
  data: Buffer;
  attributes: { [key: string]: string };
  /** Per-stream sequence number: 1, 2, 3, ... dense. */
  seq: number;
  /** Place in the log: strictly increasing across all streams. */
  position: number;
  ingest_time: Timestamp | null;
}

export interface DeliveredEvent {
  event: Event;
  /** Resume right after this event with subscribe(client, { resumeToken }). */
  resume_token: string;
}

export type ControlKind =
  | 'subscribed' | 'checkpoint' | 'caught_up' | 'fell_behind' | 'heartbeat' | 'gap' | 'snapshot_end';

/** A SubscribeResponse other than `events`; `message` names the field that is set. */
export interface SubscribeResponse {
  message: ControlKind | 'events';
  [field: string]: unknown;
}

export interface EventInput {
  /** Producer-chosen id; makeEvent/publish assign a random UUID when missing. */
  id?: string;
  stream: string;
  type: string;
  source?: string;
  /** Buffer, Uint8Array or string as is; any other value is stored as JSON (application/json). */
  data?: Buffer | Uint8Array | string | unknown;
  content_type?: string;
  attributes?: { [key: string]: string };
  time?: Date | Timestamp;
  /** Optimistic concurrency: the stream's head seq must equal it (0: the stream is new). */
  expected_seq?: number;
}

export interface PublishResult {
  position: number;
  seq: number;
  /** True when (source, id) was already stored: nothing new was stored. */
  duplicate: boolean;
  id: string;
}

export declare class Backoff {
  constructor(options?: { initialMs?: number; maxMs?: number; multiplier?: number; jitter?: number;
    random?: () => number });
  reset(): void;
  nextDelayMs(): number;
}

export declare class HookstreamError extends Error {}

export declare class SubscriptionError extends HookstreamError {
  /** gRPC status code, e.g. status.OUT_OF_RANGE. */
  code: number;
  details: string;
  /** The token the subscription would have resumed from. */
  resumeToken: string | null;
  cause?: unknown;
}

export declare class SequenceBreakError extends HookstreamError {
  stream: string;
  expectedSeq: number;
  gotSeq: number;
  position: number;
}

export type EventStreamClient = grpc.Client & { [method: string]: any };

export interface ClientOptions {
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  /** Directory holding hookstream/v1/*.proto (default: $HOOKSTREAM_PROTO_DIR, else ../../protos). */
  protoDir?: string;
}

export interface SubscribeOptions extends ClientOptions {
  /** Stream patterns ('a/*\/c', 'a/>'); none = all. */
  streams?: string[];
  /** Event types, exact or a prefix ending in '*'; none = all. */
  types?: string[];
  /** Where to start without a token: 'now' (default) or 'beginning'. */
  from?: 'now' | 'beginning' | 'START_NOW' | 'START_BEGINNING';
  /** A saved token: continue right after it (takes precedence over `from`). */
  resumeToken?: string | null;
  /** Per-stream last seqs saved with the token, to keep checking continuity. */
  lastSeqs?: { [stream: string]: number };
  heartbeatIntervalMs?: number;
  maxBatchEvents?: number;
  maxBatchBytes?: number;
  /** Every non-event message (subscribed, caught_up, checkpoint, heartbeat, ...). */
  onControl?: (kind: ControlKind, message: SubscribeResponse) => void;
  /** Report seq breaks instead of throwing SequenceBreakError. */
  onSeqBreak?: (error: SequenceBreakError) => void;
  /** Called before each automatic re-subscribe. */
  onRetry?: (error: grpc.ServiceError, delayMs: number) => void;
  backoff?: Backoff;
  /** Give up after the call keeps failing this long (default: never). */
  maxRetryMs?: number;
  metadata?: grpc.Metadata | { [key: string]: string };
}

export declare class Subscription implements AsyncIterableIterator<DeliveredEvent> {
  constructor(client: EventStreamClient | string, options?: SubscribeOptions);
  /** Token of the last event handed out, or of a later checkpoint; null before any. */
  readonly resumeToken: string | null;
  /** Per-stream last seq handed out (save it with the token). */
  readonly lastSeqs: { [stream: string]: number };
  logId: string | null;
  reconnects: number;
  [Symbol.asyncIterator](): Subscription;
  next(): Promise<IteratorResult<DeliveredEvent>>;
  return(value?: unknown): Promise<IteratorResult<DeliveredEvent>>;
  /** Ends the subscription: iteration stops, nothing is resumed. */
  close(): void;
}

export interface PublishOptions {
  /** Fills in events without a source. */
  source?: string;
  /** Bound of one attempt (default 10 s). */
  timeoutMs?: number;
  /** Give up retrying after this long (default 60 s). */
  retryTimeoutMs?: number;
  /** Codes that are retried (default UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED). */
  retryCodes?: Set<number> | number[];
  backoff?: Backoff;
  metadata?: grpc.Metadata | { [key: string]: string };
}

export declare const LOADER_OPTIONS: object;
export declare const CHANNEL_OPTIONS: grpc.ChannelOptions;
export declare const FATAL_SUBSCRIBE_CODES: Set<number>;
export declare const DEFAULT_PUBLISH_RETRY_CODES: Set<number>;

/** The hookstream.v1 package loaded from the .proto files (EventStream is the client class). */
export declare function loadProto(protoDir?: string): { EventStream: grpc.ServiceClientConstructor;
  [name: string]: any };
export declare function createClient(target: string, options?: ClientOptions): EventStreamClient;
export declare function subscribe(client: EventStreamClient | string,
  options?: SubscribeOptions): Subscription;
export declare function makeEvent(event: EventInput): EventInput & { id: string; data: Buffer };
export declare function publish(client: EventStreamClient | string, events: EventInput[],
  options?: PublishOptions): Promise<PublishResult[]>;
