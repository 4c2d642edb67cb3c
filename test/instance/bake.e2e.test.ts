/**
 * The bake: after a switch the engine watches the new release's real answers, and switches back
 * to the warm standby by itself when the release misbehaves. Real Nginx, JVMs and load.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countVersions, formatSummary, samplesBetween, startLoad, type LoadReport, type LoadRun } from '../../scripts/lib/load.js';
import { EXIT_CODES } from '../../lib/contract.js';
import { buildJar, LocalHost, waitFor } from '../support/host.js';

const PORTS = { nginx: 18580, blue: 18581, green: 18582 };
const BAKE_SECONDS = 6;
let jars: Record<'v1' | 'v2' | 'flaky' | 'dies', string>;
let host: LocalHost;
let load: LoadRun | undefined;

beforeAll(() => {
  jars = {
    v1: buildJar('v1'),
    v2: buildJar('v2'),
    flaky: buildJar('v2-flaky', { behaviour: 'error-rate:0.33' }),
    dies: buildJar('v2-dies', { behaviour: 'die-after-ms:1500' }),
  };
});

beforeEach(async () => {
  host = new LocalHost(PORTS, undefined, BAKE_SECONDS).up();
  const first = await host.run(['deploy', jars.v1, '--version', 'v1'], { BLUEGREEN_BAKE_SECONDS: '0' });
  expect(first.code, first.stderr).toBe(EXIT_CODES.ok);
  load = startLoad({ baseUrl: host.url, keepAliveConnections: 32, newConnectionWorkers: 2, thinkMs: 2, slowRequestEvery: 0 });
  await new Promise((r) => setTimeout(r, 500));
});

afterEach(async () => {
  await load?.stop();
  load = undefined;
  host.destroy();
});

async function stopLoad(label: string): Promise<LoadReport> {
  const report = await load!.stop();
  load = undefined;
  console.log(`[${label}] ${formatSummary(report)}`);
  return report;
}

describe('bake after a switch', () => {
  it('rolls back a release that is healthy but answers 500 to a third of requests', async () => {
    const switchStarted = load!.mark('deploy flaky');
    const result = await host.run(['deploy', jars.flaky, '--version', 'v2-flaky']);
    const deployEnded = load!.mark('deploy flaky returned');
    expect(result.code, result.stderr).toBe(EXIT_CODES.rolledBack);
    const line = /rolled back: (\d+) of (\d+) answers were 5xx \((\d+) %\) within ([\d.]+) s of the switch/.exec(result.stderr);
    expect(line, result.stderr).not.toBeNull();
    const [, errors, total, percent, seconds] = line!.map(Number) as [number, number, number, number, number];
    expect(errors / total).toBeGreaterThan(0.05);
    expect(percent).toBeGreaterThanOrEqual(20);
    expect(seconds).toBeLessThan(BAKE_SECONDS);
    expect(result.stderr).toMatch(/blue \(v1\) is live again; the bad release stays in \S+v2-flaky-/);
    expect(await host.servedVersion()).toBe('v1');

    const report = await stopLoad('flaky release rolled back');
    const failures = report.samples.filter((s) => !s.ok);
    // What the bake let through: every failure is the bad release's own 500, seen only between
    // the switch and the rollback.
    console.log(`answers that failed for clients during the bake window: ${failures.length} of ${report.totals.requests}`);
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((s) => s.reason === 'status 500' && s.version === undefined)).toBe(true);
    expect(failures.every((s) => s.start >= switchStarted && s.start <= deployEnded)).toBe(true);
    expect(report.totals.failed).toBe(failures.length);

    const status = host.status();
    expect(status.live).toBe('blue');
    expect(status.slots.green).toMatchObject({ version: 'v2-flaky', running: false });
    expect(status.slots.green.bake).toMatch(/^failed: \d+ of \d+ answers were 5xx/);
    expect(host.history().at(-1)).toMatchObject({ action: 'deploy', version: 'v2-flaky', result: 'rolled-back' });

    // A rollback must not bring the bad release back.
    const rollback = await host.run(['rollback']);
    expect(rollback.code).toBe(EXIT_CODES.nothingToSwitchTo);
    expect(rollback.stderr).toMatch(/was rolled back after its deploy/);
    // A good release deploys over it as usual.
    expect((await host.run(['deploy', jars.v2, '--version', 'v2'])).code).toBe(EXIT_CODES.ok);
    expect(await host.servedVersion()).toBe('v2');
  });

  it('rolls back a release whose process dies a few seconds after becoming healthy', async () => {
    const result = await host.run(['deploy', jars.dies, '--version', 'v2-dies']);
    expect(result.code, result.stderr).toBe(EXIT_CODES.rolledBack);
    expect(result.stderr).toMatch(/rolled back: (the green process exited|green's health check failed) [\d.]+ s after the switch/);
    expect(await host.servedVersion()).toBe('v1');
    const report = await stopLoad('dying release rolled back');
    console.log(`requests that failed while the dying release was live: ${report.totals.failed}`);
    expect(host.status().live).toBe('blue');
  });

  it('keeps a good release, adding the bake time and nothing else', async () => {
    const result = await host.run(['deploy', jars.v2, '--version', 'v2']);
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(result.stdout).toMatch(/bake +passed: 0 of \d+ answers were 5xx/);
    expect(result.ms).toBeGreaterThan(BAKE_SECONDS * 1000);
    const report = await stopLoad('good release baked');
    expect(report.totals.failed).toBe(0);
    expect(report.totals.resentOk).toBe(report.totals.rawResets);
    const entry = host.history().at(-1)!;
    expect(entry).toMatchObject({ version: 'v2', result: 'ok' });
    expect(entry.message).toMatch(/bake passed/);
    expect(entry.seconds! - BAKE_SECONDS).toBeLessThan(5);
    expect(host.status().slots.green.bake).toMatch(/^passed: 0 of \d+ answers were 5xx/);
  });
});

/**
 * A client whose requests fail on any release (GET /fail: 500 from every version), `workers`
 * requests at a time, until stopped; resolves with how many 500s it got.
 */
function startNoisyClient(workers: number): { stop: () => Promise<number> } {
  let running = true;
  let failures = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const res = await fetch(`${host.url}/fail`).catch(() => undefined);
      if (res) {
        await res.arrayBuffer();
        if (res.status >= 500) failures++;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return failures;
    },
  };
}

describe('the bake judges the new release against the previous one', () => {
  const judged = /(\d+) of (\d+) answers were 5xx.* against (\d+) of (\d+) \(([\d.]+) %\) from blue in the \d+ s before the switch/;

  it('keeps a good release when a client makes every release answer 5xx', async () => {
    const noisy = startNoisyClient(8);
    // The previous release answers the noisy client for a whole bake window before the switch.
    await new Promise((r) => setTimeout(r, BAKE_SECONDS * 1000));
    const result = await host.run(['deploy', jars.v2, '--version', 'v2']);
    const noisyFailures = await noisy.stop();
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(EXIT_CODES.ok);
    const line = judged.exec(result.stdout);
    expect(line, result.stdout).not.toBeNull();
    const [, errors, total, baseErrors, baseTotal] = line!.map(Number) as [number, number, number, number, number];
    console.log(`noisy client: ${noisyFailures} answers 500; new release ${errors} of ${total} 5xx, previous ${baseErrors} of ${baseTotal}`);
    // Every 5xx of the new release is one the previous release gave the same kind of request.
    expect(result.stdout).toMatch(new RegExp(`at blue's rates for the same kinds of request, ${errors} were expected`));
    // More than the 5 % that alone used to roll a release back, on both releases.
    expect(errors / total).toBeGreaterThan(0.05);
    expect(baseErrors / baseTotal).toBeGreaterThan(0.05);
    expect(await host.servedVersion()).toBe('v2');
    const report = await stopLoad('good release under a noisy client');
    expect(report.totals.failed).toBe(0);
    expect(host.status().slots.green.bake).toMatch(/^passed: \d+ of \d+ answers were 5xx/);
  });

  // Right after a switch the mix of requests moves: here the failing client sends four times as
  // many requests as before (so would a cold JVM that answers the app's real work more slowly
  // than a request it refuses). Over all answers the new share of 5xx is then far above the old
  // one; request by request, the new release fails exactly as the old one did.
  it('keeps a good release when the failing client sends many more requests after the switch', async () => {
    const before = startNoisyClient(2);
    await new Promise((r) => setTimeout(r, BAKE_SECONDS * 1000));
    const child = host.spawn(['deploy', jars.v2, '--version', 'v2']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((r) => child.on('close', r));
    await waitFor(() => /\] switch /.test(stdout), 'the switch', 20_000);
    const after = startNoisyClient(14);
    const code = await closed;
    await Promise.all([before.stop(), after.stop()]);
    expect(code, `${stdout}\n${stderr}`).toBe(EXIT_CODES.ok);
    const line = judged.exec(stdout);
    expect(line, stdout).not.toBeNull();
    const [, errors, total, baseErrors, baseTotal] = line!.map(Number) as [number, number, number, number, number];
    console.log(`failing client x7 at the switch: new release ${errors} of ${total} 5xx, previous ${baseErrors} of ${baseTotal}`);
    // The old rule, one share over all answers, would have rolled this good release back.
    expect(errors / total - baseErrors / baseTotal).toBeGreaterThan(0.05);
    const expected = /at blue's rates for the same kinds of request, (\d+) were expected/.exec(stdout);
    expect(expected, stdout).not.toBeNull();
    expect(Number(expected![1])).toBe(errors);
    expect(await host.servedVersion()).toBe('v2');
    const report = await stopLoad('good release, failing client grows at the switch');
    expect(report.totals.failed).toBe(0);
  });

  it('still rolls back a bad release under the same client', async () => {
    const noisy = startNoisyClient(8);
    await new Promise((r) => setTimeout(r, BAKE_SECONDS * 1000));
    const result = await host.run(['deploy', jars.flaky, '--version', 'v2-flaky']);
    await noisy.stop();
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(EXIT_CODES.rolledBack);
    const line = judged.exec(result.stderr);
    expect(line, result.stderr).not.toBeNull();
    const [, errors, total, baseErrors, baseTotal] = line!.map(Number) as [number, number, number, number, number];
    expect(errors / total - baseErrors / baseTotal).toBeGreaterThan(0.05);
    expect(await host.servedVersion()).toBe('v1');
    await stopLoad('bad release under a noisy client');
    expect(host.status().live).toBe('blue');
  });

  it('says that it saw no traffic rather than that 0 of 0 answers were 5xx', async () => {
    await stopLoad('before a deploy nobody uses');
    const result = await host.run(['deploy', jars.v2, '--version', 'v2']);
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(result.stdout).toMatch(/bake +passed: saw no traffic: green answered no requests in [\d.]+ s, so only its health checks were judged/);
    expect(result.stdout).not.toMatch(/0 of 0 answers/);
  });
});

describe('canary (off by default)', () => {
  const CANARY = { BLUEGREEN_CANARY_PERCENT: '25', BLUEGREEN_CANARY_SECONDS: '4' };

  it('sends the configured share of requests to the new release first, then all of them', async () => {
    const child = host.spawn(['deploy', jars.v2, '--version', 'v2'], CANARY);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise<number | null>((r) => child.on('close', r));
    await waitFor(() => /\] canary +sending 25 %/.test(out), 'the canary to start', 20_000);
    const canaryStart = load!.mark('canary');
    await waitFor(() => /\] switch /.test(out), 'the full switch', 20_000);
    const fullSwitch = load!.mark('full switch');
    expect(await closed).toBe(EXIT_CODES.ok);
    const done = load!.mark('deployed');
    await new Promise((r) => setTimeout(r, 500));
    const report = await stopLoad('canary 25 %');
    expect(report.totals.failed).toBe(0);
    // Requests that started once the canary config was surely live, and before the full switch.
    const during = countVersions(samplesBetween(report, canaryStart + 300, fullSwitch));
    const share = during.v2! / (during.v1! + during.v2!);
    console.log(`canary share: ${(share * 100).toFixed(1)} % of ${during.v1! + during.v2!} requests (configured 25 %)`);
    expect(share).toBeGreaterThan(0.17);
    expect(share).toBeLessThan(0.33);
    expect(Object.keys(countVersions(samplesBetween(report, done)))).toEqual(['v2']);
    expect(out).toMatch(/canary +passed: 0 of \d+ answers were 5xx/);
  });

  it('rolls a misbehaving release back during the canary, before it serves everyone', async () => {
    const result = await host.run(['deploy', jars.flaky, '--version', 'v2-flaky'], CANARY);
    expect(result.code, result.stderr).toBe(EXIT_CODES.rolledBack);
    expect(result.stderr).toMatch(/rolled back during the canary: \d+ of \d+ answers were 5xx \(\d+ %\) within [\d.]+ s of the switch/);
    expect(result.stdout).not.toMatch(/\] switch +pointing Nginx at green/);
    expect(await host.servedVersion()).toBe('v1');
    const report = await stopLoad('flaky release in the canary');
    console.log(`answers that failed for clients during the canary: ${report.totals.failed} of ${report.totals.requests}`);
    expect(host.status().live).toBe('blue');
  });
});
