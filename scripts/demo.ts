/**
 * The local demo (`npm run demo`): a real Nginx and real JVMs on this machine, under load,
 * deploy v1, deploy v2, roll back; then a table and an SVG of requests per second by version,
 * with the moment traffic moved at each switch, and the latency underneath.
 *
 *   npm run demo [-- --port 18080] [--seconds 4]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { renderRateChart, type ChartMark } from './lib/chart.js';
import { BLUEGREEN, buildJar, LocalHost, PROJECT_DIR } from './lib/host.js';
import { firstAnsweredBy, formatSummary, latencyPerBucket, ratePerVersion, samplesBetween, startLoad, type LoadRun } from './lib/load.js';

const INSTALL_HINT = 'sudo apt-get update && sudo apt-get install -y nginx-light openjdk-17-jdk-headless curl unzip';

const USAGE = `Usage: npm run demo [-- OPTIONS]

Runs blue/green deploys on this machine, no AWS needed: a real Nginx and real JVMs of the
sample app, under load (64 keep-alive and 4 new-connection clients). It deploys v1, deploys v2,
rolls back to v1, then prints a table (requests, failures, resets per step) and draws
.build/demo/requests-by-version.svg. It stops Nginx and both slots when it ends, on Ctrl-C too.
Needs Nginx, a JDK 17, curl and unzip: bash scripts/install-deps.

  --port N       Nginx's port; the blue and green slots use the next two (default 18080)
  --seconds S    how long the load runs between steps, 1 to 60 (default 4)
  --help         this text

Exit status: 0 no request failed, 1 a request failed, a step failed or a bad option.`;

function parseOptions(): { port: string; seconds: string; help: boolean } {
  try {
    const { values } = parseArgs({
      options: { port: { type: 'string', default: '18080' }, seconds: { type: 'string', default: '4' }, help: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: false,
    });
    return { port: values.port, seconds: values.seconds, help: values.help };
  } catch (err) {
    // parseArgs' own message names the option ("Unknown option '--foo'"); nothing has started yet.
    return fail(`${err instanceof Error ? err.message : String(err)}. Nothing was started; 'npm run demo -- --help' lists the options.`);
  }
}

const values = parseOptions();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const nginxPort = Number(values.port);
const dwellMs = Number(values.seconds) * 1000;
if (!/^\d+$/.test(values.port) || !Number.isInteger(nginxPort) || nginxPort < 1024 || nginxPort > 65533) {
  fail(`--port must be a port from 1024 to 65533 (the slots use the next two), got '${values.port}'.`);
}
if (!(dwellMs >= 1000 && dwellMs <= 60_000)) fail(`--seconds must be from 1 to 60, got '${values.seconds}'.`);

const started = performance.now();
const outDir = join(PROJECT_DIR, '.build', 'demo');
let host: LocalHost | undefined;
let load: LoadRun | undefined;

function fail(message: string): never {
  console.error(`demo: error: ${message}`);
  process.exit(1);
}

function phase(message: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`[${t}s] ${message}`);
}

function cleanUp(): void {
  host?.down();
  host = undefined;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.log(`\ndemo: ${signal}: stopping Nginx and the slots`);
    cleanUp();
    process.exit(130);
  });
}
process.on('exit', cleanUp);

function checkTools(): void {
  const missing = ['nginx', 'java', 'javac', 'curl', 'unzip'].filter(
    (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
  );
  if (missing.length) fail(`missing: ${missing.join(', ')}. Install with:\n  ${INSTALL_HINT}`);
}

/** Runs bluegreen, echoing its phase lines as they come; returns the exit code and stderr. */
function bluegreen(args: string[]): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = performance.now();
  const child = spawn(BLUEGREEN, args, { env: host!.env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n').filter(Boolean)) console.log(`         ${line}`);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr, ms: performance.now() - t0 })));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  checkTools();
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });

  phase('building the sample app, v1 and v2 (javac)');
  const jars = { v1: buildJar('v1'), v2: buildJar('v2') };

  phase(`starting Nginx on http://127.0.0.1:${nginxPort} (blue slot ${nginxPort + 1}, green slot ${nginxPort + 2})`);
  // A short bake, so the demo shows the watch after each switch without a long wait.
  host = new LocalHost({ nginx: nginxPort, blue: nginxPort + 1, green: nginxPort + 2 }, join(outDir, 'host'), 3).up();

  phase('deploy v1 (first deploy: nothing to swap yet)');
  const first = await bluegreen(['deploy', jars.v1, '--version', 'v1']);
  if (first.code !== 0) fail(`the first deploy failed:\n${first.stderr}`);

  phase('load: 64 keep-alive connections and 4 new-connection clients, GET and POST, 1 s slow requests');
  load = startLoad({ baseUrl: host.url, keepAliveConnections: 64, newConnectionWorkers: 4, thinkMs: 5, slowRequestEvery: 50 });
  await sleep(dwellMs);

  const swaps: Array<{ name: string; target: string; ms: number; before: number; mark: number }> = [];
  for (const step of [
    { name: 'deploy v2', target: 'v2', args: ['deploy', jars.v2, '--version', 'v2'] },
    { name: 'rollback to v1', target: 'v1', args: ['rollback'] },
  ]) {
    phase(`${step.name} under load`);
    const before = load.mark(`before ${step.name}`);
    const result = await bluegreen(step.args);
    if (result.code !== 0) fail(`${step.name} failed:\n${result.stderr}`);
    swaps.push({ name: step.name, target: step.target, ms: result.ms, before, mark: load.mark(step.name) });
    const c = load.snapshot();
    phase(`${step.name} done in ${(result.ms / 1000).toFixed(2)} s; so far ${c.requests} requests, ${c.failed} failed, ${c.rawResets} raw resets`);
    await sleep(dwellMs);
  }

  phase('stopping the load');
  const report = await load.stop();
  load = undefined;

  const statusText = spawnSync(BLUEGREEN, ['status'], { env: host.env(), encoding: 'utf8' }).stdout;
  console.log(`\n${statusText}`);
  console.log(formatSummary(report));
  console.log('\n| step | command time (a deploy includes its 3 s bake) | requests from its start to the next step | failed | raw resets (resent ok) |');
  console.log('|---|---|---|---|---|');
  for (const [i, swap] of swaps.entries()) {
    const during = samplesBetween(report, swap.before, swaps[i + 1]?.before);
    const failed = during.filter((s) => !s.ok).length;
    const resets = during.filter((s) => s.rawReset).length;
    const resentOk = during.filter((s) => s.rawReset && s.ok).length;
    console.log(`| ${swap.name} | ${(swap.ms / 1000).toFixed(2)} s | ${during.length} | ${failed} | ${resets} (${resentOk}) |`);
  }
  console.log(`| whole run | | ${report.totals.requests} | ${report.totals.failed} | ${report.totals.rawResets} (${report.totals.resentOk}) |`);

  // Each line marks when traffic moved (the first request answered by the new version), not
  // when the command began: a deploy starts and checks the new slot for a while before that.
  const marks: ChartMark[] = swaps.flatMap((s) => {
    const t = firstAnsweredBy(report, s.target, s.before);
    return t === undefined ? [] : [{ t, label: `${s.name}: traffic to ${s.target} (${((t - s.before) / 1000).toFixed(2)} s after the command)` }];
  });
  const bucketMs = 250;
  const svg = renderRateChart(ratePerVersion(report, bucketMs), marks, {
    title: `Requests per second by version (${report.totals.requests} requests, ${report.totals.failed} failed)`,
    latency: latencyPerBucket(report, bucketMs),
    caption: [
      'Vertical lines: the first request answered by the new version. Each client waits for its answer before it',
      'sends the next, so when answers slow down for a moment at a switch (Nginx reloads, keep-alive connections are',
      'opened again, the new JVM is still cold), fewer requests complete per second: the dip is latency, not loss.',
      report.totals.failed === 0 ? 'No request failed in this run.' : `${report.totals.failed} request(s) failed in this run (red line).`,
    ],
  });
  const svgPath = join(outDir, 'requests-by-version.svg');
  writeFileSync(svgPath, svg);
  writeFileSync(join(outDir, 'report.json'), JSON.stringify({ ...report, samples: undefined }, null, 1));
  console.log(`\nPicture of the run: ${relative(process.cwd(), svgPath)}`);
  phase(report.totals.failed === 0 ? 'done: no request failed' : `done: ${report.totals.failed} request(s) FAILED`);
  cleanUp();
  process.exitCode = report.totals.failed === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  cleanUp();
  fail(err instanceof Error ? err.message : String(err));
});
