/**
 * Proxy cost: requests per second and p99 latency with wrk, direct to the app, through our Nginx
 * configuration and through the original's, against the same app process on the same machine.
 */
import { medianOf, notMeasured, ratio, type Figure } from './figures.js';
import { runTracked, sleep } from './processes.js';

export interface WrkSettings {
  readonly threads: number;
  readonly connections: number;
  readonly seconds: number;
  /** Unmeasured run before each measured one (connections opened, JIT warm). */
  readonly warmupSeconds: number;
  /** Measured runs per target; the median is reported. */
  readonly rounds: number;
}

export interface WrkRun {
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  readonly p50Ms: number;
  readonly requests: number;
  /** Socket errors (connect, read, write, timeout) and non-2xx/3xx answers: they make a fast run suspect. */
  readonly errors: number;
  readonly non2xx3xx: number;
}

export interface ProxyTarget {
  readonly name: string;
  readonly url: string;
}

export interface TargetResult {
  readonly name: string;
  readonly url: string;
  readonly runs: WrkRun[];
  readonly requestsPerSecond: Figure;
  readonly p99Ms: Figure;
  readonly p50Ms: Figure;
  readonly errors: number;
  readonly non2xx3xx: number;
  /** Why no run could be measured, if none could. */
  readonly failure?: string;
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function durationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Parses wrk's output (with --latency). Throws when a needed figure is missing. */
export function parseWrk(output: string): WrkRun {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output)?.[1];
  const p99 = /^\s+99%\s+(\S+)/m.exec(output)?.[1];
  const p50 = /^\s+50%\s+(\S+)/m.exec(output)?.[1];
  const requests = /^\s+(\d+) requests in/m.exec(output)?.[1];
  if (!rps || !p99 || !p50 || !requests) throw new Error(`wrk printed no figures:\n${output}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const errors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const non = /Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1];
  return {
    requestsPerSecond: Number(rps),
    p99Ms: durationMs(p99),
    p50Ms: durationMs(p50),
    requests: Number(requests),
    errors,
    non2xx3xx: non ? Number(non) : 0,
  };
}

async function wrk(url: string, settings: WrkSettings, seconds: number): Promise<WrkRun> {
  const args = ['-t', String(settings.threads), '-c', String(settings.connections), '-d', `${seconds}s`, '--latency', url];
  const r = await runTracked('wrk', args, { timeoutMs: (seconds + 30) * 1000 });
  if (r.code !== 0) throw new Error(`wrk ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return parseWrk(r.stdout);
}

/** Runs the targets in turn, `rounds` times (interleaved, so that drift hits each alike). */
export async function measureProxies(
  targets: readonly ProxyTarget[],
  settings: WrkSettings,
  log: (message: string) => void,
): Promise<TargetResult[]> {
  const runs = new Map<string, WrkRun[]>(targets.map((t) => [t.name, []]));
  const failures = new Map<string, string>();
  for (let round = 1; round <= settings.rounds; round++) {
    for (const target of targets) {
      if (failures.has(target.name)) continue;
      try {
        if (settings.warmupSeconds > 0) await wrk(target.url, settings, settings.warmupSeconds);
        const run = await wrk(target.url, settings, settings.seconds);
        runs.get(target.name)!.push(run);
        log(
          `wrk ${target.name} (round ${round}/${settings.rounds}): ${run.requestsPerSecond.toFixed(0)} req/s, ` +
            `p99 ${run.p99Ms.toFixed(2)} ms${run.errors || run.non2xx3xx ? `, ${run.errors} socket errors, ${run.non2xx3xx} non-2xx/3xx` : ''}`,
        );
      } catch (err) {
        failures.set(target.name, err instanceof Error ? err.message : String(err));
        log(`wrk ${target.name}: ${failures.get(target.name)}`);
      }
      await sleep(500);
    }
  }
  return targets.map((t) => {
    const list = runs.get(t.name)!;
    const failure = failures.get(t.name);
    const figure = (values: number[]): Figure =>
      list.length ? medianOf(values, 'wrk runs') : notMeasured(failure ?? 'wrk did not run');
    return {
      name: t.name,
      url: t.url,
      runs: list,
      requestsPerSecond: figure(list.map((r) => r.requestsPerSecond)),
      p99Ms: figure(list.map((r) => r.p99Ms)),
      p50Ms: figure(list.map((r) => r.p50Ms)),
      errors: list.reduce((a, r) => a + r.errors, 0),
      non2xx3xx: list.reduce((a, r) => a + r.non2xx3xx, 0),
      ...(failure ? { failure } : {}),
    };
  });
}

export interface ProxyFigures {
  readonly settings: WrkSettings;
  readonly targets: TargetResult[];
  /** Each target's req/s and p99 as a ratio to direct. */
  readonly toDirect: Record<string, { readonly requestsPerSecond: Figure; readonly p99: Figure }>;
  /** Our throughput over the original's. */
  readonly oursOverOriginal: Figure;
}

export function proxyFigures(settings: WrkSettings, targets: TargetResult[]): ProxyFigures {
  const byName = new Map(targets.map((t) => [t.name, t]));
  const direct = byName.get('direct');
  const toDirect: ProxyFigures['toDirect'] = {};
  for (const t of targets) {
    toDirect[t.name] = {
      requestsPerSecond: direct ? ratio(t.requestsPerSecond, direct.requestsPerSecond) : notMeasured('no direct run'),
      p99: direct ? ratio(t.p99Ms, direct.p99Ms) : notMeasured('no direct run'),
    };
  }
  const ours = byName.get('ours');
  const original = byName.get('original');
  return {
    settings,
    targets,
    toDirect,
    oursOverOriginal:
      ours && original ? ratio(ours.requestsPerSecond, original.requestsPerSecond) : notMeasured('a target was not run'),
  };
}
