/**
 * One attempt of a request on the wire, and what it proved: a complete 2xx answer that parses
 * as JSON with a `version` (and for `/echo`, repeats the body's byte count and SHA-256), or why
 * not. Also tells a reset on a reused keep-alive socket before any response byte (which may be
 * resent, RFC 9112 §9.3.1) from every other failure.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { LoadTarget } from './options.js';
import type { RequestSpec } from './request-mix.js';
import type { FailureReason, ResolvedLoadOptions } from './types.js';

/** Error codes of a connection that the peer closed under a request (RFC 9112 §9.3.1 case). */
const CONNECTION_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** The result of one attempt on the wire. */
export interface Attempt {
  readonly ok: boolean;
  readonly reason?: FailureReason;
  readonly status: number;
  readonly version?: string;
  /** Reset on a reused socket before any response byte: may be resent. */
  readonly resendable: boolean;
  /** Aborted by stop({ graceMs }). */
  readonly aborted: boolean;
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

/** The failure reason an error stands for: `timeout`, its code, or its message. */
export function errorReason(error: unknown): FailureReason {
  if (error instanceof TimeoutError) return 'timeout';
  const errno = error as NodeJS.ErrnoException | undefined;
  if (errno && typeof errno.code === 'string' && errno.code) return errno.code;
  if (errno && typeof errno.message === 'string' && errno.message) return errno.message;
  return String(error);
}

function isConnectionError(error: unknown): boolean {
  const errno = error as NodeJS.ErrnoException | undefined;
  if (!errno || error instanceof TimeoutError || error instanceof StopAbortError) return false;
  return (typeof errno.code === 'string' && CONNECTION_ERRORS.has(errno.code)) || errno.message === 'socket hang up';
}

const ABORTED: Attempt = { ok: false, status: 0, resendable: false, aborted: true };

function failed(reason: FailureReason, status: number, version?: string): Attempt {
  return { ok: false, reason, status, version, resendable: false, aborted: false };
}

/**
 * Sends attempts to one target, on a shared keep-alive agent or on a new connection each, and
 * can abort every attempt still on the wire (for `stop({ graceMs })`).
 */
export class AttemptSender {
  /** Shared by the keep-alive workers, one connection each. */
  private readonly agent: http.Agent;
  /** Abort functions of the attempts on the wire. */
  private readonly onTheWire = new Set<() => void>();
  /** Set once stop({ graceMs }) gave up waiting: attempts (e.g. a resend) are then not sent. */
  private abortingAll = false;

  constructor(
    private readonly target: LoadTarget,
    private readonly options: Pick<ResolvedLoadOptions, 'keepAliveConnections' | 'requestTimeoutMs'>,
  ) {
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: Math.max(1, options.keepAliveConnections),
      maxFreeSockets: Math.max(1, options.keepAliveConnections),
      // FIFO keeps every pooled connection in use, so all of them are exposed to a reload.
      scheduling: 'fifo',
    });
  }

  /** Aborts every attempt on the wire, and every later one before it is sent. */
  abortAll(): void {
    this.abortingAll = true;
    for (const abort of [...this.onTheWire]) abort();
  }

  /** Closes the agent's connections. */
  close(): void {
    this.agent.destroy();
  }

  /** One attempt on the wire. Always resolves, exactly once. */
  send(spec: RequestSpec, useAgent: boolean): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      // The status of the answer whose head has arrived; 0 until then.
      let respondedStatus = 0;
      let socket: Socket | undefined;
      let bytesReadAtAssign = 0;
      let failure: unknown;

      const headers: http.OutgoingHttpHeaders = {};
      if (!useAgent) headers.connection = 'close';
      if (spec.body) {
        headers['content-type'] = 'application/octet-stream';
        headers['content-length'] = spec.body.data.length;
      }

      let request: http.ClientRequest;
      const abort = (why: Error): void => {
        failure ??= why;
        request.destroy(why);
      };
      const abortAtStop = (): void => abort(new StopAbortError());
      const finish = (attempt: Attempt): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.onTheWire.delete(abortAtStop);
        resolve(attempt);
      };

      if (this.abortingAll) {
        resolve(ABORTED);
        return;
      }
      try {
        request = http.request({
          host: this.target.host,
          port: this.target.port,
          method: spec.method,
          path: spec.path,
          headers,
          agent: useAgent ? this.agent : false,
        });
      } catch (error) {
        resolve(failed(errorReason(error), 0));
        return;
      }
      this.onTheWire.add(abortAtStop);
      const timer = setTimeout(() => abort(new TimeoutError()), this.options.requestTimeoutMs);

      request.on('socket', (assigned: Socket) => {
        socket = assigned;
        bytesReadAtAssign = assigned.bytesRead;
      });

      request.on('error', (error: Error) => {
        const cause = failure ?? error;
        if (cause instanceof StopAbortError) {
          finish(ABORTED);
          return;
        }
        if (respondedStatus !== 0) {
          // The response had started: its body is lost whatever the socket said.
          finish(failed(cause instanceof TimeoutError ? 'timeout' : 'incomplete body', respondedStatus));
          return;
        }
        const noResponseByte = socket === undefined || socket.bytesRead === bytesReadAtAssign;
        // A socket that had read bytes before this request carried an earlier response: it is
        // reused. `request.reusedSocket` alone misses sockets that Node's agent hands straight
        // from a finished request to a queued one (its 'free' handler skips `reuseSocket()`),
        // which happens whenever a reset socket is still counted against maxSockets.
        const reused = request.reusedSocket || bytesReadAtAssign > 0;
        const resendable = useAgent && reused && noResponseByte && isConnectionError(cause);
        finish({ ...failed(errorReason(cause), 0), resendable });
      });

      request.on('response', (response: http.IncomingMessage) => {
        const status = response.statusCode ?? 0;
        respondedStatus = status;
        const is2xx = status >= 200 && status < 300;
        const chunks: Buffer[] = [];
        let received = 0;
        const declared = response.headers['content-length'];
        const expected = declared !== undefined ? Number(declared) : undefined;

        response.on('data', (chunk: Buffer) => {
          if (is2xx) chunks.push(chunk);
          received += chunk.length;
        });
        response.on('error', () => {
          /* reported through 'close' below */
        });
        response.on('close', () => {
          if (settled) return;
          if (failure instanceof StopAbortError) {
            finish({ ok: false, status, resendable: false, aborted: true });
          } else if (failure instanceof TimeoutError) {
            finish(failed('timeout', status));
          } else if (!response.complete) {
            finish(failed('incomplete body', status));
          }
        });
        response.on('end', () => {
          if (!is2xx) {
            finish(failed(`status ${status}`, status));
            return;
          }
          if (!response.complete || (expected !== undefined && received !== expected)) {
            finish(failed('incomplete body', status));
            return;
          }
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks, received).toString('utf8'));
          } catch {
            finish(failed('bad json', status));
            return;
          }
          const version =
            body !== null && typeof body === 'object' && typeof (body as { version?: unknown }).version === 'string'
              ? (body as { version: string }).version
              : undefined;
          if (version === undefined) {
            finish(failed('bad json', status));
            return;
          }
          if (spec.body) {
            const echo = body as { bytes?: unknown; sha256?: unknown };
            if (echo.bytes !== spec.body.data.length || echo.sha256 !== spec.body.sha256) {
              finish(failed('echo mismatch', status, version));
              return;
            }
          }
          finish({ ok: true, status, version, resendable: false, aborted: false });
        });
      });

      request.end(spec.body?.data);
    });
  }
}
