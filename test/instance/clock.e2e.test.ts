/**
 * Clock steps: chrony may step the wall clock at first boot, in the middle of a deploy. The
 * engine times its health wait, its bake and its stop timeout on a clock that does not step, so
 * a step neither cuts them short nor stretches them. The engine runs under a wall clock that
 * steps by an hour mid-run (test/support/fake-wall-clock), against a real local host.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../lib/contract.js';
import { buildJar, LocalHost, PROJECT_DIR, type RunResult } from '../support/host.js';

const PORTS = { nginx: 19590, blue: 19591, green: 19592 };
const FAKE_WALL_CLOCK = join(PROJECT_DIR, 'test', 'support', 'fake-wall-clock');
const HOUR = 3600;

let jars: Record<'v1' | 'slow' | 'fast' | 'never', string>;
let host: LocalHost;

beforeAll(() => {
  jars = {
    v1: buildJar('v1'),
    slow: buildJar('v2-slow', { startDelayMs: 4000 }),
    fast: buildJar('v2'),
    never: buildJar('v2-never', { behaviour: 'never-healthy' }),
  };
});

beforeEach(async () => {
  host = new LocalHost(PORTS).up();
  const first = await host.run(['deploy', jars.v1, '--version', 'v1']);
  expect(first.code, first.stderr).toBe(EXIT_CODES.ok);
});

afterEach(() => host.destroy());

/** `bluegreen ARGS` whose wall clock steps by `step` seconds `after` seconds into the run. */
async function runStepped(args: string[], step: number, after: number, extra: Record<string, string> = {}): Promise<RunResult> {
  const started = performance.now();
  const child = spawn(FAKE_WALL_CLOCK, args, {
    env: host.env({ FAKE_CLOCK_STEP: String(step), FAKE_CLOCK_STEP_AFTER: String(after), ...extra }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  return { code, stdout, stderr, ms: performance.now() - started };
}

/** The seconds since the operation started that the engine printed on its first line matching `phase`. */
function phaseAt(stdout: string, phase: RegExp): number {
  const line = stdout.split('\n').find((l) => phase.test(l));
  expect(line, stdout).toBeDefined();
  return Number(/^bluegreen \[ *([\d.]+)s\]/.exec(line!)![1]);
}

describe('a wall-clock step during a deploy', () => {
  it('an hour forward does not cut the health wait short: a slot that needs 4 s of a 10 s wait still goes live', async () => {
    const result = await runStepped(['deploy', jars.slow, '--version', 'v2-slow'], HOUR, 1, { BLUEGREEN_HEALTH_TIMEOUT: '10' });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(EXIT_CODES.ok);
    // The step came while the engine was waiting for health.
    expect(phaseAt(result.stdout, /\] start /)).toBeLessThan(1);
    expect(result.stdout).toMatch(/health +green is healthy after [4-9]\.\d\ds/);
    expect(await host.servedVersion()).toBe('v2-slow');
  });

  it('an hour back does not stretch the health wait: a slot that never becomes healthy fails after its 3 s', async () => {
    const result = await runStepped(['deploy', jars.never, '--version', 'v2-never'], -HOUR, 1, { BLUEGREEN_HEALTH_TIMEOUT: '3' });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(EXIT_CODES.unhealthy);
    expect(phaseAt(result.stdout, /\] start /)).toBeLessThan(1);
    expect(result.stderr).toMatch(/did not answer HTTP 200 .* within 3s/);
    expect(result.ms).toBeLessThan(15_000);
    expect(await host.servedVersion()).toBe('v1');
  });

  it('an hour forward does not cut the bake short: it watches the new release for its whole time', async () => {
    const bakeSeconds = 6;
    const stepAfter = 4;
    const result = await runStepped(['deploy', jars.fast, '--version', 'v2'], HOUR, stepAfter, { BLUEGREEN_BAKE_SECONDS: String(bakeSeconds) });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(EXIT_CODES.ok);
    const bakeStarted = phaseAt(result.stdout, /\] bake +watching/);
    // The step came during the bake.
    expect(bakeStarted).toBeLessThan(stepAfter);
    const watched = Number(/bake +passed: .* in ([\d.]+) s/.exec(result.stdout)?.[1]);
    expect(watched, result.stdout).toBeGreaterThanOrEqual(bakeSeconds);
    expect(result.ms).toBeGreaterThan((bakeStarted + bakeSeconds) * 1000);
  });
});
