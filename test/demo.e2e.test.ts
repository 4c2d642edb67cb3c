/**
 * `npm run demo`, the README's first command after the install, run as a user runs it: a child
 * process on its own ports, with real Nginx, JVMs and load. Short dwell times keep it to seconds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { projectPath } from '../lib/paths.js';

const PORT = 19400;

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('npm run demo', () => {
  test('deploys v1, v2 and rolls back under load with no failed request, prints the table, draws the chart, and cleans up', async () => {
    // WHEN
    const result = spawnSync('npx', ['tsx', 'scripts/demo.ts', '--port', String(PORT), '--seconds', '1'], {
      cwd: projectPath(),
      encoding: 'utf8',
      timeout: 110_000,
    });

    // THEN
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toMatch(/deploy v2 done in \d+\.\d\d s/);
    expect(result.stdout).toMatch(/rollback to v1 done in \d+\.\d\d s/);
    expect(result.stdout).toMatch(/\| deploy v2 \| \d+\.\d\d s \| [1-9]\d* \| 0 \|/);
    expect(result.stdout).toMatch(/\| rollback to v1 \| \d+\.\d\d s \| [1-9]\d* \| 0 \|/);
    expect(result.stdout).toMatch(/\| whole run \| \| [1-9]\d* \| 0 \|/);
    expect(result.stdout).toContain('done: no request failed');
    // The engine's own status after the rollback: v1 live, v2 kept as the warm standby.
    expect(result.stdout).toMatch(/v1.*live/);

    const svg = readFileSync(join(projectPath(), '.build', 'demo', 'requests-by-version.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    for (const label of ['v1', 'v2', 'deploy v2', 'rollback to v1']) expect(svg).toContain(label);
    // The lines mark when traffic moved, measured from the requests, and say how long after the command.
    expect(svg).toMatch(/deploy v2: traffic to v2 \(\d+\.\d\d s after the command\)/);
    expect(svg).toMatch(/rollback to v1: traffic to v1 \(\d+\.\d\d s after the command\)/);
    expect(svg).toContain('latency of answered requests (ms)');
    expect(svg).toContain('the dip is latency, not loss.');
    expect(svg).toContain('No request failed in this run.');
    expect(existsSync(join(projectPath(), '.build', 'demo', 'report.json'))).toBe(true);

    // Nginx and both slots are gone.
    for (const port of [PORT, PORT + 1, PORT + 2]) expect(await portOpen(port)).toBe(false);
  });

  test('--help prints what it does and its options, and starts nothing', () => {
    const result = spawnSync('npx', ['tsx', 'scripts/demo.ts', '--help'], { cwd: projectPath(), encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Usage: npm run demo \[-- OPTIONS\]/);
    for (const option of ['--port N', '--seconds S', '--help']) expect(result.stdout).toContain(option);
    expect(result.stderr).toBe('');
  });

  test.each([
    [['--frobnicate'], "demo: error: Unknown option '--frobnicate'. Nothing was started; 'npm run demo -- --help' lists the options."],
    [['--port'], "demo: error: Option '--port <value>' argument missing. Nothing was started; 'npm run demo -- --help' lists the options."],
    [['v2'], "demo: error: Unexpected argument 'v2'. This command does not take positional arguments. Nothing was started; 'npm run demo -- --help' lists the options."],
  ])('%j is refused in one line that names it, without a stack trace', (args, message) => {
    const result = spawnSync('npx', ['tsx', 'scripts/demo.ts', ...args], { cwd: projectPath(), encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(message);
    expect(result.stdout).toBe('');
  });

  test('a bad option is refused with the reason, before anything starts', () => {
    const result = spawnSync('npx', ['tsx', 'scripts/demo.ts', '--port', '80'], { cwd: projectPath(), encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("demo: error: --port must be a port from 1024 to 65533 (the slots use the next two), got '80'.");
  });
});
