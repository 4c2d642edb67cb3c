/**
 * The host engine on a real local host: real Nginx, real JVMs, real load over loopback.
 * Every swap must answer every request 2xx with a complete body (keep-alive requests after the
 * standard single resend); raw resets are counted and printed, never hidden.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CODES, defaultReleaseLabel } from '../../lib/contract.js';
import { formatSummary, samplesBetween, startLoad, type LoadReport, type LoadRun } from '../../scripts/lib/load.js';
import { buildJar, LocalHost, waitFor, type RunResult } from '../support/host.js';

const PORTS = { nginx: 18180, blue: 18181, green: 18182 };
const LOAD = { keepAliveConnections: 64, newConnectionWorkers: 4, slowRequestEvery: 40, slowMs: 1200, thinkMs: 2 };

let jars: Record<'v1' | 'v2' | 'v3' | 'v4', string>;

beforeAll(() => {
  jars = { v1: buildJar('v1'), v2: buildJar('v2'), v3: buildJar('v3'), v4: buildJar('v4') };
});

let host: LocalHost;
let load: LoadRun | undefined;

beforeEach(async () => {
  host = new LocalHost(PORTS).up();
  const first = await host.run(['deploy', jars.v1, '--version', 'v1']);
  expect(first.code, first.stderr).toBe(EXIT_CODES.ok);
});

afterEach(async () => {
  await load?.stop();
  load = undefined;
  host.destroy();
});

afterAll(() => host?.destroy());

function startSiteLoad(): LoadRun {
  load = startLoad({ baseUrl: host.url, ...LOAD });
  return load;
}

async function stopLoad(label: string): Promise<LoadReport> {
  const report = await load!.stop();
  load = undefined;
  console.log(`[${label}] ${formatSummary(report)}`);
  return report;
}

/** Zero failed requests, and the raw resets made visible. */
function expectNoFailures(report: LoadReport): void {
  expect(report.totals.requests).toBeGreaterThan(200);
  expect(report.failures, JSON.stringify(report.failures, null, 1)).toEqual({});
  expect(report.totals.failed).toBe(0);
  expect(report.totals.ok).toBe(report.totals.requests);
  // Every raw reset is accounted for by a successful resend on a new connection.
  expect(report.totals.resentOk).toBe(report.totals.rawResets);
  const newConnections = report.samples.filter((s) => s.conn === 'new');
  expect(newConnections.length).toBeGreaterThan(20);
  expect(newConnections.every((s) => s.ok && !s.resent)).toBe(true);
}

function expectDeployed(result: RunResult): void {
  expect(result.code, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(EXIT_CODES.ok);
}

/** Fires slow requests so that some are surely in flight when the next switch happens. */
function slowRequestsInFlight(count: number, ms: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const res = await fetch(`${host.url}/slow?ms=${ms}`, { headers: { connection: 'close' } });
      const body = (await res.json()) as { version: string };
      if (res.status !== 200) throw new Error(`slow request got ${res.status}`);
      return body.version;
    }),
  );
}

describe('a deploy under load', () => {
  it('swaps v1 -> v2 -> v3 and rolls back to v2 with no failed request; new requests reach only the new version', async () => {
    const run = startSiteLoad();
    await new Promise((r) => setTimeout(r, 1000));
    const steps: Array<{ args: string[]; expect: string }> = [
      { args: ['deploy', jars.v2, '--version', 'v2'], expect: 'v2' },
      { args: ['deploy', jars.v3, '--version', 'v3'], expect: 'v3' },
      { args: ['rollback'], expect: 'v2' },
    ];
    const windows: Array<{ from: number; version: string; slowBefore: Promise<string[]> }> = [];
    for (const step of steps) {
      const slowBefore = slowRequestsInFlight(6, 2000);
      await new Promise((r) => setTimeout(r, 100));
      const before = run.mark(`before ${step.args[0]} ${step.expect}`);
      const result = await host.run(step.args);
      expectDeployed(result);
      windows.push({ from: run.mark(`${step.expect} live`), version: step.expect, slowBefore });
      expect(before).toBeLessThan(windows.at(-1)!.from);
      expect(await host.servedVersion()).toBe(step.expect);
      await new Promise((r) => setTimeout(r, 1500));
    }
    const report = await stopLoad('v1->v2->v3->rollback');
    expectNoFailures(report);
    for (const [i, w] of windows.entries()) {
      const to = windows[i + 1]?.from ?? Number.POSITIVE_INFINITY;
      const started = samplesBetween(report, w.from, to).filter((s) => s.start < to - 1000);
      expect(started.length).toBeGreaterThan(50);
      expect(new Set(started.map((s) => s.version))).toEqual(new Set([w.version]));
      // Slow requests sent to the old version before the switch finished there, complete.
      expect((await w.slowBefore).length).toBe(6);
    }
    // Some load-generator slow requests spanned each switch.
    for (const w of windows) {
      expect(report.samples.some((s) => s.kind === 'slow' && s.ok && s.start < w.from - 100 && s.end > w.from)).toBe(true);
    }
    const status = host.status();
    expect(status.live).toBe('green');
    expect(status.slots.green).toMatchObject({ version: 'v2', running: true, healthy: true, role: 'live' });
    expect(status.slots.blue).toMatchObject({ version: 'v3', running: true, healthy: true, role: 'standby' });
    const history = host.history();
    expect(history.map((h) => [h.action, h.version, h.from, h.to, h.result])).toEqual([
      ['deploy', 'v1', null, 'blue', 'ok'],
      ['deploy', 'v2', 'blue', 'green', 'ok'],
      ['deploy', 'v3', 'green', 'blue', 'ok'],
      ['rollback', 'v2', 'blue', 'green', 'ok'],
    ]);
    expect(history.every((h) => typeof h.seconds === 'number' && h.seconds > 0)).toBe(true);
  });

  it('takes two deploys in quick succession while old Nginx workers still drain the old slot', async () => {
    startSiteLoad();
    await new Promise((r) => setTimeout(r, 500));
    // In flight on v1 (blue) through the switch to v2; the second deploy replaces blue, so it
    // must wait for the workers that still carry these before it stops blue.
    const onV1 = slowRequestsInFlight(8, 3000);
    await new Promise((r) => setTimeout(r, 200));
    const second = await host.run(['deploy', jars.v2, '--version', 'v2']);
    expectDeployed(second);
    const third = await host.run(['deploy', jars.v3, '--version', 'v3']);
    expectDeployed(third);
    expect(third.stdout).toMatch(/drain/);
    expect(await onV1).toEqual(Array(8).fill('v1'));
    await new Promise((r) => setTimeout(r, 1000));
    const report = await stopLoad('quick succession');
    expectNoFailures(report);
    expect(await host.servedVersion()).toBe('v3');
  });
});

describe('bad input loses nothing', () => {
  const notAJar = () => {
    const file = join(host.dir, 'notes.jar');
    writeFileSync(file, 'this is a text file, not a zip\n');
    return file;
  };
  const empty = () => {
    const file = join(host.dir, 'empty.jar');
    writeFileSync(file, '');
    return file;
  };
  const cases: Array<{ name: string; args: () => string[]; code: number; message: RegExp; env?: Record<string, string> }> = [
    { name: 'a missing file', args: () => ['deploy', join(host.dir, 'nope.jar')], code: EXIT_CODES.badArtifact, message: /does not exist/ },
    { name: 'an empty file', args: () => ['deploy', empty()], code: EXIT_CODES.badArtifact, message: /is empty \(0 bytes\)/ },
    { name: 'a file that is not a jar', args: () => ['deploy', notAJar()], code: EXIT_CODES.badArtifact, message: /is not a jar/ },
    {
      name: 'a sha256 mismatch',
      args: () => ['deploy', jars.v2, '--sha256', 'a'.repeat(64)],
      code: EXIT_CODES.badArtifact,
      message: /has sha256 [0-9a-f]{64}, but a{64} was expected/,
    },
    { name: 'a malformed sha256', args: () => ['deploy', jars.v2, '--sha256', 'xyz'], code: EXIT_CODES.usage, message: /is not a sha256/ },
    { name: 'a hostile version', args: () => ['deploy', jars.v2, '--version', '../../etc'], code: EXIT_CODES.usage, message: /is not a version/ },
    {
      name: 'a jar that exits at once',
      args: () => ['deploy', buildJar('v2-crash', { behaviour: 'exit-at-once' }), '--version', 'v2-crash'],
      code: EXIT_CODES.unhealthy,
      message: /exited before it became healthy/,
    },
    {
      name: 'a jar that never becomes healthy',
      args: () => ['deploy', buildJar('v2-sick', { behaviour: 'never-healthy' }), '--version', 'v2-sick'],
      code: EXIT_CODES.unhealthy,
      message: /did not answer HTTP 200 with "status":"UP" on \/actuator\/health within 3s/,
      env: { BLUEGREEN_HEALTH_TIMEOUT: '3' },
    },
  ];

  it.each(cases)('$name: clear error, live slot keeps serving, next good deploy works', async (c) => {
    startSiteLoad();
    await new Promise((r) => setTimeout(r, 500));
    const releasesBefore = host.status().slots.blue.release!;
    const result = await host.run(c.args(), c.env);
    expect(result.code, result.stderr).toBe(c.code);
    expect(result.stderr).toMatch(c.message);
    expect(result.stderr).toMatch(/Nothing was changed|Nginx was not touched|--sha256|--version/);
    expect(await host.servedVersion()).toBe('v1');
    const status = host.status();
    expect(status.live).toBe('blue');
    expect(status.slots.blue).toMatchObject({ version: 'v1', running: true, healthy: true });
    expect(status.slots.green.running).toBe(false);
    expect(existsSync(releasesBefore)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const good = await host.run(['deploy', jars.v2, '--version', 'v2']);
    expectDeployed(good);
    expect(await host.servedVersion()).toBe('v2');
    const report = await stopLoad(c.name);
    expectNoFailures(report);
    const history = host.history();
    if (c.code === EXIT_CODES.badArtifact || c.code === EXIT_CODES.unhealthy) {
      const failed = history.at(-2)!;
      expect(failed.result).toBe('failed');
      expect(failed.message).toMatch(c.message);
    }
    expect(history.at(-1)).toMatchObject({ action: 'deploy', version: 'v2', result: 'ok' });
  });

  it('keeps the failed release and the log tail for a jar that never becomes healthy', async () => {
    const sick = buildJar('v2-sick', { behaviour: 'never-healthy' });
    const result = await host.run(['deploy', sick, '--version', 'v2-sick'], { BLUEGREEN_HEALTH_TIMEOUT: '2' });
    expect(result.code, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(EXIT_CODES.unhealthy);
    expect(result.stderr).toMatch(/last lines of .*green\.log/);
    expect(result.stderr).toMatch(/Started SampleApp|Starting SampleApp/);
    const dir = /The release stays in (\S+) and/.exec(result.stderr)?.[1];
    expect(dir && existsSync(join(dir, 'app.jar'))).toBe(true);
  });

  it('restores the include and leaves traffic alone when nginx -t rejects the configuration', async () => {
    startSiteLoad();
    await new Promise((r) => setTimeout(r, 500));
    const includeBefore = host.includeText();
    // Someone broke Nginx's configuration by hand: every 'nginx -t' now fails.
    const broken = join(host.dir, 'nginx', 'conf.d', 'zz-broken.conf');
    writeFileSync(broken, 'this_is_not_a_directive on;\n');
    const result = await host.run(['deploy', jars.v2, '--version', 'v2']);
    expect(result.code).toBe(EXIT_CODES.nginxRejected);
    expect(result.stderr).toMatch(/'nginx -t' rejected the configuration/);
    expect(result.stderr).toMatch(/unknown directive "this_is_not_a_directive"/);
    expect(host.includeText()).toBe(includeBefore);
    expect(await host.servedVersion()).toBe('v1');
    expect(host.status().slots.green.running).toBe(false);
    rmSync(broken);
    expectDeployed(await host.run(['deploy', jars.v2, '--version', 'v2']));
    const report = await stopLoad('nginx -t fails');
    expectNoFailures(report);
    expect(host.history().at(-2)).toMatchObject({ result: 'failed', version: 'v2' });
  });

  it('catches a reload that Nginx never takes and puts the include back', async () => {
    startSiteLoad();
    await new Promise((r) => setTimeout(r, 500));
    const includeBefore = host.includeText();
    const master = host.nginxMasterPid();
    // A stopped master acknowledges nothing: 'nginx -s reload' still exits 0.
    process.kill(master, 'SIGSTOP');
    let result: RunResult;
    try {
      result = await host.run(['deploy', jars.v2, '--version', 'v2'], { BLUEGREEN_NGINX_VERIFY_TIMEOUT: '2' });
    } finally {
      process.kill(master, 'SIGCONT');
    }
    expect(result.code).toBe(EXIT_CODES.nginxRejected);
    expect(result.stderr).toMatch(/did not take the new configuration within 2s/);
    expect(host.includeText()).toBe(includeBefore);
    await new Promise((r) => setTimeout(r, 500));
    expect(await host.servedVersion()).toBe('v1');
    expectDeployed(await host.run(['deploy', jars.v2, '--version', 'v2']));
    const report = await stopLoad('reload not taken');
    expectNoFailures(report);
  });
});

describe('a system command that fails', () => {
  // systemctl's own exit statuses (LSB: 5 = unit not loaded, 4 = no permission) overlap the
  // engine's; the engine must not pass them on as if it had chosen them.
  /**
   * A directory holding a stand-in systemctl for which every slot is stopped (no main process,
   * not active), with `cases` for the other commands (sh `case` branches on $1); other commands
   * succeed and print nothing.
   */
  function standInSystemctl(cases: readonly string[]): string {
    const bin = join(host.dir, 'stand-in-bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'systemctl'), ['#!/bin/sh', 'case $1 in', '  show) echo 0 ;;', '  is-active) exit 3 ;;', ...cases, 'esac', ''].join('\n'), { mode: 0o755 });
    return bin;
  }

  it('exits unexpected, naming the command, when systemctl start fails with status 5; the live slot keeps serving', async () => {
    // A host whose slot unit is not installed: starting one fails.
    const bin = standInSystemctl(['  start) echo "Failed to start $2: Unit $2 not found." >&2; exit 5 ;;']);
    startSiteLoad();
    await new Promise((r) => setTimeout(r, 500));
    const result = await host.run(['deploy', jars.v2, '--version', 'v2'], { BLUEGREEN_RUNNER: 'systemd', PATH: `${bin}:${process.env.PATH}` });
    expect(result.code, result.stderr).toBe(EXIT_CODES.unexpected);
    expect(result.stderr).toMatch(/^bluegreen: error: unexpected failure at lib\/slots\.sh line \d+, status 5 from: systemctl start /m);
    expect(await host.servedVersion()).toBe('v1');
    expect(host.status()).toMatchObject({ live: 'blue', slots: { blue: { version: 'v1', running: true, healthy: true } } });
    expect(host.history().at(-1)).toMatchObject({ action: 'deploy', version: 'v2', result: 'failed', message: expect.stringMatching(/systemctl start/) });
    expectDeployed(await host.run(['deploy', jars.v2, '--version', 'v2']));
    expect(await host.servedVersion()).toBe('v2');
    expectNoFailures(await stopLoad('systemctl start fails'));
  });

  /**
   * A host that shuts down: the system is "stopping", and a start is refused in systemd's own
   * words for a start requested while reboot.target is queued. At the `signalAtCall`th question
   * about the system's state, the engine gets SIGTERM, as systemd-shutdown sends to what is left.
   */
  function shuttingDownSystemctl(signalAtCall = 0): string {
    const calls = join(host.dir, 'stand-in-bin', 'calls');
    return standInSystemctl([
      '  is-system-running)',
      `    echo x >>'${calls}'`,
      `    [ "$(wc -l <'${calls}')" -eq ${signalAtCall} ] && kill -TERM "$(pgrep -o -f 'bin/bluegreen deploy')"`,
      '    echo stopping; exit 1 ;;',
      `  start) echo "Failed to start $2: Transaction for $2/start is destructive (reboot.target has 'start' job queued, but 'stop' is included in transaction)." >&2; exit 1 ;;`,
    ]);
  }

  // The systemd suite (test/systemd) reboots a real systemd under a deploy; when in the shutdown
  // a request fails is a matter of milliseconds there. Here the refusal comes every time.
  it('says the host is shutting down, not that a command failed, when systemd refuses a start during a shutdown; the live slot keeps serving', async () => {
    const bin = shuttingDownSystemctl();
    startSiteLoad();
    await new Promise((r) => setTimeout(r, 500));
    const result = await host.run(['deploy', jars.v2, '--version', 'v2'], { BLUEGREEN_RUNNER: 'systemd', PATH: `${bin}:${process.env.PATH}` });
    expect(result.code, result.stderr).toBe(EXIT_CODES.unexpected);
    expect(result.stderr).toMatch(/^bluegreen: error: the host began to shut down during this deploy, and systemd no longer took its requests: status 1 from: systemctl start .*; run the deploy again once the host is back up/m);
    expect(result.stderr).not.toContain('unexpected failure');
    // Starting the standby again would be refused too: the first operation after the boot does it.
    expect(result.stderr).toContain('the warm standby on green is not put back now');
    expect(await host.servedVersion()).toBe('v1');
    expect(host.history().at(-1)).toMatchObject({ action: 'deploy', version: 'v2', result: 'failed', message: expect.stringMatching(/^the host began to shut down during this deploy/) });
    expectDeployed(await host.run(['deploy', jars.v2, '--version', 'v2']));
    expect(await host.servedVersion()).toBe('v2');
    expectNoFailures(await stopLoad('systemctl start refused in a shutdown'));
  });

  it("a SIGTERM while the engine records that failure (the shutdown's, to what is left) cuts off neither the record nor the clean-up", async () => {
    // The first question about the system's state is the failure's (on_error), the second the
    // one on the way out (whether to put the standby back): the signal comes during the latter.
    const bin = shuttingDownSystemctl(2);
    const result = await host.run(['deploy', jars.v2, '--version', 'v2'], { BLUEGREEN_RUNNER: 'systemd', PATH: `${bin}:${process.env.PATH}` });
    expect(readFileSync(join(bin, 'calls'), 'utf8')).toBe('x\nx\n');
    expect(result.code, result.stderr).toBe(EXIT_CODES.unexpected);
    expect(result.stderr).toContain('the warm standby on green is not put back now');
    expect(host.history().at(-1)).toMatchObject({ action: 'deploy', version: 'v2', result: 'failed', message: expect.stringMatching(/^the host began to shut down during this deploy/) });
    const next = await host.run(['deploy', jars.v2, '--version', 'v2']);
    expectDeployed(next);
    expect(next.stderr).not.toContain('was interrupted before it finished');
    expect(await host.servedVersion()).toBe('v2');
  });
});

describe('killed and concurrent deploys', () => {
  it('refuses a second concurrent deploy fast, naming the running one', async () => {
    const slow = host.spawn(['deploy', jars.v2, '--version', 'v2'], { BLUEGREEN_APP_ARGS: '--bluegreen.start-delay-ms=3000' });
    let out = '';
    slow.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('start '), 'the first deploy to start its slot');
    const second = await host.run(['deploy', jars.v3, '--version', 'v3']);
    expect(second.code).toBe(EXIT_CODES.locked);
    expect(second.stderr).toMatch(new RegExp(`another deploy is running since \\S+ \\(pid ${slow.pid}\\)`));
    expect(second.ms).toBeLessThan(2000);
    const code = await new Promise<number | null>((r) => slow.on('close', r));
    expect(code).toBe(EXIT_CODES.ok);
    expect(await host.servedVersion()).toBe('v2');
  });

  it('with BLUEGREEN_LOCK_WAIT waits for the running one and says for whom; past the bound it gives up, changing nothing', async () => {
    const slow = host.spawn(['deploy', jars.v2, '--version', 'v2'], { BLUEGREEN_APP_ARGS: '--bluegreen.start-delay-ms=3000' });
    let out = '';
    slow.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const slowDone = new Promise<number | null>((r) => slow.on('close', r));
    await waitFor(() => out.includes('start '), 'the first deploy to start its slot');
    const holder = `another deploy holds the deploy lock since \\S+ \\(pid ${slow.pid}\\) for v2, started by .+`;

    const impatient = await host.run(['deploy', jars.v3, '--version', 'v3'], { BLUEGREEN_LOCK_WAIT: '1' });
    expect(impatient.code, impatient.stderr).toBe(EXIT_CODES.locked);
    expect(impatient.stdout).toMatch(new RegExp(`\\] lock +${holder}; waiting up to 1s for it to finish`));
    expect(impatient.stderr).toMatch(new RegExp(`another deploy \\(pid ${slow.pid}, since \\S+\\) for v2, started by .+ still held the deploy lock after this deploy waited 1s for it\\. Nothing was changed\\.`));
    expect(impatient.ms).toBeGreaterThanOrEqual(1000);

    const patient = await host.run(['deploy', jars.v3, '--version', 'v3'], { BLUEGREEN_LOCK_WAIT: '60', BLUEGREEN_CALLER: 'the lock test' });
    expectDeployed(patient);
    expect(patient.stdout).toMatch(new RegExp(`\\] lock +waited [\\d.]+s for the deploy \\(pid ${slow.pid}\\) for v2, started by `));
    expect(await slowDone).toBe(EXIT_CODES.ok);
    expect(await host.servedVersion()).toBe('v3');
    // In the order they held the lock; the one that gave up changed nothing, so left no entry.
    expect(host.history().slice(-2).map((e) => [e.version, e.result])).toEqual([['v2', 'ok'], ['v3', 'ok']]);
  });

  // The deploy's phase lines, in order; a kill lands right after one of them is printed, or a
  // few milliseconds later, which covers the steps in between. Where a point's delay could
  // outlast the rest of the deploy on a fast machine, the point makes the deploy longer instead
  // of hoping: an app that stays DOWN for a while keeps the health wait open, and a bake keeps the
  // deploy alive after its proof (the engine proves the switch in tens of ms, then records the
  // result within a few more). The kill then lands in the switch, the proof or the bake,
  // whichever the machine has reached, and never after the deploy ended.
  const slowReady = { BLUEGREEN_APP_ARGS: '--bluegreen.ready-delay-ms=1500' };
  const bake = { BLUEGREEN_BAKE_SECONDS: '2' };
  const killPoints: Array<{ after: string; delayMs: number; env?: Record<string, string>; before?: string }> = [
    { after: 'lock', delayMs: 0 },
    { after: 'check', delayMs: 0 },
    { after: 'release', delayMs: 0 },
    { after: 'drain', delayMs: 0 },
    { after: 'stop', delayMs: 30 },
    { after: 'start', delayMs: 0 },
    // Inside the health wait: the port is open and health still answers DOWN.
    { after: 'start', delayMs: 300, env: slowReady, before: 'health' },
    { after: 'health', delayMs: 0, env: bake },
    { after: 'switch', delayMs: 0, env: bake },
    { after: 'switch', delayMs: 5, env: bake },
    { after: 'switch', delayMs: 20, env: bake },
    { after: 'switch', delayMs: 60, env: bake },
    // Around Nginx's own 100 ms between starting new workers and retiring the old ones.
    { after: 'switch', delayMs: 100, env: bake },
    // After the proof and before the record.
    { after: 'verify', delayMs: 0, env: bake },
  ];

  it('recovers from a deploy killed with SIGKILL at every phase, and traffic never stops', async () => {
    // A standby must exist, so that every deploy has a drain and a stop phase.
    expectDeployed(await host.run(['deploy', jars.v2, '--version', 'v2']));
    const run = startSiteLoad();
    await new Promise((r) => setTimeout(r, 500));
    const versions = ['v3', 'v4'] as const;
    let n = 0;
    for (const point of killPoints) {
      const version = versions[n++ % 2]!;
      const child = host.spawn(['deploy', jars[version], '--version', version], point.env);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      let exited = false;
      const closed = new Promise<void>((r) => child.on('close', () => r()));
      void closed.then(() => (exited = true));
      const phase = new RegExp(`\\] ${point.after} `);
      await Promise.race([waitFor(() => phase.test(out), `phase ${point.after}`, 20_000), closed]);
      if (point.delayMs) await new Promise((r) => setTimeout(r, point.delayMs));
      expect(exited, `the deploy finished before the kill after ${point.after}+${point.delayMs} ms:\n${out}`).toBe(false);
      if (point.before) expect(out, `the kill after ${point.after}+${point.delayMs} ms came too late`).not.toMatch(new RegExp(`\\] ${point.before} `));
      child.kill('SIGKILL');
      await closed;
      run.mark(`killed after ${point.after}+${point.delayMs}`);
      // The next deploy must succeed, whatever was left half-done.
      const next = await host.run(['deploy', jars.v1, '--version', 'v1']);
      expectDeployed(next);
      expect(await host.servedVersion()).toBe('v1');
      const status = host.status();
      expect(status.slots[status.live!]).toMatchObject({ version: 'v1', running: true, healthy: true });
      const history = host.history();
      expect(history.some((h) => h.result === 'interrupted')).toBe(true);
      // Back to a v2 standby for the next round, so that each round starts alike.
      expectDeployed(await host.run(['deploy', jars.v2, '--version', 'v2']));
    }
    const report = await stopLoad('SIGKILL at every phase');
    expectNoFailures(report);
    const interrupted = host.history().filter((h) => h.result === 'interrupted');
    expect(interrupted.length).toBe(killPoints.length);
    // Exactly the two slots run: no half-started JVM was left behind by a killed deploy.
    const jvms = spawnSync('pgrep', ['-f', '--', `-jar ${host.dir}/home/releases/`], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(jvms.length).toBe(2);
  });
});

describe('records', () => {
  it('keeps only the newest releases, never the ones a slot runs', async () => {
    for (const v of ['v2', 'v3', 'v4'] as const) {
      expectDeployed(await host.run(['deploy', jars[v], '--version', v], { BLUEGREEN_KEEP_RELEASES: '2' }));
    }
    const status = host.status();
    expect(existsSync(status.slots.blue.release!)).toBe(true);
    expect(existsSync(status.slots.green.release!)).toBe(true);
    const kept = readdirSync(join(host.dir, 'home', 'releases'));
    expect(kept.sort()).toEqual(
      [status.slots.blue.release!, status.slots.green.release!].map((r) => r.split('/').at(-2)!).sort(),
    );
  });

  it('is a quick no-op to deploy what is already live, and a fast switch for the warm standby', async () => {
    expectDeployed(await host.run(['deploy', jars.v2, '--version', 'v2']));
    const again = await host.run(['deploy', jars.v2, '--version', 'v2']);
    expectDeployed(again);
    expect(again.stdout).toMatch(/v2 is already live on green; nothing to do/);
    const back = await host.run(['deploy', jars.v1, '--version', 'v1']);
    expectDeployed(back);
    expect(back.stdout).toMatch(/v1 is the warm standby on blue/);
    expect(back.stdout).not.toMatch(/\] start /);
    expect(host.history().slice(-2).map((h) => h.result)).toEqual(['noop', 'ok']);
  });

  it('warms the new slot with the configured requests before it goes live, and not when off', async () => {
    const rootRequests = async (port: number) => ((await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { rootRequests: number }).rootRequests;

    const warmed = await host.run(['deploy', jars.v2, '--version', 'v2'], { BLUEGREEN_WARMUP_REQUESTS: '40', BLUEGREEN_WARMUP_PATH: '/' });
    expectDeployed(warmed);
    expect(warmed.stdout).toMatch(/\] warmup +green answered 40 warm-up requests to \/ in \d+\.\d+s/);
    // The warm-up comes after health and before the switch.
    expect(warmed.stdout.indexOf('] health ')).toBeLessThan(warmed.stdout.indexOf('] warmup '));
    expect(warmed.stdout.indexOf('] warmup ')).toBeLessThan(warmed.stdout.indexOf('] switch '));
    // Straight to the slot, not through Nginx: the slot saw them all.
    expect(await rootRequests(PORTS.green)).toBe(40);

    const cold = await host.run(['deploy', jars.v3, '--version', 'v3']);
    expectDeployed(cold);
    expect(cold.stdout).not.toMatch(/\] warmup /);
    expect(await rootRequests(PORTS.blue)).toBe(0);
  });

  it('rolls back to a standby that is not running by starting it first', async () => {
    expectDeployed(await host.run(['deploy', jars.v2, '--version', 'v2']));
    const bluePid = host.status().slots.blue.pid!;
    process.kill(bluePid, 'SIGKILL');
    await waitFor(() => !host.status().slots.blue.running, 'blue to be gone');
    const rollback = await host.run(['rollback']);
    expectDeployed(rollback);
    expect(rollback.stdout).toMatch(/blue is not running; starting it from its release/);
    expect(await host.servedVersion()).toBe('v1');
  });

  it('labels a release deployed without --version as the contract does: by its sha256', async () => {
    const sha256 = createHash('sha256').update(readFileSync(jars.v2)).digest('hex');
    expectDeployed(await host.run(['deploy', jars.v2]));
    expect(host.status().slots.green).toMatchObject({ version: defaultReleaseLabel(sha256), sha256, role: 'live' });
    expect(host.history().at(-1)).toMatchObject({ action: 'deploy', version: defaultReleaseLabel(sha256), result: 'ok' });
  });

  it('writes history lines that a person can read, and status without --json', async () => {
    const text = host.runSync(['history']).stdout;
    expect(text).toMatch(/WHEN\s+ACTION\s+VERSION/);
    expect(text).toMatch(/deploy\s+v1\s+-->blue\s+ok/);
    const status = host.runSync(['status']).stdout;
    expect(status).toMatch(/^live: blue/m);
    expect(status).toMatch(/blue\s+port 18181 live\s+v1\s+running=true\s+healthy=true/);
  });

  it('keeps the newest 1000 history entries once the file passes 1 MiB', async () => {
    const file = join(host.dir, 'home', 'history.jsonl');
    const old = readFileSync(file, 'utf8');
    const filler = Array.from({ length: 5000 }, (_, i) =>
      JSON.stringify({ at: '2026-01-01T00:00:00Z', action: 'deploy', from: 'blue', to: 'green', version: `old-${i}`, sha256: null, result: 'ok', seconds: 1, appSeconds: 1, message: 'x'.repeat(200) }),
    );
    writeFileSync(file, `${filler.join('\n')}\n${old}`);
    expect(readFileSync(file).length).toBeGreaterThan(1024 * 1024);
    expectDeployed(await host.run(['deploy', jars.v1, '--version', 'v1']));
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(1000);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ action: 'deploy', version: 'v1', result: 'noop' });
    expect(JSON.parse(lines[0]!)).toMatchObject({ version: `old-${5000 - 1000 + 1 + old.trimEnd().split('\n').length}` });
    expect(statSync(file).mode & 0o077).toBe(0);
  });

  it('leaves the history file with one JSON object per line', () => {
    const lines = readFileSync(join(host.dir, 'home', 'history.jsonl'), 'utf8').trim().split('\n');
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ action: 'deploy', version: 'v1', result: 'ok' });
  });
});

