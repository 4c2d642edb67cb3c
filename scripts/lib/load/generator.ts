/**
 * The running load: workers that send the request mix until `stop()`, the resend of a request
 * reset on a reused keep-alive socket, the marks, and the report at the end.
 */
import { performance } from 'node:perf_hooks';
import { AttemptSender, errorReason, type Attempt } from './attempt.js';
import { resolveOptions, resolveTarget } from './options.js';
import { RequestMix, type RequestSpec } from './request-mix.js';
import { Tally } from './tally.js';
import type { ConnectionType, LoadOptions, LoadReport, LoadRun, Mark, StopOptions } from './types.js';

/** Sleeps between a worker's requests that `stop()` can cut short. */
class Pauses {
  private readonly pending = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();

  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.pending.delete(entry);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.pending.add(entry);
    });
  }

  wakeAll(): void {
    for (const entry of this.pending) {
      clearTimeout(entry.timer);
      entry.wake();
    }
    this.pending.clear();
  }
}

/**
 * Starts the load at once and returns a handle. Throws (synchronously) only on bad options.
 * Always call {@link LoadRun.stop}: the workers run until then.
 */
export function startLoad(given: LoadOptions): LoadRun {
  const options = resolveOptions(given);
  const target = resolveTarget(options);
  const mix = new RequestMix(options, target.paths);
  const sender = new AttemptSender(target, options);

  const startedAt = performance.now();
  const startEpochMs = Date.now();
  /** ms since the run started. */
  const now = (): number => performance.now() - startedAt;

  const tally = new Tally(options.maxSamples);
  const marks: Mark[] = [];
  const pauses = new Pauses();
  let stopping = false;
  let stoppedAtMs = 0;
  let stopPromise: Promise<LoadReport> | undefined;

  /** Sends one request, and once more on a new connection if a reused socket reset it unanswered. */
  async function issue(spec: RequestSpec, conn: ConnectionType): Promise<void> {
    const start = now();
    const record = (attempt: Attempt, rawReset: boolean, resent: boolean): void =>
      tally.record({ kind: spec.kind, conn, start, end: now(), attempt, rawReset, resent });
    tally.inFlight++;
    try {
      const first = await sender.send(spec, conn === 'keepalive');
      if (first.aborted) {
        tally.abortedAtStop++;
        return;
      }
      if (!first.resendable) {
        record(first, false, false);
        return;
      }
      tally.rawResets++;
      if (!options.resend) {
        record(first, true, false);
        return;
      }
      const second = await sender.send(spec, false);
      if (second.aborted) {
        tally.abortedAtStop++;
        return;
      }
      record(second, true, true);
    } finally {
      tally.inFlight--;
    }
  }

  async function worker(conn: ConnectionType, index: number): Promise<void> {
    // Offset each worker's counter so that slow and POST requests are spread over time.
    let n = index;
    while (!stopping) {
      n++;
      const spec = mix.next(n);
      try {
        await issue(spec, conn);
      } catch (error) {
        // Not expected (send() never rejects); keep the worker alive and visible.
        const attempt: Attempt = { ok: false, reason: `internal: ${errorReason(error)}`, status: 0, resendable: false, aborted: false };
        const start = now();
        tally.record({ kind: spec.kind, conn, start, end: now(), attempt, rawReset: false, resent: false });
      }
      if (options.thinkMs > 0 && !stopping) await pauses.pause(options.thinkMs);
    }
  }

  const workers: Promise<void>[] = [];
  for (let i = 0; i < options.keepAliveConnections; i++) workers.push(worker('keepalive', i));
  for (let i = 0; i < options.newConnectionWorkers; i++) workers.push(worker('new', i * 7));

  async function stop(stopOptions: StopOptions): Promise<LoadReport> {
    stopping = true;
    stoppedAtMs = now();
    pauses.wakeAll();
    const allWorkersDone = Promise.all(workers).then(() => undefined);
    if (stopOptions.graceMs !== undefined) {
      let graceTimer: NodeJS.Timeout | undefined;
      const grace = new Promise<'grace'>((resolve) => {
        graceTimer = setTimeout(() => resolve('grace'), Math.max(0, stopOptions.graceMs ?? 0));
      });
      const first = await Promise.race([allWorkersDone.then(() => 'done' as const), grace]);
      clearTimeout(graceTimer);
      if (first === 'grace') sender.abortAll();
    }
    await allWorkersDone;
    const durationMs = now();
    sender.close();
    return {
      startEpochMs,
      durationMs,
      stoppedAtMs,
      options,
      totals: tally.totals(),
      failures: { ...tally.failures },
      versions: { ...tally.versions },
      samples: tally.samples,
      samplesDropped: tally.samplesDropped,
      marks: [...marks],
    };
  }

  return {
    stop(stopOptions: StopOptions = {}): Promise<LoadReport> {
      stopPromise ??= stop(stopOptions);
      return stopPromise;
    },
    snapshot: () => tally.counters(now()),
    mark(label: string): number {
      const t = now();
      marks.push({ t, epochMs: startEpochMs + t, label });
      return t;
    },
  };
}
