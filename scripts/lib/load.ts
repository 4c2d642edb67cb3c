/**
 * Load generator for the blue/green tests, the benchmark and the demo.
 *
 * It keeps a mix of HTTP/1.1 traffic running against one base URL and records every completed
 * request, so that a test can PROVE that no request failed while a deploy swapped the slots:
 *
 * - `keepAliveConnections` workers share one keep-alive `http.Agent` (`maxSockets` = that
 *   number), like browsers and API clients that hold connections open across a reload;
 * - `newConnectionWorkers` workers open a new connection per request (`Connection: close`);
 * - every `postEvery`th request of a worker is `POST /echo` with a random 1–16 KiB body whose
 *   byte count and SHA-256 the answer must repeat; every `slowRequestEvery`th is
 *   `GET /slow?ms=slowMs`, which is still in flight while a switch happens; the rest are `GET /`.
 *
 * A request is OK only if its status is 2xx, its body is complete and parses as JSON with a
 * `version` string, and (for `/echo`) the byte count and SHA-256 match what was sent.
 *
 * Resets on reused keep-alive sockets: when Nginx reloads, its old workers close their idle
 * keep-alive client connections, and a request written on one at that instant is reset before
 * any response byte arrives. RFC 9112 §9.3.1 lets a client resend such a request, and browsers
 * do. This module counts each of those as a `rawReset` and (with `resend`, the default) sends the
 * request once more on a new connection; the outcome of that resend is the request's outcome.
 * It never resends after a response byte arrived, on a fresh socket, or twice.
 *
 * Times in samples and marks are milliseconds since the run started (`performance.now()`-based);
 * `LoadReport.startEpochMs` anchors them to the wall clock. The report is plain, JSON-serialisable
 * data; the pure helpers at the end of this file analyse it.
 *
 * @example
 * const run = startLoad({ baseUrl: 'http://127.0.0.1:18080' });
 * await deploy('v2');
 * const switched = run.mark('switch to v2 done');
 * await sleep(2000);
 * const report = await run.stop();
 * expect(report.totals.failed).toBe(0);
 * expect(versionsStartedAfter(report, switched)).toEqual(['v2']);
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

const DEFAULTS: Omit<ResolvedLoadOptions, 'baseUrl'> = {
  keepAliveConnections: 64,
  newConnectionWorkers: 4,
  slowRequestEvery: 50,
  slowMs: 1000,
  postEvery: 3,
  thinkMs: 0,
  requestTimeoutMs: 30_000,
  resend: true,
  maxSamples: 1_000_000,
};

/** Pre-generated POST bodies: random bytes, reused for every request. */
const ECHO_BODY_COUNT = 8;

/** Error codes of a connection that the peer closed under a request (RFC 9112 §9.3.1 case). */
const CONNECTION_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

interface EchoBody {
  data: Buffer;
  sha256: string;
}

interface RequestSpec {
  kind: RequestKind;
  method: 'GET' | 'POST';
  path: string;
  body?: EchoBody;
}

/** The result of one attempt on the wire. */
interface Attempt {
  ok: boolean;
  reason?: FailureReason;
  status: number;
  version?: string;
  /** Reset on a reused socket before any response byte: may be resent. */
  resendable: boolean;
  /** Aborted by stop({ graceMs }). */
  aborted: boolean;
}

class TimeoutError extends Error {
  constructor() {
    super('request timeout');
  }
}
class StopAbortError extends Error {
  constructor() {
    super('aborted at stop');
  }
}

function nonNegativeInt(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0 || Math.floor(v) !== v) {
    throw new RangeError(`startLoad: ${name} must be a non-negative integer, got ${v}`);
  }
  return v;
}

function resolveOptions(opts: LoadOptions): ResolvedLoadOptions {
  const r: ResolvedLoadOptions = { ...DEFAULTS, baseUrl: opts.baseUrl };
  for (const [k, v] of Object.entries(opts) as [keyof LoadOptions, unknown][]) {
    if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = v;
  }
  for (const k of [
    'keepAliveConnections',
    'newConnectionWorkers',
    'slowRequestEvery',
    'slowMs',
    'postEvery',
    'thinkMs',
    'requestTimeoutMs',
    'maxSamples',
  ] as const) {
    nonNegativeInt(k, r[k]);
  }
  if (r.requestTimeoutMs === 0) throw new RangeError('startLoad: requestTimeoutMs must be > 0');
  if (r.keepAliveConnections + r.newConnectionWorkers === 0) {
    throw new RangeError('startLoad: no workers (keepAliveConnections and newConnectionWorkers are 0)');
  }
  return r;
}

function makeEchoBodies(): EchoBody[] {
  const bodies: EchoBody[] = [];
  for (let i = 0; i < ECHO_BODY_COUNT; i++) {
    const data = randomBytes(randomInt(1024, 16 * 1024 + 1));
    bodies.push({ data, sha256: createHash('sha256').update(data).digest('hex') });
  }
  return bodies;
}

function errorReason(err: unknown): FailureReason {
  if (err instanceof TimeoutError) return 'timeout';
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e.code === 'string' && e.code) return e.code;
  if (e && typeof e.message === 'string' && e.message) return e.message;
  return String(err);
}

function isConnectionError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e || err instanceof TimeoutError || err instanceof StopAbortError) return false;
  return (typeof e.code === 'string' && CONNECTION_ERRORS.has(e.code)) || e.message === 'socket hang up';
}

/**
 * Starts the load at once and returns a handle. Throws (synchronously) only on bad options.
 * Always call {@link LoadRun.stop}: the workers run until then.
 */
export function startLoad(opts: LoadOptions): LoadRun {
  const o = resolveOptions(opts);
  const url = new URL(o.baseUrl);
  if (url.protocol !== 'http:') throw new RangeError(`startLoad: only http: URLs, got ${o.baseUrl}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : 80;
  const prefix = url.pathname.replace(/\/+$/, '');
  const paths = {
    get: `${prefix}/`,
    post: `${prefix}/echo`,
    slow: `${prefix}/slow?ms=${o.slowMs}`,
  };
  const bodies = makeEchoBodies();

  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: Math.max(1, o.keepAliveConnections),
    maxFreeSockets: Math.max(1, o.keepAliveConnections),
    // FIFO keeps every pooled connection in use, so all of them are exposed to a reload.
    scheduling: 'fifo',
  });

  const t0 = performance.now();
  const startEpochMs = Date.now();
  const now = (): number => performance.now() - t0;

  // Counters.
  let requests = 0;
  let ok = 0;
  let failed = 0;
  let rawResets = 0;
  let resentOk = 0;
  let resentFailed = 0;
  let abortedAtStop = 0;
  let inFlight = 0;
  let samplesDropped = 0;
  const versions: Record<string, number> = Object.create(null) as Record<string, number>;
  const failures: Record<string, FailureGroup> = Object.create(null) as Record<string, FailureGroup>;
  const samples: Sample[] = [];
  const marks: Mark[] = [];

  // Stop machinery.
  let stopping = false;
  let stoppedAtMs = 0;
  let stopPromise: Promise<LoadReport> | undefined;
  /** Set once stop({ graceMs }) gave up waiting: attempts (e.g. a resend) are then not sent. */
  let abortingAll = false;
  /** Abort functions of the attempts on the wire (for stop({ graceMs })). */
  const activeRequests = new Set<() => void>();
  const pauses = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          pauses.delete(entry);
          resolve();
        }, ms),
        wake: resolve,
      };
      pauses.add(entry);
    });
  }

  function record(spec: RequestSpec, conn: ConnectionType, start: number, a: Attempt, rawReset: boolean, resent: boolean): void {
    const end = now();
    requests++;
    if (a.ok) {
      ok++;
      if (resent) resentOk++;
      if (a.version !== undefined) versions[a.version] = (versions[a.version] ?? 0) + 1;
    } else {
      failed++;
      if (resent) resentFailed++;
      const reason = a.reason ?? 'unknown';
      let group = failures[reason];
      if (!group) failures[reason] = group = { count: 0, examples: [] };
      group.count++;
      if (group.examples.length < MAX_FAILURE_EXAMPLES) {
        group.examples.push({ start, end, kind: spec.kind, conn, reason, status: a.status, resent });
      }
    }
    if (samples.length < o.maxSamples) {
      const s: Sample = { start, end, kind: spec.kind, conn, ok: a.ok, status: a.status, rawReset, resent };
      if (!a.ok) s.reason = a.reason ?? 'unknown';
      if (a.version !== undefined) s.version = a.version;
      samples.push(s);
    } else {
      samplesDropped++;
    }
  }

  /** One attempt on the wire. Always resolves, exactly once. */
  function attempt(spec: RequestSpec, useAgent: boolean): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      let responded = false;
      let socket: Socket | undefined;
      let bytesReadAtAssign = 0;
      let failure: unknown;

      const headers: http.OutgoingHttpHeaders = {};
      if (!useAgent) headers.connection = 'close';
      if (spec.body) {
        headers['content-type'] = 'application/octet-stream';
        headers['content-length'] = spec.body.data.length;
      }

      let req: http.ClientRequest;
      const abort = (why: Error): void => {
        failure ??= why;
        req.destroy(why);
      };
      const abortAtStop = (): void => abort(new StopAbortError());
      const finish = (a: Attempt): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        activeRequests.delete(abortAtStop);
        resolve(a);
      };
      const fail = (reason: FailureReason, status: number, version?: string): Attempt => ({
        ok: false,
        reason,
        status,
        version,
        resendable: false,
        aborted: false,
      });

      if (abortingAll) {
        resolve({ ok: false, status: 0, resendable: false, aborted: true });
        return;
      }
      try {
        req = http.request({
          host,
          port,
          method: spec.method,
          path: spec.path,
          headers,
          agent: useAgent ? agent : false,
        });
      } catch (err) {
        resolve(fail(errorReason(err), 0));
        return;
      }
      activeRequests.add(abortAtStop);
      const timer = setTimeout(() => abort(new TimeoutError()), o.requestTimeoutMs);

      req.on('socket', (s: Socket) => {
        socket = s;
        bytesReadAtAssign = s.bytesRead;
      });

      req.on('error', (err: Error) => {
        const cause = failure ?? err;
        if (cause instanceof StopAbortError) {
          finish({ ok: false, status: 0, resendable: false, aborted: true });
          return;
        }
        if (responded) {
          // The response had started: its body is lost whatever the socket said.
          finish(fail(cause instanceof TimeoutError ? 'timeout' : 'incomplete body', 0));
          return;
        }
        const noResponseByte = socket === undefined || socket.bytesRead === bytesReadAtAssign;
        // A socket that had read bytes before this request carried an earlier response: it is
        // reused. `req.reusedSocket` alone misses sockets that Node's agent hands straight from a
        // finished request to a queued one (its 'free' handler skips `reuseSocket()`), which
        // happens whenever a reset socket is still counted against maxSockets.
        const reused = req.reusedSocket || bytesReadAtAssign > 0;
        const resendable = useAgent && reused && noResponseByte && isConnectionError(cause);
        finish({ ...fail(errorReason(cause), 0), resendable });
      });

      req.on('response', (res: http.IncomingMessage) => {
        responded = true;
        const status = res.statusCode ?? 0;
        const is2xx = status >= 200 && status < 300;
        const chunks: Buffer[] = [];
        let received = 0;
        const declared = res.headers['content-length'];
        const expected = declared !== undefined ? Number(declared) : undefined;

        res.on('data', (chunk: Buffer) => {
          if (is2xx) chunks.push(chunk);
          received += chunk.length;
        });
        res.on('error', () => {
          /* reported through 'close' below */
        });
        res.on('close', () => {
          if (settled) return;
          if (failure instanceof StopAbortError) {
            finish({ ok: false, status, resendable: false, aborted: true });
          } else if (failure instanceof TimeoutError) {
            finish(fail('timeout', status));
          } else if (!res.complete) {
            finish(fail('incomplete body', status));
          }
        });
        res.on('end', () => {
          if (!is2xx) {
            finish(fail(`status ${status}`, status));
            return;
          }
          if (!res.complete || (expected !== undefined && received !== expected)) {
            finish(fail('incomplete body', status));
            return;
          }
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks, received).toString('utf8'));
          } catch {
            finish(fail('bad json', status));
            return;
          }
          const version =
            body !== null && typeof body === 'object' && typeof (body as { version?: unknown }).version === 'string'
              ? (body as { version: string }).version
              : undefined;
          if (version === undefined) {
            finish(fail('bad json', status));
            return;
          }
          if (spec.body) {
            const echo = body as { bytes?: unknown; sha256?: unknown };
            if (echo.bytes !== spec.body.data.length || echo.sha256 !== spec.body.sha256) {
              finish(fail('echo mismatch', status, version));
              return;
            }
          }
          finish({ ok: true, status, version, resendable: false, aborted: false });
        });
      });

      req.end(spec.body?.data);
    });
  }

  async function issue(spec: RequestSpec, conn: ConnectionType): Promise<void> {
    const start = now();
    inFlight++;
    try {
      const first = await attempt(spec, conn === 'keepalive');
      if (first.aborted) {
        abortedAtStop++;
        return;
      }
      if (!first.resendable) {
        record(spec, conn, start, first, false, false);
        return;
      }
      rawResets++;
      if (!o.resend) {
        record(spec, conn, start, first, true, false);
        return;
      }
      const second = await attempt(spec, false);
      if (second.aborted) {
        abortedAtStop++;
        return;
      }
      record(spec, conn, start, second, true, true);
    } finally {
      inFlight--;
    }
  }

  async function worker(conn: ConnectionType, index: number): Promise<void> {
    // Offset each worker's counter so that slow and POST requests are spread over time.
    let n = index;
    while (!stopping) {
      n++;
      let spec: RequestSpec;
      if (o.slowRequestEvery > 0 && n % o.slowRequestEvery === 0) {
        spec = { kind: 'slow', method: 'GET', path: paths.slow };
      } else if (o.postEvery > 0 && n % o.postEvery === 0) {
        spec = { kind: 'post', method: 'POST', path: paths.post, body: bodies[n % bodies.length] };
      } else {
        spec = { kind: 'get', method: 'GET', path: paths.get };
      }
      try {
        await issue(spec, conn);
      } catch (err) {
        // Not expected (attempt() never rejects); keep the worker alive and visible.
        record(spec, conn, now(), { ok: false, reason: `internal: ${errorReason(err)}`, status: 0, resendable: false, aborted: false }, false, false);
      }
      if (o.thinkMs > 0 && !stopping) await pause(o.thinkMs);
    }
  }

  const workers: Promise<void>[] = [];
  for (let i = 0; i < o.keepAliveConnections; i++) workers.push(worker('keepalive', i));
  for (let i = 0; i < o.newConnectionWorkers; i++) workers.push(worker('new', i * 7));

  function counters(): LoadCounters {
    return {
      elapsedMs: now(),
      requests,
      ok,
      failed,
      rawResets,
      resentOk,
      resentFailed,
      inFlight,
      versions: { ...versions },
    };
  }

  async function doStop(so: StopOptions): Promise<LoadReport> {
    stopping = true;
    stoppedAtMs = now();
    for (const p of pauses) {
      clearTimeout(p.timer);
      p.wake();
    }
    pauses.clear();
    const all = Promise.all(workers).then(() => undefined);
    if (so.graceMs !== undefined) {
      let graceTimer: NodeJS.Timeout | undefined;
      const grace = new Promise<'grace'>((resolve) => {
        graceTimer = setTimeout(() => resolve('grace'), Math.max(0, so.graceMs ?? 0));
      });
      const first = await Promise.race([all.then(() => 'done' as const), grace]);
      clearTimeout(graceTimer);
      if (first === 'grace') {
        abortingAll = true;
        for (const abort of [...activeRequests]) abort();
      }
    }
    await all;
    const durationMs = now();
    agent.destroy();
    return {
      startEpochMs,
      durationMs,
      stoppedAtMs,
      options: o,
      totals: { requests, ok, failed, rawResets, resentOk, resentFailed, abortedAtStop },
      failures: { ...failures },
      versions: { ...versions },
      samples,
      samplesDropped,
      marks: [...marks],
    };
  }

  return {
    stop(so: StopOptions = {}): Promise<LoadReport> {
      stopPromise ??= doStop(so);
      return stopPromise;
    },
    snapshot: counters,
    mark(label: string): number {
      const t = now();
      marks.push({ t, epochMs: startEpochMs + t, label });
      return t;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Pure helpers over a report
// ---------------------------------------------------------------------------------------------

/** Latency of one sample, in ms (for a resent request: from the first attempt to the resend's end). */
export function latency(s: Sample): number {
  return s.end - s.start;
}

/**
 * The p-th percentile (0–100, nearest-rank) of the samples' latencies, in ms; NaN when there are
 * none. Pass `samples.filter((s) => s.ok)` or {@link samplesBetween} to narrow it.
 */
export function percentile(samples: readonly Sample[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in [0, 100], got ${p}`);
  if (samples.length === 0) return Number.NaN;
  const lat = Float64Array.from(samples, latency).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * lat.length));
  return lat[rank - 1]!;
}

/** Count, p50, p99 and max latency (ms) of some samples; NaN where there are none. */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** {@link LatencySummary} of the samples. */
export function latencySummary(samples: readonly Sample[]): LatencySummary {
  return {
    count: samples.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: percentile(samples, 100),
  };
}

/** The samples of requests that STARTED in [fromMs, toMs) (ms since the run start). */
export function samplesBetween(report: LoadReport, fromMs: number, toMs = Number.POSITIVE_INFINITY): Sample[] {
  return report.samples.filter((s) => s.start >= fromMs && s.start < toMs);
}

/** The time of the first mark with this label, or undefined. */
export function markTime(report: LoadReport, label: string): number | undefined {
  return report.marks.find((m) => m.label === label)?.t;
}

/**
 * The versions (sorted) that answered requests which STARTED at or after `t`: ms since the run
 * start, or the label of a mark. Every answer with a `version` counts, failed ones too (e.g. an
 * echo mismatch still tells which slot answered). Throws on an unknown mark label.
 *
 * @example expect(versionsStartedAfter(report, 'switch to v2 done')).toEqual(['v2']);
 */
export function versionsStartedAfter(report: LoadReport, t: number | string): string[] {
  let from: number;
  if (typeof t === 'string') {
    const m = markTime(report, t);
    if (m === undefined) throw new Error(`versionsStartedAfter: no mark labelled ${JSON.stringify(t)}`);
    from = m;
  } else {
    from = t;
  }
  const seen = new Set<string>();
  for (const s of report.samples) {
    if (s.start >= from && s.version !== undefined) seen.add(s.version);
  }
  return [...seen].sort();
}

/** Counts of samples by `version` (samples without one are left out). */
export function countVersions(samples: readonly Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) if (s.version !== undefined) out[s.version] = (out[s.version] ?? 0) + 1;
  return out;
}

/** One time bucket of {@link ratePerVersion}. */
export interface RateBucket {
  /** Bucket start, ms since the run start. */
  startMs: number;
  /** OK requests per second by version; every version of the series has a key (0 when none). */
  perSecond: Record<string, number>;
  /** Failed requests per second. */
  failedPerSecond: number;
}

/** Requests per second by version, per time bucket: data for a chart. */
export interface RateSeries {
  bucketMs: number;
  /** Every version that answered an OK request, sorted. */
  versions: string[];
  buckets: RateBucket[];
}

/**
 * Completed requests per second by version in buckets of `bucketMs` (by completion time, from 0
 * to the end of the run). OK requests count under their version; failures under
 * `failedPerSecond`. The last bucket may be partial; its rate is still per full bucket.
 */
export function ratePerVersion(report: LoadReport, bucketMs = 1000): RateSeries {
  if (!(bucketMs > 0)) throw new RangeError(`ratePerVersion: bucketMs must be > 0, got ${bucketMs}`);
  let last = Math.max(report.durationMs, 0);
  for (const s of report.samples) if (s.end > last) last = s.end;
  const n = Math.max(1, Math.ceil(last / bucketMs) || 1);
  const versions = new Set<string>();
  for (const s of report.samples) if (s.ok && s.version !== undefined) versions.add(s.version);
  const sorted = [...versions].sort();
  const perSecond = 1000 / bucketMs;
  const buckets: RateBucket[] = [];
  for (let i = 0; i < n; i++) {
    const counts: Record<string, number> = {};
    for (const v of sorted) counts[v] = 0;
    buckets.push({ startMs: i * bucketMs, perSecond: counts, failedPerSecond: 0 });
  }
  for (const s of report.samples) {
    const b = buckets[Math.min(n - 1, Math.max(0, Math.floor(s.end / bucketMs)))]!;
    if (s.ok && s.version !== undefined) b.perSecond[s.version]! += perSecond;
    else if (!s.ok) b.failedPerSecond += perSecond;
  }
  return { bucketMs, versions: sorted, buckets };
}

/** A few lines for a human: totals, failures by reason, versions, latency. */
export function formatSummary(report: LoadReport): string {
  const t = report.totals;
  const secs = report.durationMs / 1000;
  const lat = latencySummary(report.samples.filter((s) => s.ok && s.kind !== 'slow'));
  const lines = [
    `requests ${t.requests} in ${secs.toFixed(1)} s (${(t.requests / Math.max(secs, 1e-9)).toFixed(0)}/s): ` +
      `ok ${t.ok}, failed ${t.failed}, raw resets ${t.rawResets} (resent ok ${t.resentOk}, resent failed ${t.resentFailed})` +
      (t.abortedAtStop ? `, aborted at stop ${t.abortedAtStop}` : ''),
    `versions: ${Object.entries(report.versions).map(([v, c]) => `${v}=${c}`).join(' ') || '(none)'}`,
    `latency (ok, not slow): p50 ${lat.p50.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms, max ${lat.max.toFixed(1)} ms`,
  ];
  for (const [reason, g] of Object.entries(report.failures)) {
    const ex = g.examples[0];
    lines.push(`failed: ${reason} x${g.count}` + (ex ? ` (first at ${ex.start.toFixed(0)} ms, ${ex.kind}/${ex.conn})` : ''));
  }
  return lines.join('\n');
}
