/**
 * What the load generator takes and gives: its options, the samples and counters it records,
 * the report `stop()` resolves with, and the handle `startLoad` returns. Plain data throughout.
 */

/** Options of {@link startLoad}. Only `baseUrl` is required. */
export interface LoadOptions {
  /** Where to send requests, e.g. `http://127.0.0.1:18080`. Only `http:`; a path prefix is kept. */
  baseUrl: string;
  /**
   * Workers that share one keep-alive `http.Agent` whose `maxSockets` is this number, so each
   * holds (about) one persistent connection. Default 64. 0 disables them.
   */
  keepAliveConnections?: number;
  /**
   * Workers that open a new connection for each request (`agent: false`, `Connection: close`).
   * Default 4. 0 disables them.
   */
  newConnectionWorkers?: number;
  /** Every Nth request of a worker is `GET /slow?ms=<slowMs>`. Default 50; 0 disables. */
  slowRequestEvery?: number;
  /** Server-side delay asked for by slow requests, in ms. Default 1000. */
  slowMs?: number;
  /**
   * Every Nth request of a worker is `POST /echo` with a random 1–16 KiB body (the rest that are
   * not slow are `GET /`). Default 3; 0 disables.
   */
  postEvery?: number;
  /** Pause between two requests of one worker, in ms (leaves CPU to the server). Default 0. */
  thinkMs?: number;
  /** Whole-request deadline (connect to last body byte), in ms; past it: reason `timeout`. Default 30000. */
  requestTimeoutMs?: number;
  /**
   * Resend a request once on a new connection when it was reset on a reused keep-alive socket
   * before any response byte arrived (RFC 9112 §9.3.1). Default true. With false such a request
   * is a failure (it is counted as a `rawReset` either way).
   */
  resend?: boolean;
  /**
   * Keep at most this many samples in memory (totals, failures and version counts stay exact
   * past it; {@link LoadReport.samplesDropped} counts the rest). Default 1,000,000 (~100 MB).
   */
  maxSamples?: number;
}

/** {@link LoadOptions} with every default applied, as recorded in the report. */
export type ResolvedLoadOptions = Required<LoadOptions>;

/** What a request asked for: `GET /`, `POST /echo` or `GET /slow?ms=…`. */
export type RequestKind = 'get' | 'post' | 'slow';

/** Which kind of worker sent the request: shared keep-alive agent, or one connection per request. */
export type ConnectionType = 'keepalive' | 'new';

/**
 * One completed request. Times are ms since the run started.
 * For a resent request, `start` is the first attempt's start and `end` the resend's end.
 */
export interface Sample {
  /** When the request was issued (the first attempt, for a resent request). */
  start: number;
  /** When its outcome was known. */
  end: number;
  kind: RequestKind;
  /** The worker's connection type (a resend itself always goes on a new connection). */
  conn: ConnectionType;
  /** True when the request met every check (see {@link FailureReason}). */
  ok: boolean;
  /** Why it failed; absent when `ok`. */
  reason?: FailureReason;
  /** HTTP status of the (final) response; 0 when no response head arrived. */
  status: number;
  /** The `version` field of the JSON body, when there was one. */
  version?: string;
  /** The first attempt was reset on a reused keep-alive socket before any response byte. */
  rawReset: boolean;
  /** The request was sent a second time on a new connection; its outcome is that resend's. */
  resent: boolean;
}

/**
 * Why a request failed: `status 502` (any non-2xx), `incomplete body` (connection lost or body
 * shorter than Content-Length once the response had started), `bad json` (unparsable, or no
 * `version` string), `echo mismatch` (`/echo` answered another byte count or SHA-256), `timeout`
 * (past `requestTimeoutMs`), or the socket error's code (`ECONNREFUSED`, `ECONNRESET`, `EPIPE`,
 * …; its message when it has no code).
 */
export type FailureReason = string;

/** One failed request, as kept in {@link FailureGroup.examples}. */
export interface FailureExample {
  /** When the request started (ms since the run start). */
  start: number;
  /** When it failed. */
  end: number;
  kind: RequestKind;
  conn: ConnectionType;
  reason: FailureReason;
  status: number;
  resent: boolean;
}

/** All failures with one reason: their exact count and the first {@link MAX_FAILURE_EXAMPLES}. */
export interface FailureGroup {
  count: number;
  examples: FailureExample[];
}

/** A labelled instant recorded with {@link LoadRun.mark}. */
export interface Mark {
  /** ms since the run started. */
  t: number;
  /** Wall-clock time (epoch ms), for lining up with logs. */
  epochMs: number;
  label: string;
}

/** Request counts, shared by the live counters and the final totals. */
export interface RequestCounts {
  /** Completed requests (ok + failed). A resent request counts once. */
  requests: number;
  ok: number;
  failed: number;
  /** First attempts reset on a reused keep-alive socket before any response byte (resent or not). */
  rawResets: number;
  /** Resends that succeeded. */
  resentOk: number;
  /** Resends that failed (these are also in `failed`). */
  resentFailed: number;
}

/** Live counters, as returned by {@link LoadRun.snapshot} (a copy). */
export interface LoadCounters extends RequestCounts {
  /** ms since the run started. */
  elapsedMs: number;
  /** Requests issued and not yet completed. */
  inFlight: number;
  /** OK requests by the `version` that answered them. */
  versions: Record<string, number>;
}

/** Totals of a finished run. */
export interface LoadTotals extends RequestCounts {
  /**
   * Requests still in flight when `stop({ graceMs })` gave up on them: neither ok nor failed,
   * and not in the samples.
   */
  abortedAtStop: number;
}

/** What {@link LoadRun.stop} returns. Plain data: `JSON.stringify` it as is. */
export interface LoadReport {
  /** Wall-clock time (epoch ms) of the run start: the zero of every `t`, `start` and `end`. */
  startEpochMs: number;
  /** ms from the run start until the last in-flight request completed. */
  durationMs: number;
  /** ms from the run start until `stop()` was called (no request started after it). */
  stoppedAtMs: number;
  options: ResolvedLoadOptions;
  totals: LoadTotals;
  /** Failures grouped by reason. */
  failures: Record<FailureReason, FailureGroup>;
  /** OK requests by the `version` that answered them. */
  versions: Record<string, number>;
  /** Every completed request, in completion order (up to `maxSamples`). */
  samples: Sample[];
  /** Samples not kept because of `maxSamples` (they are in the totals). */
  samplesDropped: number;
  /** The marks, in the order recorded. */
  marks: Mark[];
}

/** Options of {@link LoadRun.stop}. */
export interface StopOptions {
  /**
   * How long to wait for in-flight requests before aborting them (they are then counted in
   * `totals.abortedAtStop`, not as failures). Default: wait for them; `requestTimeoutMs` bounds it.
   */
  graceMs?: number;
}

/** A running load, as returned by {@link startLoad}. */
export interface LoadRun {
  /**
   * Stops issuing new requests, waits for the in-flight ones (see {@link StopOptions}), closes
   * the agent and resolves with the report. Never rejects; calling it again returns the same
   * promise.
   */
  stop(options?: StopOptions): Promise<LoadReport>;
  /** Live counters (a copy), e.g. for a demo to print progress. */
  snapshot(): LoadCounters;
  /** Records a labelled instant in the report; returns its time (ms since the run start). */
  mark(label: string): number;
}

/** How many examples {@link FailureGroup.examples} keeps per reason. */
export const MAX_FAILURE_EXAMPLES = 20;
