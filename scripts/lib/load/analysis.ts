/**
 * Pure helpers over a finished {@link LoadReport}: latency percentiles, the samples of a time
 * window, which versions answered after a mark, requests per second by version (for a chart),
 * and a few summary lines for a human.
 */
import type { LoadReport, Sample } from './types.js';

/** Latency of one sample, in ms (for a resent request: from the first attempt to the resend's end). */
export function latency(sample: Sample): number {
  return sample.end - sample.start;
}

/**
 * The p-th percentile (0–100, nearest-rank) of the samples' latencies, in ms; NaN when there are
 * none. Pass `samples.filter((s) => s.ok)` or {@link samplesBetween} to narrow it.
 */
export function percentile(samples: readonly Sample[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in [0, 100], got ${p}`);
  if (samples.length === 0) return Number.NaN;
  const latencies = Float64Array.from(samples, latency).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * latencies.length));
  return latencies[rank - 1]!;
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
  return report.samples.filter((sample) => sample.start >= fromMs && sample.start < toMs);
}

/** The time of the first mark with this label, or undefined. */
export function markTime(report: LoadReport, label: string): number | undefined {
  return report.marks.find((mark) => mark.label === label)?.t;
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
    const marked = markTime(report, t);
    if (marked === undefined) throw new Error(`versionsStartedAfter: no mark labelled ${JSON.stringify(t)}`);
    from = marked;
  } else {
    from = t;
  }
  const seen = new Set<string>();
  for (const sample of report.samples) {
    if (sample.start >= from && sample.version !== undefined) seen.add(sample.version);
  }
  return [...seen].sort();
}

/** Counts of samples by `version` (samples without one are left out). */
export function countVersions(samples: readonly Sample[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const sample of samples) if (sample.version !== undefined) counts[sample.version] = (counts[sample.version] ?? 0) + 1;
  return counts;
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
  let lastEnd = Math.max(report.durationMs, 0);
  for (const sample of report.samples) if (sample.end > lastEnd) lastEnd = sample.end;
  const bucketCount = Math.max(1, Math.ceil(lastEnd / bucketMs) || 1);
  const answered = new Set<string>();
  for (const sample of report.samples) if (sample.ok && sample.version !== undefined) answered.add(sample.version);
  const versions = [...answered].sort();
  const perSecond = 1000 / bucketMs;
  const buckets: RateBucket[] = [];
  for (let i = 0; i < bucketCount; i++) {
    const counts: Record<string, number> = {};
    for (const version of versions) counts[version] = 0;
    buckets.push({ startMs: i * bucketMs, perSecond: counts, failedPerSecond: 0 });
  }
  for (const sample of report.samples) {
    const bucket = buckets[Math.min(bucketCount - 1, Math.max(0, Math.floor(sample.end / bucketMs)))]!;
    if (sample.ok && sample.version !== undefined) bucket.perSecond[sample.version]! += perSecond;
    else if (!sample.ok) bucket.failedPerSecond += perSecond;
  }
  return { bucketMs, versions, buckets };
}

/** One time bucket of {@link latencyPerBucket}: NaN where no request completed in it. */
export interface LatencyBucket {
  /** Bucket start, ms since the run start. */
  startMs: number;
  p50: number;
  p99: number;
}

/**
 * p50 and p99 latency (ms) of the OK requests that are not deliberately slow, per time bucket by
 * completion time, over the same buckets as {@link ratePerVersion}: what a dip in the rate was.
 */
export function latencyPerBucket(report: LoadReport, bucketMs = 1000): LatencyBucket[] {
  const { buckets } = ratePerVersion(report, bucketMs);
  const grouped: Sample[][] = buckets.map(() => []);
  for (const sample of report.samples) {
    if (!sample.ok || sample.kind === 'slow') continue;
    grouped[Math.min(buckets.length - 1, Math.max(0, Math.floor(sample.end / bucketMs)))]!.push(sample);
  }
  return buckets.map((bucket, i) => ({ startMs: bucket.startMs, p50: percentile(grouped[i]!, 50), p99: percentile(grouped[i]!, 99) }));
}

/**
 * When traffic moved to `version`: the start (ms since the run start) of the first OK request that
 * started at or after `fromMs` and was answered by it; undefined when none was. With `fromMs` the
 * start of a deploy or rollback, that is the switch as the clients saw it, not the command.
 */
export function firstAnsweredBy(report: LoadReport, version: string, fromMs: number): number | undefined {
  let first: number | undefined;
  for (const sample of report.samples) {
    if (sample.ok && sample.version === version && sample.start >= fromMs && (first === undefined || sample.start < first)) first = sample.start;
  }
  return first;
}

/** A few lines for a human: totals, failures by reason, versions, latency. */
export function formatSummary(report: LoadReport): string {
  const totals = report.totals;
  const seconds = report.durationMs / 1000;
  const latencies = latencySummary(report.samples.filter((sample) => sample.ok && sample.kind !== 'slow'));
  const lines = [
    `requests ${totals.requests} in ${seconds.toFixed(1)} s (${(totals.requests / Math.max(seconds, 1e-9)).toFixed(0)}/s): ` +
      `ok ${totals.ok}, failed ${totals.failed}, raw resets ${totals.rawResets} (resent ok ${totals.resentOk}, resent failed ${totals.resentFailed})` +
      (totals.abortedAtStop ? `, aborted at stop ${totals.abortedAtStop}` : ''),
    `versions: ${Object.entries(report.versions).map(([version, count]) => `${version}=${count}`).join(' ') || '(none)'}`,
    `latency (ok, not slow): p50 ${latencies.p50.toFixed(1)} ms, p99 ${latencies.p99.toFixed(1)} ms, max ${latencies.max.toFixed(1)} ms`,
  ];
  for (const [reason, group] of Object.entries(report.failures)) {
    const example = group.examples[0];
    lines.push(`failed: ${reason} x${group.count}` + (example ? ` (first at ${example.start.toFixed(0)} ms, ${example.kind}/${example.conn})` : ''));
  }
  return lines.join('\n');
}
