/** The app's own account of its start, read from its log: what deploy overhead is measured against. */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { notMeasured, type Figure } from './figures.js';

/** Size of a file now (0 when it does not exist): where to start reading what a deploy appends. */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * The text of `path` from byte `offset` on ('' when missing). NUL bytes are dropped: a JVM that
 * kept writing to a log another process truncated leaves a hole of them.
 */
export function readFrom(path: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const length = Math.max(0, statSync(path).size - offset);
    const buf = Buffer.alloc(length);
    const n = length ? readSync(fd, buf, 0, length, offset) : 0;
    return buf.subarray(0, n).toString('utf8').replaceAll('\0', '');
  } finally {
    closeSync(fd);
  }
}

const STARTED = /Started \S+ in ([\d.]+) seconds \(process running for ([\d.]+)\)/g;
const FAILED = /APPLICATION FAILED TO START: ([^\n]*)/;

/**
 * The app's own start-to-healthy time in seconds: Spring Boot's "process running for" (JVM
 * uptime when the app reported itself started) on the last "Started ..." line of `logText`.
 */
export function appStartSeconds(logText: string): Figure {
  const matches = [...logText.matchAll(STARTED)];
  const last = matches.at(-1);
  if (last) return Number(last[2]);
  const failed = FAILED.exec(logText);
  if (failed) return notMeasured(`the new app did not start: ${failed[1]!.trim()}`);
  return notMeasured('no "Started ... (process running for ...)" line in the app log');
}

/**
 * One deploy's slot log read as the app's own timeline (epoch ms, from the lines' timestamps):
 * the old standby's graceful stop, then the new JVM's start, its Started line and its readiness.
 */
export interface AppTimeline {
  /** The old standby's "Stopping ..." line (its shutdown hook began: SIGTERM received). */
  readonly stoppingMs?: number;
  /** The old standby's "Stopped ..." line (its last act before the JVM halts). */
  readonly stoppedMs?: number;
  /** When the new JVM started: its Started line's time less its "process running for". */
  readonly jvmStartMs?: number;
  /** The new app's "ReadinessState changed to ACCEPTING_TRAFFIC" line: health UP from here. */
  readonly readyMs?: number;
}

/** `2026-12-02T10:03:27.123Z INFO ...` or `...+01:00 ...`: the epoch ms a line was written. */
const STAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) /;
/** The sample app's lines and, for a real Spring Boot app, its graceful-shutdown ones. */
const STOPPING = /\bStopping \S+|Commencing graceful shutdown/;
const STOPPED = /\bStopped \S+|Graceful shutdown complete/;
const STARTING = /\bStarting \S+ (?:v\S+ )?using Java/;
const STARTED_LINE = /\bStarted \S+ in [\d.]+ seconds \(process running for ([\d.]+)\)/;
const READY = /ReadinessState changed to ACCEPTING_TRAFFIC/;

/**
 * The timeline in `logText` (what one deploy appended to its slot's log): stop lines before the
 * new app's Starting line belong to the old standby that the deploy stopped; the Started and
 * readiness lines after it to the new app. Lines without a timestamp are left out.
 */
export function appTimeline(logText: string): AppTimeline {
  const lines = logText.split('\n');
  let starting = -1;
  lines.forEach((line, i) => {
    if (STARTING.test(line)) starting = i;
  });
  const stamp = (line: string): number | undefined => {
    const m = STAMP.exec(line);
    return m ? Date.parse(m[1]!) : undefined;
  };
  const before = starting < 0 ? lines : lines.slice(0, starting);
  const after = starting < 0 ? [] : lines.slice(starting);
  const last = (from: string[], re: RegExp): string | undefined => from.filter((l) => re.test(l) && STAMP.test(l)).at(-1);
  const first = (from: string[], re: RegExp): string | undefined => from.find((l) => re.test(l) && STAMP.test(l));
  const stopping = last(before, STOPPING);
  const stopped = last(before, STOPPED);
  const started = first(after, STARTED_LINE);
  const ready = first(after, READY);
  const out: { -readonly [K in keyof AppTimeline]: AppTimeline[K] } = {};
  if (stopping) out.stoppingMs = stamp(stopping);
  if (stopped) out.stoppedMs = stamp(stopped);
  if (started) out.jvmStartMs = stamp(started)! - Math.round(Number(STARTED_LINE.exec(started)![1]) * 1000);
  if (ready) out.readyMs = stamp(ready);
  return out;
}

/**
 * The new app's own start-to-ready in seconds: from its JVM's start to its readiness line; for
 * an app that logs no readiness line, its "process running for" (ready when started).
 */
export function appReadySeconds(logText: string): Figure {
  const t = appTimeline(logText);
  if (t.jvmStartMs !== undefined && t.readyMs !== undefined) return (t.readyMs - t.jvmStartMs) / 1000;
  if (t.jvmStartMs !== undefined) {
    return notMeasured('the app logged "Started" but no "ReadinessState changed to ACCEPTING_TRAFFIC" line');
  }
  return appStartSeconds(logText);
}

/**
 * The old standby's own stop in seconds, from its "Stopping" to its "Stopped" line: its graceful
 * shutdown (health DOWN, in-flight requests finished, server closed). Its exit is not in its log,
 * so the moment between SIGTERM and "Stopping" and between "Stopped" and the JVM's exit are not
 * in this figure: they stay in the deploy's overhead. 0 when the deploy stopped nothing.
 */
export function standbyStopSeconds(logText: string, stoppedOne: boolean): Figure {
  if (!stoppedOne) return 0;
  const t = appTimeline(logText);
  if (t.stoppingMs === undefined || t.stoppedMs === undefined) {
    return notMeasured('the engine stopped the old standby, but its log has no "Stopping" and "Stopped" lines');
  }
  return (t.stoppedMs - t.stoppingMs) / 1000;
}
