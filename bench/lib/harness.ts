/**
 * The one harness that drives both deploy flows (ours and the original re-creation): continuous
 * load through the flow's Nginx, a series of deploys with steady time between them, and the
 * analysis of what the clients saw. Each flow only says how to run one deploy and when, in its
 * own output, the switch happened.
 */
import {
  latencySummary,
  startLoad,
  type LoadOptions,
  type LoadReport,
  type Sample,
} from '../../scripts/lib/load.js';
import {
  fmt,
  isMeasured,
  maxOf,
  measuredValues,
  medianOf,
  notMeasured,
  percentileOf,
  type Figure,
} from './figures.js';
import { sleep } from './processes.js';

/** When, in a flow's own output, Nginx was told to switch (`switch`) and was proven or assumed done (`switched`). */
export type DeployPhase = 'switch' | 'switched';

/** What one deploy did, as its flow reports it. */
export interface DeployRun {
  /** The deploy command exited 0. */
  readonly ok: boolean;
  readonly code: number | null;
  /** Wall-clock time of the deploy command, start to exit. */
  readonly wallSeconds: number;
  /**
   * The new app's own start-to-ready time, from its log: its JVM's start to its readiness line
   * (ours), or its "process running for" (the original's); or why unknown.
   */
  readonly appSeconds: Figure;
  /**
   * The old standby's own stop that the deploy waited for, from its log ("Stopping" to "Stopped"):
   * not the deploy's overhead either. Absent: the flow does not measure it (nothing is subtracted).
   */
  readonly stopSeconds?: Figure;
  /** One line for humans: what the deploy did. */
  readonly summary: string;
  /** Flow-specific facts, kept in the JSON result. */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface DeployFlow {
  readonly name: string;
  /** Runs one deploy of `jar` as `version`, calling `onPhase` as soon as its output shows a phase. */
  deploy(jar: string, version: string, onPhase: (phase: DeployPhase) => void): Promise<DeployRun>;
}

/** A deploy placed on the load run's clock (ms since the load started). */
export interface TimedDeploy extends DeployRun {
  readonly index: number;
  readonly version: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly switchMs: number | null;
  readonly switchedMs: number | null;
}

export interface Release {
  readonly version: string;
  readonly jar: string;
}

export type LoadSettings = Required<
  Pick<LoadOptions, 'keepAliveConnections' | 'newConnectionWorkers' | 'slowRequestEvery' | 'slowMs' | 'postEvery' | 'thinkMs'>
>;

export interface HarnessSettings {
  readonly load: LoadSettings;
  /** Load before the first deploy; its latencies are left out (client and JIT warm-up). */
  readonly warmupMs: number;
  /** Steady time after each deploy, before the next one (and after the last). */
  readonly gapMs: number;
  readonly log: (message: string) => void;
}

export interface LoadedDeploys {
  readonly report: LoadReport;
  /** When the measured part began (after the warm-up), ms since the load started. */
  readonly measuredFromMs: number;
  readonly deploys: TimedDeploy[];
}

/** Half-width of the "within 2 s of a switch" window. */
export const SWITCH_WINDOW_MS = 2000;

/** Runs `releases` one after another through `flow` under continuous load on `baseUrl`. */
export async function deploysUnderLoad(
  flow: DeployFlow,
  baseUrl: string,
  releases: readonly Release[],
  settings: HarnessSettings,
  registerStop: (stop: () => Promise<unknown>) => void,
): Promise<LoadedDeploys> {
  const run = startLoad({ baseUrl, ...settings.load });
  registerStop(() => run.stop({ graceMs: 2000 }));
  await sleep(settings.warmupMs);
  const measuredFromMs = run.mark('measured from here');
  const deploys: TimedDeploy[] = [];
  for (const [index, release] of releases.entries()) {
    const startMs = run.mark(`${flow.name} deploy ${release.version} start`);
    let switchMs: number | null = null;
    let switchedMs: number | null = null;
    const result = await flow.deploy(release.jar, release.version, (phase) => {
      const t = run.mark(`${flow.name} deploy ${release.version} ${phase}`);
      if (phase === 'switch') switchMs ??= t;
      else switchedMs = t;
    });
    const endMs = run.mark(`${flow.name} deploy ${release.version} end`);
    deploys.push({ ...result, index, version: release.version, startMs, endMs, switchMs, switchedMs });
    const c = run.snapshot();
    settings.log(
      `${flow.name} deploy ${index + 1}/${releases.length} (${release.version}): ${result.ok ? 'ok' : `FAILED (exit ${result.code})`} ` +
        `in ${result.wallSeconds.toFixed(2)} s, app ${fmt(result.appSeconds, 2, ' s')}; ${result.summary}; ` +
        `so far ${c.requests} requests, ${c.failed} failed, ${c.rawResets} raw resets`,
    );
    await sleep(settings.gapMs);
  }
  const report = await run.stop({ graceMs: 5000 });
  return { report, measuredFromMs, deploys };
}

// ---------------------------------------------------------------------------------------------
// Analysis
// ---------------------------------------------------------------------------------------------

export interface LatencyFigures {
  /** Requests in this class (successful, not the deliberately slow ones). */
  readonly count: number;
  readonly p50: Figure;
  readonly p99: Figure;
}

export interface SwapDetail {
  readonly version: string;
  readonly ok: boolean;
  readonly wallSeconds: number;
  /** Requests that started between this deploy's start and the next one's (or the end). */
  readonly requests: number;
  readonly failed: number;
  readonly rawResets: number;
  /** Versions that answered requests started after the switch (until the next deploy). */
  readonly servedAfter: Record<string, number>;
  /** Only this deploy's version answered after its switch. */
  readonly newVersionServed: boolean;
  readonly summary: string;
}

export interface SwapFigures {
  readonly deploys: number;
  readonly succeeded: number;
  readonly newVersionServed: number;
  readonly loadSeconds: number;
  readonly requests: number;
  readonly ok: number;
  readonly non2xx: number;
  readonly failed: number;
  readonly failedNewConnection: number;
  readonly failedKeepAlive: number;
  readonly rawResets: number;
  readonly resentOk: number;
  readonly failuresByReason: Record<string, number>;
  readonly samplesDropped: number;
  readonly resetsPerSwap: { readonly median: Figure; readonly max: Figure; readonly each: number[] };
  readonly latency: {
    /** No deploy running, and more than 2 s from any switch. */
    readonly steady: LatencyFigures;
    /** From 2 s before a switch to 2 s after it was done. */
    readonly switch: LatencyFigures;
    /** A deploy running (the new app booting), more than 2 s from its switch. */
    readonly booting: LatencyFigures;
  };
  readonly perSwap: SwapDetail[];
}

interface Window {
  readonly from: number;
  readonly to: number;
}

function inAny(t: number, windows: readonly Window[]): boolean {
  return windows.some((w) => t >= w.from && t < w.to);
}

function latencyFigures(samples: readonly Sample[], what: string): LatencyFigures {
  if (samples.length === 0) {
    const why = notMeasured(`no successful ${what} requests`);
    return { count: 0, p50: why, p99: why };
  }
  const s = latencySummary(samples);
  return { count: s.count, p50: s.p50, p99: s.p99 };
}

const isNon2xx = (s: Sample): boolean => s.status !== 0 && (s.status < 200 || s.status > 299);

export function analyseSwaps(loaded: LoadedDeploys): SwapFigures {
  const { report, deploys, measuredFromMs } = loaded;
  const samples = report.samples;
  const endMs = report.stoppedAtMs;

  const switchedAt = (d: TimedDeploy): number => d.switchedMs ?? d.switchMs ?? d.endMs;
  const deployWindows: Window[] = deploys.map((d) => ({ from: d.startMs, to: switchedAt(d) + SWITCH_WINDOW_MS }));
  const switchWindows: Window[] = deploys
    .filter((d) => d.switchMs !== null)
    .map((d) => ({ from: d.switchMs! - SWITCH_WINDOW_MS, to: switchedAt(d) + SWITCH_WINDOW_MS }));

  const steady: Sample[] = [];
  const atSwitch: Sample[] = [];
  const booting: Sample[] = [];
  for (const s of samples) {
    if (!s.ok || s.kind === 'slow' || s.start < measuredFromMs) continue;
    if (inAny(s.start, switchWindows)) atSwitch.push(s);
    else if (inAny(s.start, deployWindows)) booting.push(s);
    else steady.push(s);
  }

  const perSwap: SwapDetail[] = deploys.map((d, i) => {
    const until = deploys[i + 1]?.startMs ?? endMs;
    const during = samples.filter((s) => s.start >= d.startMs && s.start < until);
    const after = samples.filter((s) => s.start >= switchedAt(d) && s.start < until);
    const servedAfter: Record<string, number> = {};
    for (const s of after) {
      const key = s.version ?? (s.status ? `status ${s.status}` : (s.reason ?? 'no answer'));
      servedAfter[key] = (servedAfter[key] ?? 0) + 1;
    }
    const keys = Object.keys(servedAfter);
    return {
      version: d.version,
      ok: d.ok,
      wallSeconds: d.wallSeconds,
      requests: during.length,
      failed: during.filter((s) => !s.ok).length,
      rawResets: during.filter((s) => s.rawReset).length,
      servedAfter,
      newVersionServed: d.switchMs !== null && keys.length === 1 && keys[0] === d.version,
      summary: d.summary,
    };
  });
  const resets = perSwap.map((p) => p.rawResets);

  const failuresByReason: Record<string, number> = {};
  for (const [reason, group] of Object.entries(report.failures)) failuresByReason[reason] = group.count;

  return {
    deploys: deploys.length,
    succeeded: deploys.filter((d) => d.ok).length,
    newVersionServed: perSwap.filter((p) => p.newVersionServed).length,
    loadSeconds: report.durationMs / 1000,
    requests: report.totals.requests,
    ok: report.totals.ok,
    non2xx: samples.filter(isNon2xx).length,
    failed: report.totals.failed,
    failedNewConnection: samples.filter((s) => !s.ok && s.conn === 'new').length,
    failedKeepAlive: samples.filter((s) => !s.ok && s.conn === 'keepalive').length,
    rawResets: report.totals.rawResets,
    resentOk: report.totals.resentOk,
    failuresByReason,
    samplesDropped: report.samplesDropped,
    resetsPerSwap: { median: medianOf(resets, 'swaps'), max: maxOf(resets, 'swaps'), each: resets },
    latency: {
      steady: latencyFigures(steady, 'steady-state'),
      switch: latencyFigures(atSwitch, 'switch-window'),
      booting: latencyFigures(booting, 'boot-window'),
    },
    perSwap,
  };
}

export interface OverheadFigures {
  readonly wall: { readonly median: Figure; readonly max: Figure };
  readonly app: { readonly median: Figure };
  /** The old standby's own stop, where the flow measures it. */
  readonly stop: { readonly median: Figure };
  /** Per deploy: wall time minus the app's own start-to-ready time and the old standby's own stop. */
  readonly overhead: { readonly median: Figure; readonly max: Figure; readonly each: Figure[] };
}

/** Deploy overhead: each deploy's wall time minus its app's own start-to-ready and, where measured, the old standby's own stop. */
export function analyseOverhead(deploys: readonly TimedDeploy[]): OverheadFigures {
  const each: Figure[] = deploys.map((d) => {
    if (!d.ok) return notMeasured(`the deploy of ${d.version} failed (exit ${d.code})`);
    if (!isMeasured(d.appSeconds)) return d.appSeconds;
    if (d.stopSeconds === undefined) return d.wallSeconds - d.appSeconds;
    if (!isMeasured(d.stopSeconds)) return d.stopSeconds;
    return d.wallSeconds - d.appSeconds - d.stopSeconds;
  });
  const overheads = measuredValues(each);
  // With no deploy measured, the first deploy's reason says more than "no deploys".
  const firstReason = each.find((f) => !isMeasured(f));
  const orReason = (f: Figure): Figure => (overheads.length === 0 && firstReason ? firstReason : f);
  return {
    wall: { median: medianOf(deploys.map((d) => d.wallSeconds), 'deploys'), max: maxOf(deploys.map((d) => d.wallSeconds), 'deploys') },
    app: { median: medianOf(measuredValues(deploys.map((d) => d.appSeconds)), 'app start times in the logs') },
    stop: {
      median: deploys.some((d) => d.stopSeconds !== undefined)
        ? medianOf(measuredValues(deploys.map((d) => d.stopSeconds ?? notMeasured('not measured'))), 'standby stops in the logs')
        : notMeasured('this flow does not measure it: nothing is subtracted'),
    },
    overhead: {
      median: orReason(medianOf(overheads, 'deploys with a measured app start')),
      max: orReason(maxOf(overheads, 'deploys with a measured app start')),
      each,
    },
  };
}

/** The p-th percentile of the named numeric detail over deploys that have it. */
export function detailPercentile(deploys: readonly TimedDeploy[], key: string, p: number): Figure {
  const values = deploys.map((d) => d.details[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return percentileOf(values, p, `deploys with ${key}`);
}
