/**
 * Where a deploy's or a rollback's time goes, by phase: the engine's progress lines
 * (`bluegreen [  0.05s] phase  text`, seconds since the engine started) put on the same clock as
 * the app's own timeline (its log lines' timestamps). Pure: no processes, no files.
 */
import type { AppTimeline } from './applog.js';
import { isMeasured, medianOf, type Figure } from './figures.js';

/** One progress line: its phase, its seconds since the engine started, and when the bench read it (epoch ms). */
export interface ProgressLine {
  readonly phase: string;
  readonly seconds: number;
  readonly readAtMs: number;
}

/**
 * The phases of a deploy, in seconds; they add up to its wall time. All but `standbyStop` and
 * `appOwn` are the deploy's overhead.
 */
export const DEPLOY_PHASES = {
  beforeStart: "before the JVM starts (lock, check, release, drain, stop), less the old standby's own stop",
  standbyStop: "the old standby's own stop, Stopping to Stopped line (not overhead)",
  launch: "the engine's start line to the JVM's own start",
  appOwn: "the app's own start-to-ready, JVM start to readiness line (not overhead)",
  noticed: "ready to noticed: readiness line to the engine's health line",
  toSwitch: 'health line to switch line (warm-up requests, if any)',
  switch: 'the switch: switch line to verify line (nginx -t, reload, proof)',
  after: 'after the verify line (history, journal, unlock)',
} as const;

/** The phases of a rollback to the warm standby, in seconds; they add up to its wall time. */
export const ROLLBACK_PHASES = {
  beforeSwitch: "rollback: before the switch line (lock, the standby's health check)",
  switch: 'the switch: switch line to verify line (nginx -t, reload, proof)',
  after: 'after the verify line (history, journal, unlock)',
} as const;

export type DeployPhaseName = keyof typeof DEPLOY_PHASES;
export type RollbackPhaseName = keyof typeof ROLLBACK_PHASES;

/** The overhead phases of a deploy: every phase but the two apps' own start and stop. */
export const OVERHEAD_PHASES: readonly DeployPhaseName[] = ['beforeStart', 'launch', 'noticed', 'toSwitch', 'switch', 'after'];

/**
 * The engine's second 0 on the bench's clock (epoch ms). A line is printed with its time cut to
 * 10 ms and read a little later, so the earliest read-time less its seconds is the closest
 * estimate (within about 10 ms); never before the bench started the engine.
 */
export function engineZeroMs(spawnedAtMs: number, lines: readonly ProgressLine[]): number {
  let zero = Infinity;
  for (const l of lines) zero = Math.min(zero, l.readAtMs - l.seconds * 1000);
  return Number.isFinite(zero) ? Math.max(spawnedAtMs, zero) : spawnedAtMs;
}

/** The first line of each phase: seconds since the engine started. */
export function firstOfEach(lines: readonly ProgressLine[]): Record<string, number> {
  const at: Record<string, number> = {};
  for (const l of lines) at[l.phase] ??= l.seconds;
  return at;
}

/**
 * A deploy's phases (seconds), as far as its lines and the app's timeline give them: a phase
 * whose two ends are not both known is left out. `standbyStop` is 0 when nothing was stopped.
 */
export function deployPhases(
  spawnedAtMs: number,
  wallSeconds: number,
  lines: readonly ProgressLine[],
  app: AppTimeline,
  standbyStop: Figure,
): Partial<Record<DeployPhaseName, number>> {
  const zero = engineZeroMs(spawnedAtMs, lines);
  const at = firstOfEach(lines);
  const onClock = (phase: string): number | undefined => (at[phase] === undefined ? undefined : zero + at[phase]! * 1000);
  const s = (fromMs: number | undefined, toMs: number | undefined): number | undefined =>
    fromMs === undefined || toMs === undefined ? undefined : (toMs - fromMs) / 1000;
  const stop = isMeasured(standbyStop) ? standbyStop : undefined;
  const startLine = onClock('start');
  const beforeStartLine = s(spawnedAtMs, startLine);
  const out: Partial<Record<DeployPhaseName, number | undefined>> = {
    beforeStart: beforeStartLine !== undefined && stop !== undefined ? beforeStartLine - stop : undefined,
    standbyStop: stop,
    launch: s(startLine, app.jvmStartMs),
    appOwn: s(app.jvmStartMs, app.readyMs),
    noticed: s(app.readyMs, onClock('health')),
    toSwitch: s(onClock('health'), onClock('switch')),
    switch: s(onClock('switch'), onClock('verify')),
    after: s(onClock('verify'), spawnedAtMs + wallSeconds * 1000),
  };
  return defined(out);
}

/** A rollback's phases (seconds): before its switch line, the switch, after its verify line. */
export function rollbackPhases(spawnedAtMs: number, wallSeconds: number, lines: readonly ProgressLine[]): Partial<Record<RollbackPhaseName, number>> {
  const zero = engineZeroMs(spawnedAtMs, lines);
  const at = firstOfEach(lines);
  const onClock = (phase: string): number | undefined => (at[phase] === undefined ? undefined : zero + at[phase]! * 1000);
  const s = (fromMs: number | undefined, toMs: number | undefined): number | undefined =>
    fromMs === undefined || toMs === undefined ? undefined : (toMs - fromMs) / 1000;
  return defined({
    beforeSwitch: s(spawnedAtMs, onClock('switch')),
    switch: s(onClock('switch'), onClock('verify')),
    after: s(onClock('verify'), spawnedAtMs + wallSeconds * 1000),
  });
}

function defined<K extends string>(o: Partial<Record<K, number | undefined>>): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const [k, v] of Object.entries(o) as [K, number | undefined][]) if (v !== undefined && Number.isFinite(v)) out[k] = v;
  return out;
}

/**
 * The DOWN time of each of `count` deploys: spread evenly over `spreadMs` around `centreMs`, so
 * that the app becomes ready at every point between two of the engine's health probes. With one
 * fixed DOWN time that is a multiple of the poll interval, readiness would fall at the same point
 * of the probe cycle every time (just before a probe, for 2 s and 0.5 s) and the bench would
 * measure that one point, not the cost an app with any other DOWN time pays.
 */
export function spreadDelays(centreMs: number, spreadMs: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.max(0, Math.round(centreMs - spreadMs / 2 + (i * spreadMs) / count)));
}

/** Per phase, the median over the runs that have it (the medians need not add up to the median total). */
export function phaseMedians<K extends string>(
  runs: readonly Partial<Record<K, number>>[],
  names: readonly K[],
): Record<K, Figure> {
  const out = {} as Record<K, Figure>;
  for (const k of names) out[k] = medianOf(runs.flatMap((r) => (r[k] === undefined ? [] : [r[k]!])), `runs with this phase`);
  return out;
}
