/**
 * Issue 17: a failed deploy must not cost the warm standby. With v1 the standby (blue) and v2
 * live (green), each kind of failed deploy of v3 into blue is made to happen for real under load
 * through Nginx; afterwards blue runs v1 again, healthy, `status` calls it the standby, and
 * `rollback` makes it live. Live traffic never fails.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CODES } from '../../lib/contract.js';
import { formatSummary, startLoad, type LoadReport, type LoadRun } from '../../scripts/lib/load.js';
import { buildJar, describeRun, LocalHost, waitFor } from '../support/host.js';

const PORTS = { nginx: 18280, blue: 18281, green: 18282 };
const LOAD = { keepAliveConnections: 32, newConnectionWorkers: 4, slowRequestEvery: 40, slowMs: 800, thinkMs: 2 };
/** The health timeout of every deploy here: long enough for v1 to start again on a busy host. */
const HEALTH_TIMEOUT = '8';

let jars: { v1: string; v2: string; v3: string; crash: string; sick: string; slow: string };
let host: LocalHost;
let load: LoadRun | undefined;

beforeAll(() => {
  jars = {
    v1: buildJar('v1'),
    v2: buildJar('v2'),
    v3: buildJar('v3'),
    crash: buildJar('v3-crash', { behaviour: 'exit-at-once' }),
    sick: buildJar('v3-sick', { behaviour: 'never-healthy' }),
    // Listens only after a minute: the health timeout runs out first.
    slow: buildJar('v3-slow', { startDelayMs: 60_000 }),
  };
});

beforeEach(async () => {
  host = new LocalHost(PORTS).up();
  for (const v of ['v1', 'v2'] as const) {
    const r = await host.run(['deploy', jars[v], '--version', v]);
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
  }
  expect(host.status()).toMatchObject({ live: 'green', slots: { blue: { version: 'v1', role: 'standby', healthy: true } } });
  load = startLoad({ baseUrl: host.url, ...LOAD });
  await new Promise((r) => setTimeout(r, 500));
});

afterEach(async () => {
  await load?.stop();
  load = undefined;
  host.destroy();
});

/** What the port itself answers, not through Nginx. */
async function direct(port: number): Promise<{ health: number; version: string }> {
  const health = await fetch(`http://127.0.0.1:${port}/actuator/health`, { headers: { connection: 'close' } });
  const root = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
  return { health: health.status, version: ((await root.json()) as { version: string }).version };
}

/**
 * After the failure: v2 still serves, blue runs v1 again as the standby, `rollback` goes to it,
 * and no request failed along the way.
 */
async function expectStandbyBackAndRollback(label: string): Promise<void> {
  expect(await host.servedVersion()).toBe('v2');
  expect(await direct(PORTS.blue)).toEqual({ health: 200, version: 'v1' });
  const status = host.status();
  expect(status.live).toBe('green');
  expect(status.slots.blue).toMatchObject({ version: 'v1', role: 'standby', running: true, healthy: true });
  expect(status.slots.green).toMatchObject({ version: 'v2', role: 'live', running: true, healthy: true });
  const rollback = await host.run(['rollback']);
  expect(rollback.code, describeRun(rollback)).toBe(EXIT_CODES.ok);
  // The standby was running: the rollback only switches, it starts nothing.
  expect(rollback.stdout).not.toMatch(/\] start /);
  expect(await host.servedVersion()).toBe('v1');
  expect(host.status()).toMatchObject({ live: 'blue', slots: { green: { version: 'v2', role: 'standby' } } });
  await new Promise((r) => setTimeout(r, 500));
  const report: LoadReport = await load!.stop();
  load = undefined;
  console.log(`[${label}] ${formatSummary(report)}`);
  expect(report.totals.requests).toBeGreaterThan(200);
  expect(report.failures, JSON.stringify(report.failures, null, 1)).toEqual({});
  expect(report.totals.failed).toBe(0);
  expect(report.totals.resentOk).toBe(report.totals.rawResets);
}

describe('a failed deploy puts the warm standby back', () => {
  const failures: Array<{ name: string; jar: () => string; code: number; message: RegExp; env?: Record<string, string>; before?: () => void }> = [
    {
      name: 'the process exits',
      jar: () => jars.crash,
      code: EXIT_CODES.unhealthy,
      message: /the blue process exited before it became healthy \(exit status 1\)/,
    },
    {
      name: 'it never becomes healthy',
      jar: () => jars.sick,
      code: EXIT_CODES.unhealthy,
      message: /blue did not answer HTTP 200 with "status":"UP" on \/actuator\/health within 8s/,
    },
    {
      name: 'the health timeout runs out before it listens',
      jar: () => jars.slow,
      code: EXIT_CODES.unhealthy,
      message: /blue did not answer HTTP 200 with "status":"UP" on \/actuator\/health within 8s/,
    },
    {
      name: 'nginx -t refuses the switch',
      jar: () => jars.v3,
      code: EXIT_CODES.nginxRejected,
      message: /'nginx -t' rejected the configuration.*unknown directive "this_is_not_a_directive"/,
      // Someone broke Nginx's configuration by hand: every 'nginx -t' fails from now on.
      before: () => writeFileSync(join(host.dir, 'nginx', 'conf.d', 'zz-broken.conf'), 'this_is_not_a_directive on;\n'),
    },
  ];

  it.each(failures)('$name: blue runs v1 again, healthy, the standby; rollback goes to it', async (c) => {
    c.before?.();
    const result = await host.run(['deploy', c.jar(), '--version', 'v3'], { BLUEGREEN_HEALTH_TIMEOUT: HEALTH_TIMEOUT, ...c.env });
    expect(result.code, describeRun(result)).toBe(c.code);
    expect(result.stderr).toMatch(c.message);
    expect(result.stderr).toMatch(/The warm standby is back: blue runs v1 again on port 18281, healthy; 'bluegreen rollback' switches to it\./);
    const failed = host.history().at(-1)!;
    expect(failed).toMatchObject({ action: 'deploy', version: 'v3', from: 'green', to: 'blue', result: 'failed' });
    expect(failed.message).toMatch(c.message);
    expect(failed.message).toMatch(/The warm standby is back/);
    rmSync(join(host.dir, 'nginx', 'conf.d', 'zz-broken.conf'), { force: true });
    await expectStandbyBackAndRollback(c.name);
  });

  // An interrupted deploy cannot clean up after itself (SIGKILL) or should not hold up whoever
  // stopped it (SIGTERM): the next operation that takes the lock puts the standby back first.
  // 'bluegreen switch LIVE' is that operation with nothing else to do.
  it.each(['SIGKILL', 'SIGTERM'] as const)('a deploy killed with %s while the new release starts: the next operation puts v1 back', async (signal) => {
    const child = host.spawn(['deploy', jars.slow, '--version', 'v3'], { BLUEGREEN_HEALTH_TIMEOUT: '120' });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await waitFor(() => /\] start /.test(out), 'the deploy to start v3 in blue', 30_000);
    await new Promise((r) => setTimeout(r, 300));
    child.kill(signal);
    const code = await closed;
    if (signal === 'SIGTERM') {
      expect(code).toBe(143);
      expect(err).toMatch(/the next bluegreen deploy, rollback or switch puts that standby back first/);
    }
    // Blue holds the half-started v3 now; live traffic never noticed.
    expect(await host.servedVersion()).toBe('v2');
    const recover = await host.run(['switch', 'green'], { BLUEGREEN_HEALTH_TIMEOUT: HEALTH_TIMEOUT });
    expect(recover.code, describeRun(recover)).toBe(EXIT_CODES.ok);
    expect(recover.stdout).toMatch(/\] standby +putting blue back as it was before the deploy: v1, running/);
    expect(recover.stdout).toMatch(/The warm standby is back: blue runs v1 again on port 18281, healthy/);
    const history = host.history();
    expect(history.at(-1)).toMatchObject({ action: 'switch', result: 'noop' });
    if (signal === 'SIGKILL') {
      expect(history.at(-2)).toMatchObject({ action: 'deploy', result: 'interrupted' });
      // An operation with no slot on record prints one dash, not '-->-'.
      const text = host.runSync(['history']).stdout;
      expect(text).toMatch(/deploy\s+v3\s+-\s+interrupted/);
      expect(text).not.toMatch(/-->-/);
    } else {
      expect(history.at(-2)).toMatchObject({ action: 'deploy', version: 'v3', from: 'green', to: 'blue', result: 'failed' });
    }
    await expectStandbyBackAndRollback(`killed with ${signal}`);
  });

  it('a deploy refused before it started names its slots in the history and leaves the standby as it was', async () => {
    const notAJar = join(host.dir, 'notes.jar');
    writeFileSync(notAJar, 'not a zip\n');
    const refused = await host.run(['deploy', notAJar, '--version', 'v3']);
    expect(refused.code).toBe(EXIT_CODES.badArtifact);
    expect(host.history().at(-1)).toMatchObject({ action: 'deploy', from: 'green', to: 'blue', result: 'failed' });
    const text = host.runSync(['history']).stdout;
    expect(text).toMatch(/deploy\s+v3\s+green->blue\s+failed/);
    expect(text).not.toMatch(/-->-/);
    await expectStandbyBackAndRollback('refused artifact');
  });
});
