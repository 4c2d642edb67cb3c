/**
 * `npm run bench`: what a swap costs, against the original scripts and against the physical
 * limit (issue 6). One run, side by side, on this machine:
 *
 *  1. swaps under continuous load through our engine, and through a faithful re-creation of the
 *     original deploy2.sh + switch.sh (bench/original/), driven by the same harness;
 *  2. deploy overhead: each deploy's time minus the app's own start-to-ready and the old
 *     standby's own stop, both read from the app's log;
 *  3. the same for an app whose health is DOWN for a while after its port opens (issue 16);
 *  4. rollbacks to the warm standby under the same load;
 *  5. where the time goes, by phase, from the engine's progress lines and the app's log;
 *  6. the original, deploy by deploy, with our figures as ratios to it;
 *  7. proxy cost with wrk: direct to the app, through our Nginx config, through the original's.
 *
 * Prints a table, writes it with the machine's description to bench/results/<time>.md and
 * .json, and (on a full run) updates the summary in docs/BENCHMARKS.md. Every figure comes from
 * this run; what could not be measured says why. Everything it starts is stopped on exit and on
 * Ctrl-C.
 *
 *   npm run bench                 the full run (about 9 minutes on 2 cores)
 *   npm run bench -- --quick      a short run for development (about 2 minutes)
 *   npm run bench -- --help       every option
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { buildJar, LocalHost, PROJECT_DIR } from '../scripts/lib/host.js';
import { fmt, isMeasured, maxOf, medianOf, notMeasured, sum } from './lib/figures.js';
import {
  analyseOverhead,
  analyseSwaps,
  deploysUnderLoad,
  type DeployFlow,
  type HarnessSettings,
  type Release,
  type TimedDeploy,
} from './lib/harness.js';
import { describeMachine } from './lib/machine.js';
import { OriginalFlow, OriginalHost } from './lib/original.js';
import { healthInterval, measureReload, OurFlow, RollbackFlow } from './lib/ours.js';
import { DEPLOY_PHASES, phaseMedians, ROLLBACK_PHASES, spreadDelays, type DeployPhaseName, type RollbackPhaseName } from './lib/phases.js';
import { Cleanup, stopTrackedChildren, throwIfStopping } from './lib/processes.js';
import { measureProxies, proxyFigures, type ProxyFigures, type WrkSettings } from './lib/proxy.js';
import {
  judgeGoals,
  measured,
  renderMarkdown,
  renderSummary,
  renderText,
  withSummary,
  type BenchResult,
  type FlowResult,
  type OurResult,
  type RollbackResult,
  type Section,
  type SeriesResult,
  type Settings,
} from './lib/report.js';

const USAGE = `Usage: npm run bench [-- OPTIONS]

  --quick                 short run for development: 3 swaps, short wrk runs, no original deploys;
                          it prints every figure but judges none of the promises (too few swaps)
  --swaps N               deploys under load through our engine (default 20; quick 3)
  --original-deploys N    deploys under load through the original scripts, each 13 s or more
                          (default 2; quick 0: one would not be a fair comparison; 0 skips them)
  --start-delay-ms N      the sample app's delay before its port opens (default 3000)
  --ready-swaps N         deploys under load of an app whose health stays DOWN after its port
                          opens (default 10; quick 2; 0 skips them)
  --ready-delay-ms N      how long that app stays DOWN after its port opens (default 2000)
  --ready-spread-ms N     spread those DOWN times evenly over N ms around it, so that readiness
                          falls at every point between two health probes (default 500: one
                          default poll interval; 0: all exactly --ready-delay-ms)
  --rollbacks N           rollbacks to the warm standby under load (default 5; 0 skips them)
  --think-ms N            pause between two requests of one load client (default 10)
  --gap-ms N              steady time after each deploy (default 4000; quick 3000)
  --health-interval S     BLUEGREEN_HEALTH_INTERVAL for our engine (default: the engine's own)
  --warmup-requests N     BLUEGREEN_WARMUP_REQUESTS for our engine: GETs to the new slot before
                          its switch (default: the engine's own, 0: off)
  --wrk-seconds N         length of each measured wrk run (default 8; quick 3)
  --wrk-rounds N          measured wrk runs per target, the median is reported (default 3; quick 1)
  --port-base N           ports N..N+2 for our host, N+10..N+12 for the original's (default 18380)
  --update-docs           update docs/BENCHMARKS.md even on a quick or partial run
  --no-update-docs        leave docs/BENCHMARKS.md alone even on a full run
  --keep                  keep the working directory (hosts, logs) instead of removing it
`;

const INSTALL_HINT = 'bash scripts/install-deps (or: apt-get install -y nginx-light openjdk-17-jdk-headless curl unzip wrk)';

function fail(message: string): never {
  console.error(`bench: error: ${message}`);
  process.exit(2);
}

function intOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be a whole number from ${min} to ${max}, got '${value}'.`);
  return n;
}

const OPTIONS = {
  quick: { type: 'boolean', default: false },
  swaps: { type: 'string' },
  'original-deploys': { type: 'string' },
  'start-delay-ms': { type: 'string' },
  'ready-swaps': { type: 'string' },
  'ready-delay-ms': { type: 'string' },
  'ready-spread-ms': { type: 'string' },
  rollbacks: { type: 'string' },
  'think-ms': { type: 'string' },
  'gap-ms': { type: 'string' },
  'health-interval': { type: 'string' },
  'warmup-requests': { type: 'string' },
  'wrk-seconds': { type: 'string' },
  'wrk-rounds': { type: 'string' },
  'port-base': { type: 'string' },
  'update-docs': { type: 'boolean', default: false },
  'no-update-docs': { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parseOptions() {
  try {
    return parseArgs({ options: OPTIONS, strict: true }).values;
  } catch (err) {
    fail(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
  }
}

const opts = parseOptions();
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}

const quick = opts.quick;
const swaps = intOption('swaps', opts.swaps, quick ? 3 : 20, 1, 500);
// A quick run leaves the original scripts out unless asked: a single deploy of theirs, against a
// handful of ours, is not a side-by-side (it lands on their own port bug); a full run does two.
const originalDeploys = intOption('original-deploys', opts['original-deploys'], quick ? 0 : 2, 0, 20);
const startDelayMs = intOption('start-delay-ms', opts['start-delay-ms'], 3000, 0, 60_000);
const readySwaps = intOption('ready-swaps', opts['ready-swaps'], quick ? 2 : 10, 0, 500);
const readyDelayMs = intOption('ready-delay-ms', opts['ready-delay-ms'], 2000, 0, 60_000);
const readySpreadMs = intOption('ready-spread-ms', opts['ready-spread-ms'], 500, 0, 60_000);
const readyDelays = spreadDelays(readyDelayMs, readySpreadMs, readySwaps);
const rollbacks = intOption('rollbacks', opts.rollbacks, 5, 0, 100);
const gapMs = intOption('gap-ms', opts['gap-ms'], quick ? 3000 : 4000, 0, 120_000);
const portBase = intOption('port-base', opts['port-base'], 18380, 1024, 65_000);
const healthIntervalOption = opts['health-interval'];
if (healthIntervalOption !== undefined && !/^\d+(\.\d+)?$/.test(healthIntervalOption)) {
  fail(`--health-interval must be a number of seconds such as 0.5, got '${healthIntervalOption}'.`);
}
const wrkSettings: WrkSettings = {
  threads: 2,
  connections: 64,
  seconds: intOption('wrk-seconds', opts['wrk-seconds'], quick ? 3 : 8, 1, 120),
  warmupSeconds: quick ? 1 : 2,
  rounds: intOption('wrk-rounds', opts['wrk-rounds'], quick ? 1 : 3, 1, 10),
};
const isFullRun = !quick && swaps >= 20 && originalDeploys >= 2 && readySwaps >= 10 && rollbacks >= 5;
const updateDocs = opts['update-docs'] || (isFullRun && !opts['no-update-docs']);

const harness: HarnessSettings = {
  load: {
    keepAliveConnections: 64,
    newConnectionWorkers: 4,
    slowRequestEvery: 50,
    slowMs: 1000,
    postEvery: 3,
    thinkMs: intOption('think-ms', opts['think-ms'], 10, 0, 1000),
  },
  warmupMs: quick ? 1500 : 3000,
  gapMs,
  log: phase,
};

const ourPorts = { nginx: portBase, blue: portBase + 1, green: portBase + 2 };
const originalPorts = { nginx: portBase + 10, blue: portBase + 11, green: portBase + 12 };
const warmupRequestsOption = opts['warmup-requests'] === undefined ? undefined : intOption('warmup-requests', opts['warmup-requests'], 0, 0, 100_000);
// Only what the options set: the engine's own defaults (and its config file) decide the rest.
const engineEnv: Record<string, string> = {
  ...(healthIntervalOption ? { BLUEGREEN_HEALTH_INTERVAL: healthIntervalOption } : {}),
  ...(warmupRequestsOption === undefined ? {} : { BLUEGREEN_WARMUP_REQUESTS: String(warmupRequestsOption) }),
};
for (const name of ['BLUEGREEN_WARMUP_REQUESTS', 'BLUEGREEN_HEALTH_INTERVAL']) {
  // An engine setting left in the shell would change the run without showing in its settings.
  if (process.env[name] !== undefined && engineEnv[name] === undefined) fail(`${name} is set in the environment; pass it with its option instead, so the results show it.`);
}

const started = performance.now();
const cleanup = new Cleanup();

function phase(message: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[${t}s] ${message}`);
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.on(signal, () => {
    console.log(`\nbench: ${signal}: stopping everything this run started`);
    void stopTrackedChildren()
      .then(() => cleanup.runAll())
      .finally(() => process.exit(code));
  });
}

function checkTools(): { wrk: boolean } {
  const has = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
  const missing = ['nginx', 'java', 'javac', 'jar', 'curl', 'unzip', 'pgrep'].filter((t) => !has(t));
  if (missing.length) fail(`missing: ${missing.join(', ')}. Install with: ${INSTALL_HINT}`);
  return { wrk: has('wrk') };
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

async function checkPorts(): Promise<void> {
  const ports = [...Object.values(ourPorts), ...Object.values(originalPorts)];
  const busy: number[] = [];
  for (const port of ports) if (await portInUse(port)) busy.push(port);
  if (busy.length) {
    fail(`port(s) ${busy.join(', ')} already in use (another bench or test?). Choose other ports with --port-base N.`);
  }
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Adds the engine's own record of each deploy (history: seconds, appSeconds) to its details. */
function withHistory(host: LocalHost, deploys: TimedDeploy[]): TimedDeploy[] {
  const history = host.history().filter((h) => h.action === 'deploy');
  return deploys.map((d) => {
    const h = history.find((e) => e.version === d.version);
    return h ? { ...d, details: { ...d.details, engineSeconds: h.seconds, engineAppSeconds: h.appSeconds } } : d;
  });
}

/** A set-up deploy with no load: the first one of a host, which has nothing to swap from. */
async function setupDeploy(flow: DeployFlow, release: Release): Promise<TimedDeploy> {
  const result = await flow.deploy(release.jar, release.version, () => undefined);
  phase(`${flow.name} set-up deploy (${release.version}): ${result.ok ? 'ok' : `exit ${result.code}`} in ${result.wallSeconds.toFixed(2)} s; ${result.summary}`);
  return { ...result, index: -1, version: release.version, startMs: 0, endMs: 0, switchMs: null, switchedMs: null };
}

let stopLoad: (() => Promise<unknown>) | undefined;
cleanup.add('stop the load', async () => {
  await stopLoad?.();
});
const registerStop = (stop: () => Promise<unknown>): void => {
  stopLoad = stop;
};

/** A series of our deploys under load, with where each one's time went. */
async function ourSeries(flow: OurFlow, host: LocalHost, releases: Release[], what: string): Promise<SeriesResult> {
  phase(`ours: ${releases.length} deploys ${what} under load through ${host.url}`);
  const loaded = await deploysUnderLoad(flow, host.url, releases, harness, registerStop);
  const deploys = withHistory(host, loaded.deploys);
  return {
    setup: null,
    readyDelayMs: 0,
    swaps: analyseSwaps(loaded),
    overhead: analyseOverhead(deploys),
    deploys,
    phases: phaseMedians(deploys.map(phaseSecondsOf), Object.keys(DEPLOY_PHASES) as DeployPhaseName[]),
  };
}

const phaseSecondsOf = (d: TimedDeploy): Record<string, number> => (d.details.phaseSeconds ?? {}) as Record<string, number>;

/** Rollbacks to the warm standby, one after another under load: each makes the other version live again. */
async function runRollbacks(host: LocalHost): Promise<Section<RollbackResult>> {
  if (rollbacks === 0) return notMeasured('skipped with --rollbacks 0');
  const s = host.status();
  const live = s.live;
  if (!live) return notMeasured('no slot is live on our host');
  const standby = live === 'blue' ? 'green' : 'blue';
  const versions = [s.slots[standby].version, s.slots[live].version];
  if (!versions[0] || !versions[1]) return notMeasured('our host has no warm standby to roll back to');
  // The "release" of each rollback is the version it makes live: the harness checks that only it answers after the switch.
  const releases = Array.from({ length: rollbacks }, (_, i) => ({ version: versions[i % 2]!, jar: '' }));
  phase(`ours: ${rollbacks} rollbacks to the warm standby under load through ${host.url}`);
  const loaded = await deploysUnderLoad(new RollbackFlow(host, engineEnv), host.url, releases, harness, registerStop);
  const each = loaded.deploys.map((d) => d.wallSeconds);
  return {
    swaps: analyseSwaps(loaded),
    wall: { median: medianOf(each, 'rollbacks'), max: maxOf(each, 'rollbacks'), each },
    deploys: loaded.deploys,
    phases: phaseMedians(loaded.deploys.map(phaseSecondsOf), Object.keys(ROLLBACK_PHASES) as RollbackPhaseName[]),
  };
}

async function runOurs(host: LocalHost, releases: Release[], notReadyReleases: Release[]): Promise<Section<OurResult>> {
  const flow = new OurFlow(host, engineEnv);
  const setup = await setupDeploy(flow, releases[0]!);
  if (!setup.ok) return notMeasured(`our set-up deploy failed: ${String(setup.details.stderr ?? setup.summary)}`);
  const ready = await ourSeries(flow, host, releases.slice(1, swaps + 1), 'of an app ready when its port opens');
  let rollback: Section<RollbackResult>;
  try {
    rollback = await runRollbacks(host);
  } catch (err) {
    rollback = notMeasured(`the rollbacks failed: ${errorText(err)}`);
  }
  let notReady: Section<SeriesResult>;
  if (readySwaps === 0) notReady = notMeasured('skipped with --ready-swaps 0');
  else {
    try {
      const series = await ourSeries(flow, host, notReadyReleases, `of an app DOWN for ${readyDelayMs} ms after its port opens`);
      notReady = { ...series, readyDelayMs };
    } catch (err) {
      notReady = notMeasured(`the deploys of the app DOWN after its port opens failed: ${errorText(err)}`);
    }
  }
  phase('ours: timing Nginx reloads alone (no deploy), idle and under the same load');
  const reloadIdle = await measureReload(host, quick ? 3 : 5);
  const reloadUnderLoad = await measureReload(host, quick ? 3 : 5, harness.load);
  const interval = healthInterval(host, engineEnv);
  return {
    ...ready,
    setup,
    notReady,
    rollback,
    limit: { healthInterval: interval, reloadIdle, reloadUnderLoad, total: sum(interval, reloadUnderLoad.median) },
  };
}

async function runOriginal(original: OriginalHost, releases: Release[]): Promise<Section<FlowResult>> {
  if (originalDeploys === 0) {
    return notMeasured(
      quick && opts['original-deploys'] === undefined
        ? 'left out of a quick run (one deploy of the original scripts is no comparison; a full run does two, or pass --original-deploys N)'
        : 'skipped with --original-deploys 0',
    );
  }
  const flow = new OriginalFlow(original);
  phase('original: set-up deploy (the scripts sleep at least 13 s)');
  const setup = await setupDeploy(flow, releases[0]!);
  phase(`original: ${originalDeploys} deploys under load through ${original.url}`);
  const loaded = await deploysUnderLoad(flow, original.url, releases.slice(1, originalDeploys + 1), harness, registerStop);
  return { setup, swaps: analyseSwaps(loaded), overhead: analyseOverhead(loaded.deploys), deploys: loaded.deploys };
}

async function runProxy(host: LocalHost | undefined, original: OriginalHost | undefined, hasWrk: boolean): Promise<Section<ProxyFigures>> {
  if (!hasWrk) return notMeasured(`wrk is not installed (${INSTALL_HINT})`);
  if (!host) return notMeasured('our host did not come up');
  const live = host.status();
  if (!live.live) return notMeasured('no slot is live on our host (its deploys failed)');
  const appPort = live.slots[live.live].port;
  const targets = [
    { name: 'direct', url: `http://127.0.0.1:${appPort}/` },
    { name: 'ours', url: `${host.url}/` },
  ];
  if (original) {
    await original.stopApps();
    await original.pointAt(appPort);
    targets.push({ name: 'original', url: `${original.url}/` });
  }
  phase(`proxy cost: wrk against the app on ${appPort} (${live.live}), direct and through each Nginx`);
  return proxyFigures(wrkSettings, await measureProxies(targets, wrkSettings, phase));
}

/**
 * A rough expectation of the run's length, printed at its start so that nobody is surprised;
 * it is not a figure of the result. Per-step costs are what quick runs took on 2 cores.
 */
function expectedMinutes(jars: number): number {
  const app = startDelayMs / 1000 + 0.5;
  const ourDeploy = app + 1.5;
  const notReadyDeploy = ourDeploy + readyDelayMs / 1000 + 0.5;
  const originalDeploy = Math.max(13, 10 + Math.ceil(Math.max(0, app - 10) / 10) * 10 + 3) + 5;
  const seconds =
    jars * 1.4 +
    (ourDeploy + harness.warmupMs / 1000) +
    swaps * (ourDeploy + gapMs / 1000) +
    (readySwaps ? harness.warmupMs / 1000 + readySwaps * (notReadyDeploy + gapMs / 1000) : 0) +
    (rollbacks ? harness.warmupMs / 1000 + rollbacks * (1 + gapMs / 1000) : 0) +
    (quick ? 3 : 5) * 2 * 1.2 +
    (originalDeploys ? originalDeploy + harness.warmupMs / 1000 + originalDeploys * (originalDeploy + gapMs / 1000) : 0) +
    3 * wrkSettings.rounds * (wrkSettings.seconds + wrkSettings.warmupSeconds + 1);
  return seconds / 60;
}

function timestamp(date: string): string {
  return date.replace(/\.\d+Z$/, 'Z').replaceAll(':', '-');
}

function writeAtomically(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

async function main(): Promise<void> {
  const tools = checkTools();
  await checkPorts();
  const machine = describeMachine();
  if (machine.loadAtStart > machine.cores * 0.5) {
    phase(`warning: the machine is busy (1-minute load ${machine.loadAtStart} on ${machine.cores} cores): figures will be pessimistic`);
  }
  const workDir = mkdtempSync(join(tmpdir(), 'bluegreen-bench-'));
  cleanup.add('remove the working directory', () => {
    if (opts.keep) console.log(`bench: kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  });

  const count = Math.max(swaps, originalDeploys) + 1;
  phase(`${quick ? 'quick' : 'full'} run; expect about ${expectedMinutes(count).toFixed(0)} minutes on a quiet 2-core machine`);
  phase(`building ${count} sample-app jars (start delay ${startDelayMs} ms) and ${readySwaps} DOWN for ${readyDelays.join(', ')} ms after their port opens`);
  const releases: Release[] = [];
  for (let i = 1; i <= count; i++) {
    const version = `v${i}`;
    releases.push({ version, jar: buildJar(version, { startDelayMs }) });
  }
  const notReadyReleases: Release[] = [];
  for (let i = 1; i <= readySwaps; i++) {
    const version = `d${i}`;
    notReadyReleases.push({ version, jar: buildJar(version, { startDelayMs, readyDelayMs: readyDelays[i - 1]! }) });
  }
  // The jars stay in .build/jars, the build cache that tests share: removing the directory
  // would pull jars from under a test run at the same time.

  let host: LocalHost | undefined;
  let ours: Section<OurResult>;
  try {
    phase(`ours: starting Nginx on ${ourPorts.nginx} (slots ${ourPorts.blue}, ${ourPorts.green})`);
    throwIfStopping('our local host');
    host = new LocalHost(ourPorts, join(workDir, 'ours')).up();
    const upHost = host;
    cleanup.add('stop our local host', () => upHost.down());
    ours = await runOurs(host, releases, notReadyReleases);
  } catch (err) {
    ours = notMeasured(`our run failed: ${errorText(err)}`);
    phase(`ours: ${ours.notMeasured}`);
  }

  let original: OriginalHost | undefined;
  let originalResult: Section<FlowResult>;
  try {
    phase(`original: starting its Nginx on ${originalPorts.nginx} (slots ${originalPorts.blue}, ${originalPorts.green})`);
    const o = new OriginalHost(join(workDir, 'original'), originalPorts);
    cleanup.add("stop the original's Nginx and apps", () => o.down());
    original = await o.up();
    originalResult = await runOriginal(original, releases);
  } catch (err) {
    originalResult = notMeasured(`the original's run failed: ${errorText(err)}`);
    phase(`original: ${originalResult.notMeasured}`);
  }

  let proxy: Section<ProxyFigures>;
  try {
    proxy = await runProxy(host, original, tools.wrk);
  } catch (err) {
    proxy = notMeasured(`the proxy measurement failed: ${errorText(err)}`);
    phase(`proxy: ${proxy.notMeasured}`);
  }

  const loadAtEnd = Math.round(loadavg()[0]! * 100) / 100;
  phase('stopping everything');
  await cleanup.runAll();

  const defaultInterval = measured(ours) ? ours.limit.healthInterval : notMeasured('our run failed');
  const settings: Settings = {
    mode: quick ? 'quick' : 'full',
    swaps,
    originalDeploys,
    startDelayMs,
    readySwaps,
    readyDelayMs,
    readyDelays,
    rollbacks,
    healthInterval: healthIntervalOption
      ? `${healthIntervalOption} s (--health-interval)`
      : isMeasured(defaultInterval)
        ? `${fmt(defaultInterval, 2, ' s')} (the engine's default)`
        : "the engine's default",
    warmupRequests:
      warmupRequestsOption === undefined ? "the engine's default" : `${warmupRequestsOption} (--warmup-requests)`,
    load: { ...harness.load },
    warmupMs: harness.warmupMs,
    gapMs,
    wrk: { ...wrkSettings },
  };
  const result: BenchResult = {
    title: `ec2-bluegreen benchmark: what a swap costs (${settings.mode} run)`,
    machine,
    settings,
    seconds: (performance.now() - started) / 1000,
    loadAtEnd,
    ours,
    original: originalResult,
    proxy,
    goals: judgeGoals(ours, originalResult, proxy, settings.mode),
  };

  const text = renderText(result);
  console.log(`\n${text}`);
  const stem = `${timestamp(machine.date)}${quick ? '-quick' : ''}`;
  const resultsDir = join(PROJECT_DIR, 'bench', 'results');
  const mdPath = join(resultsDir, `${stem}.md`);
  writeAtomically(mdPath, `${renderMarkdown(result)}\n`);
  writeAtomically(join(resultsDir, `${stem}.json`), `${JSON.stringify(result, null, 1)}\n`);
  console.log(`Written: ${relative(process.cwd(), mdPath)} and .json`);
  if (updateDocs) {
    const docPath = join(PROJECT_DIR, 'docs', 'BENCHMARKS.md');
    let doc = '';
    try {
      doc = readFileSync(docPath, 'utf8');
    } catch {
      doc = '# Benchmarks\n';
    }
    writeAtomically(docPath, withSummary(doc, renderSummary(result, relative(dirname(docPath), mdPath))));
    console.log(`Updated the summary in ${relative(process.cwd(), docPath)}`);
  } else {
    console.log('docs/BENCHMARKS.md left as it was (a full run updates it; or pass --update-docs).');
  }
}

main().catch(async (err: unknown) => {
  console.error(`bench: error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  await stopTrackedChildren();
  await cleanup.runAll();
  process.exit(1);
});

