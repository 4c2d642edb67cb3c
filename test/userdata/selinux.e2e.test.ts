/**
 * With SELinux enforcing, Nginx (httpd_t) may connect to the app slots' ports only with the
 * httpd_can_network_connect boolean on; the first boot's `bluegreen init` (start_nginx) turns it
 * on. Real `bluegreen init` on a host laid out in a scratch directory, with stand-ins for
 * getenforce, getsebool and setsebool on PATH that record their calls.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { EXIT_CODES } from '../../lib/contract.js';
import { projectPath } from '../../lib/paths.js';
import { hostLayoutLines } from '../support/host-conf.js';

const BLUEGREEN = projectPath('assets', 'instance', 'bin', 'bluegreen');
const scratch = mkdtempSync(join(tmpdir(), 'bluegreen-selinux-'));

interface Policy {
  /** What getenforce prints; undefined: no getenforce on PATH (SELinux tools not installed). */
  readonly mode?: 'Enforcing' | 'Permissive' | 'Disabled';
  readonly boolean?: 'on' | 'off';
  readonly setseboolFails?: boolean;
}

function initWith(name: string, policy: Policy) {
  const home = join(scratch, name);
  const bin = join(home, 'bin');
  mkdirSync(bin, { recursive: true });
  const calls = join(home, 'calls');
  const standIn = (tool: string, body: string) =>
    writeFileSync(join(bin, tool), `#!/bin/bash\nprintf '%s\\n' "${tool} $*" >> ${JSON.stringify(calls)}\n${body}\n`, { mode: 0o755 });
  if (policy.mode !== undefined) {
    standIn('getenforce', `echo ${policy.mode}`);
    standIn('getsebool', `echo "$1 --> ${policy.boolean ?? 'off'}"`);
    standIn('setsebool', policy.setseboolFails ? "echo 'Could not change policy booleans' >&2; exit 1" : 'exit 0');
  }
  const conf = join(home, 'bluegreen.conf');
  writeFileSync(
    conf,
    [
      'BLUEGREEN_RUNNER=process',
      ...hostLayoutLines(home),
      '',
    ].join('\n'),
  );
  const result = spawnSync(BLUEGREEN, ['init'], { env: { ...process.env, BLUEGREEN_CONF: conf, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
  const recorded = existsSync(calls) ? readFileSync(calls, 'utf8').split('\n').filter(Boolean) : [];
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, calls: recorded };
}

describe('bluegreen init under SELinux', () => {
  test('enforcing, boolean off: turns httpd_can_network_connect on persistently, and says so', () => {
    const r = initWith('enforcing', { mode: 'Enforcing', boolean: 'off' });
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
    expect(r.calls).toEqual(['getenforce ', 'getsebool httpd_can_network_connect', 'setsebool -P httpd_can_network_connect 1']);
    expect(r.stdout).toContain('SELinux is enforcing: turned httpd_can_network_connect on, so Nginx may connect to the app slots');
  });

  test('permissive: turns it on too, so that switching to enforcing later breaks nothing', () => {
    const r = initWith('permissive', { mode: 'Permissive', boolean: 'off' });
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
    expect(r.calls.at(-1)).toBe('setsebool -P httpd_can_network_connect 1');
  });

  test('already on: asks, changes nothing (setsebool -P rebuilds the policy, which takes seconds)', () => {
    const r = initWith('already-on', { mode: 'Enforcing', boolean: 'on' });
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
    expect(r.calls).toEqual(['getenforce ', 'getsebool httpd_can_network_connect']);
  });

  test('disabled, or no SELinux tools: nothing to do', () => {
    expect(initWith('disabled', { mode: 'Disabled' }).calls).toEqual(['getenforce ']);
    const none = initWith('no-tools', {});
    expect(none.code, none.stderr).toBe(EXIT_CODES.ok);
    expect(none.calls).toEqual([]);
  });

  test('enforcing and setsebool fails: init fails, saying Nginx could not reach the app and what to do', () => {
    const r = initWith('enforcing-fails', { mode: 'Enforcing', boolean: 'off', setseboolFails: true });
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stderr).toContain("SELinux is enforcing and 'setsebool -P httpd_can_network_connect 1' failed, so Nginx could not reach the app on 127.0.0.1:8081/8082");
    expect(r.stderr).toContain("then run 'bluegreen init' again");
  });

  test('permissive and setsebool fails: a warning, and init goes on (Nginx works while permissive)', () => {
    const r = initWith('permissive-fails', { mode: 'Permissive', boolean: 'off', setseboolFails: true });
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
    expect(r.stderr).toContain('SELinux is permissive and');
  });
});
