/**
 * What a run has recorded so far: the counts, the failures by reason (with the first few
 * examples), the OK answers by version, and the samples (up to `maxSamples`).
 */
import type { Attempt } from './attempt.js';
import {
  MAX_FAILURE_EXAMPLES,
  type ConnectionType,
  type FailureGroup,
  type LoadCounters,
  type LoadTotals,
  type RequestKind,
  type Sample,
} from './types.js';

/** How one request ended, as {@link Tally.record} takes it. */
export interface RequestOutcome {
  readonly kind: RequestKind;
  readonly conn: ConnectionType;
  /** When the request (its first attempt) started, ms since the run start. */
  readonly start: number;
  /** When its outcome was known. */
  readonly end: number;
  /** The attempt whose outcome is the request's: the resend, when there was one. */
  readonly attempt: Attempt;
  /** The first attempt was reset on a reused keep-alive socket before any response byte. */
  readonly rawReset: boolean;
  /** The request was sent again on a new connection. */
  readonly resent: boolean;
}

export class Tally {
  requests = 0;
  ok = 0;
  failed = 0;
  rawResets = 0;
  resentOk = 0;
  resentFailed = 0;
  abortedAtStop = 0;
  inFlight = 0;
  samplesDropped = 0;
  readonly versions: Record<string, number> = Object.create(null) as Record<string, number>;
  readonly failures: Record<string, FailureGroup> = Object.create(null) as Record<string, FailureGroup>;
  readonly samples: Sample[] = [];

  constructor(private readonly maxSamples: number) {}

  /** Counts a completed request and keeps its sample while there is room. */
  record({ kind, conn, start, end, attempt, rawReset, resent }: RequestOutcome): void {
    this.requests++;
    if (attempt.ok) {
      this.ok++;
      if (resent) this.resentOk++;
      if (attempt.version !== undefined) this.versions[attempt.version] = (this.versions[attempt.version] ?? 0) + 1;
    } else {
      this.failed++;
      if (resent) this.resentFailed++;
      const reason = attempt.reason ?? 'unknown';
      let group = this.failures[reason];
      if (!group) this.failures[reason] = group = { count: 0, examples: [] };
      group.count++;
      if (group.examples.length < MAX_FAILURE_EXAMPLES) {
        group.examples.push({ start, end, kind, conn, reason, status: attempt.status, resent });
      }
    }
    if (this.samples.length < this.maxSamples) {
      const sample: Sample = { start, end, kind, conn, ok: attempt.ok, status: attempt.status, rawReset, resent };
      if (!attempt.ok) sample.reason = attempt.reason ?? 'unknown';
      if (attempt.version !== undefined) sample.version = attempt.version;
      this.samples.push(sample);
    } else {
      this.samplesDropped++;
    }
  }

  /** The live counters (a copy). */
  counters(elapsedMs: number): LoadCounters {
    return {
      elapsedMs,
      requests: this.requests,
      ok: this.ok,
      failed: this.failed,
      rawResets: this.rawResets,
      resentOk: this.resentOk,
      resentFailed: this.resentFailed,
      inFlight: this.inFlight,
      versions: { ...this.versions },
    };
  }

  /** The totals of the finished run. */
  totals(): LoadTotals {
    const { requests, ok, failed, rawResets, resentOk, resentFailed, abortedAtStop } = this;
    return { requests, ok, failed, rawResets, resentOk, resentFailed, abortedAtStop };
  }
}
