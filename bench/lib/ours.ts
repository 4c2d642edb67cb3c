/**
 * Our flows for the harness: `bluegreen deploy` and `bluegreen rollback` on a local host
 * (scripts/local-host), their phases read from the progress lines and the slot's log. And the physical
 * limit of a swap: one health poll interval plus an Nginx reload, measured on the same Nginx.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLUEGREEN, type LocalHost } from '../../scripts/lib/host.js';
import { startLoad, type LoadReport } from '../../scripts/lib/load.js';
import { appReadySeconds, appTimeline, fileSize, readFrom, standbyStopSeconds } from './applog.js';
import { medianOf, notMeasured, type Figure } from './figures.js';
import type { DeployFlow, DeployPhase, DeployRun, LoadSettings } from './harness.js';
import { deployPhases, firstOfEach, rollbackPhases, type ProgressLine } from './phases.js';
import { acceptingWorkers, runTracked, sleep } from './processes.js';

type Slot = 'blue' | 'green';

/** `bluegreen [  3.80s] switch   pointing Nginx at ...` -> seconds since the deploy started, phase, text. */
const PROGRESS = /^bluegreen \[\s*([\d.]+)s\] (\S+)\s+(.*)$/;

/** Phase names of the engine's progress lines that mark the switch and its proof. */
const ENGINE_PHASES: Readonly<Record<string, DeployPhase>> = { switch: 'switch', verify: 'switched' };

/** Runs `bluegreen ARGS` on the host, reading its progress lines as they come. */
async function runEngine(
  host: LocalHost,
  env: Readonly<Record<string, string>>,
  args: string[],
  onPhase: (phase: DeployPhase) => void,
): Promise<{ code: number | null; stderr: string; spawnedAtMs: number; wallSeconds: number; lines: ProgressLine[]; texts: Record<string, string> }> {
  const lines: ProgressLine[] = [];
  const texts: Record<string, string> = {};
  const spawnedAtMs = Date.now();
  const result = await runTracked(BLUEGREEN, args, {
    env: host.env({ ...env }),
    timeoutMs: 300_000,
    onLine: (line) => {
      const readAtMs = Date.now();
      const m = PROGRESS.exec(line);
      if (!m) return;
      const [, seconds, phase, text] = m;
      lines.push({ phase: phase!, seconds: Number(seconds), readAtMs });
      texts[phase!] ??= text!;
      const harnessPhase = ENGINE_PHASES[phase!];
      if (harnessPhase) onPhase(harnessPhase);
    },
  });
  return { code: result.code, stderr: result.stderr, spawnedAtMs, wallSeconds: result.ms / 1000, lines, texts };
}

function switchSummary(at: Record<string, number>): string {
  return at.switch !== undefined && at.verify !== undefined ? `${(at.verify - at.switch).toFixed(2)} s` : '?';
}

export class OurFlow implements DeployFlow {
  readonly name = 'ours';

  constructor(
    private readonly host: LocalHost,
    private readonly env: Readonly<Record<string, string>>,
  ) {}

  private slotLog(slot: Slot): string {
    return join(this.host.dir, 'logs', `${slot}.log`);
  }

  async deploy(jar: string, version: string, onPhase: (phase: DeployPhase) => void): Promise<DeployRun> {
    const logOffsets = { blue: fileSize(this.slotLog('blue')), green: fileSize(this.slotLog('green')) };
    const run = await runEngine(this.host, this.env, ['deploy', jar, '--version', version], onPhase);
    const at = firstOfEach(run.lines);
    const slot = /^started (blue|green)\b/.exec(run.texts.start ?? '')?.[1] as Slot | undefined;
    // The deploy starts the new app in the slot of the old standby it stops: one log holds both.
    const log = slot ? readFrom(this.slotLog(slot), logOffsets[slot]) : '';
    const appSeconds: Figure = slot ? appReadySeconds(log) : notMeasured('the engine did not report which slot it started');
    const stopSeconds: Figure = slot ? standbyStopSeconds(log, at.stop !== undefined) : notMeasured('the engine did not report which slot it started');
    const phaseSeconds = deployPhases(run.spawnedAtMs, run.wallSeconds, run.lines, appTimeline(log), stopSeconds);

    const ok = run.code === 0;
    const summary = ok ? `${slot ?? '?'} live; switch ${switchSummary(at)}` : `failed: ${run.stderr.trim().split('\n').at(-1) ?? ''}`;
    return {
      ok,
      code: run.code,
      wallSeconds: run.wallSeconds,
      appSeconds,
      stopSeconds,
      summary,
      details: { slot: slot ?? null, progressAt: at, phaseSeconds, stderr: ok ? undefined : run.stderr },
    };
  }
}

/**
 * `bluegreen rollback` as a flow for the harness: each "deploy" rolls back to the warm standby,
 * whose version is the release given; no app starts, so there is no app time to subtract.
 */
export class RollbackFlow implements DeployFlow {
  readonly name = 'rollback';

  constructor(
    private readonly host: LocalHost,
    private readonly env: Readonly<Record<string, string>>,
  ) {}

  async deploy(_jar: string, version: string, onPhase: (phase: DeployPhase) => void): Promise<DeployRun> {
    const run = await runEngine(this.host, this.env, ['rollback'], onPhase);
    const at = firstOfEach(run.lines);
    const ok = run.code === 0;
    return {
      ok,
      code: run.code,
      wallSeconds: run.wallSeconds,
      appSeconds: notMeasured('a rollback starts no app'),
      summary: ok ? `rolled back to ${version}; switch ${switchSummary(at)}` : `failed: ${run.stderr.trim().split('\n').at(-1) ?? ''}`,
      details: { progressAt: at, phaseSeconds: rollbackPhases(run.spawnedAtMs, run.wallSeconds, run.lines), stderr: ok ? undefined : run.stderr },
    };
  }
}

/** How this host's Nginx is run (the command line `bluegreen.conf` gives the engine). */
function nginxCommand(host: LocalHost): string[] {
  const conf = readFileSync(host.conf, 'utf8');
  const line = /^BLUEGREEN_NGINX=(.*)$/m.exec(conf)?.[1];
  if (!line) throw new Error(`${host.conf} has no BLUEGREEN_NGINX line`);
  return line.trim().split(/\s+/);
}

export interface ReloadMeasurement {
  /** Median seconds from `nginx -s reload` until new workers run and no old one accepts. */
  readonly median: Figure;
  readonly each: number[];
  /** What clients saw during these reloads (no deploy running), when measured under load. */
  readonly load?: { readonly requests: number; readonly failed: number; readonly rawResets: number };
}

/**
 * Times `nginx -s reload` on the host's Nginx until the reload has taken: new workers accept
 * connections and every old worker is shutting down or gone. With `load`, under that load of
 * its own (never during a deploy), so that the time is taken in the deploys' conditions and the
 * raw resets that reloads alone cause are counted apart from the swaps'.
 */
export async function measureReload(host: LocalHost, count: number, load?: LoadSettings): Promise<ReloadMeasurement> {
  const run = load ? startLoad({ baseUrl: host.url, ...load }) : undefined;
  let timed: { each: number[]; failure?: string };
  let report: LoadReport | undefined;
  try {
    timed = await timeReloads(host, count, load ? 1000 : 300);
  } finally {
    report = await run?.stop({ graceMs: 3000 });
  }
  const median = timed.failure ? notMeasured(timed.failure) : medianOf(timed.each, 'reloads');
  if (!report) return { median, each: timed.each };
  const t = report.totals;
  return { median, each: timed.each, load: { requests: t.requests, failed: t.failed, rawResets: t.rawResets } };
}

async function timeReloads(host: LocalHost, count: number, pauseMs: number): Promise<{ each: number[]; failure?: string }> {
  const [command, ...args] = nginxCommand(host);
  const each: number[] = [];
  await sleep(pauseMs);
  for (let i = 0; i < count; i++) {
    const master = host.nginxMasterPid();
    const old = new Set(acceptingWorkers(master));
    const started = performance.now();
    const r = await runTracked(command!, [...args, '-s', 'reload']);
    if (r.code !== 0) return { each, failure: `nginx -s reload failed: ${r.stderr.trim()}` };
    const deadline = started + 10_000;
    for (;;) {
      const now = acceptingWorkers(master);
      if (now.length > 0 && now.every((pid) => !old.has(pid))) break;
      if (performance.now() > deadline) return { each, failure: 'the reload did not take within 10 s' };
      await sleep(1);
    }
    each.push((performance.now() - started) / 1000);
    await sleep(pauseMs);
  }
  return { each };
}

/** The health poll interval the engine used: BLUEGREEN_HEALTH_INTERVAL from the env, the conf, or its default. */
export function healthInterval(host: LocalHost, env: Readonly<Record<string, string>>): Figure {
  if (env.BLUEGREEN_HEALTH_INTERVAL) return Number(env.BLUEGREEN_HEALTH_INTERVAL);
  const fromConf = /^BLUEGREEN_HEALTH_INTERVAL=(.*)$/m.exec(readFileSync(host.conf, 'utf8'))?.[1];
  if (fromConf) return Number(fromConf);
  // The engine's default lives in its config_defaults; ask the engine rather than repeat it.
  const r = spawnSync('bash', ['-c', `source "$1/lib/common.sh" && config_defaults`, 'bench', join(BLUEGREEN, '..', '..')], {
    encoding: 'utf8',
  });
  const fromDefaults = /^BLUEGREEN_HEALTH_INTERVAL=(.*)$/m.exec(r.stdout)?.[1];
  return fromDefaults ? Number(fromDefaults) : notMeasured('could not read BLUEGREEN_HEALTH_INTERVAL');
}
