/**
 * The engine keeps its own defaults, since the host has no TypeScript. Where the stack states
 * the same default (lib/contract.ts), the two must agree: a host whose engine waits 120 s while
 * the stack's document says another number would time out where nobody expects it.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { DEFAULT_HEALTH_TIMEOUT_SECONDS } from '../../lib/contract.js';
import { projectPath } from '../../lib/paths.js';

function engineDefault(key: string): string {
  const commonSh = projectPath('assets', 'instance', 'lib', 'common.sh');
  const result = spawnSync('bash', ['-c', `source "$1"; config_defaults | sed -n "s/^${key}=//p"`, 'bash', commonSh], {
    env: { PATH: process.env.PATH },
    encoding: 'utf8',
  });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.trim();
}

describe("the engine's defaults agree with the contract", () => {
  test('BLUEGREEN_HEALTH_TIMEOUT is DEFAULT_HEALTH_TIMEOUT_SECONDS', () => {
    expect(engineDefault('BLUEGREEN_HEALTH_TIMEOUT')).toBe(String(DEFAULT_HEALTH_TIMEOUT_SECONDS));
  });
});
