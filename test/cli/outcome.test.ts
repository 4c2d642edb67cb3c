import { describe, expect, test } from 'vitest';
import { EXIT_CODES } from '../../lib/contract.js';
import { CLI_EXIT_CODES } from '../../cli/errors.js';
import { exitCodeOf, failureReason, formatHistory, formatStatus, isStatusLine, parseHistory, parseStatus, resultLine } from '../../cli/outcome.js';
import type { HistoryEntry, Status } from '../../lib/contract.js';

const CONTEXT = { deliveryTimeoutSeconds: 300 };
const INSTANCE = 'i-0123456789abcdef0';
const COMMAND = '5b6e8c60-1111-2222-3333-444455556666';

describe('exitCodeOf', () => {
  type Case = [report: { Status: string; StatusDetails?: string; ResponseCode: number }, code: number];
  test.each<Case>([
    [{ Status: 'Success', ResponseCode: EXIT_CODES.ok }, EXIT_CODES.ok],
    // The engine's own codes pass through: a script knows 5 means "not healthy".
    ...Object.values(EXIT_CODES)
      .filter((code) => code !== EXIT_CODES.ok)
      .map((code): Case => [{ Status: 'Failed', StatusDetails: 'Failed', ResponseCode: code }, code]),
    // Anything else the script exits with is unexpected.
    [{ Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 127 }, CLI_EXIT_CODES.unexpected],
    // SSM ended it without the script's status.
    [{ Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut', ResponseCode: -1 }, 10],
    [{ Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut', ResponseCode: -1 }, 10],
    [{ Status: 'Cancelled', StatusDetails: 'Cancelled', ResponseCode: -1 }, 10],
    [{ Status: 'Failed', StatusDetails: 'Undeliverable', ResponseCode: -1 }, 10],
    [{ Status: 'Failed', StatusDetails: 'InvalidPlatform', ResponseCode: -1 }, 10],
  ])('%j -> %i', (report, code) => {
    expect(exitCodeOf(report, CONTEXT)).toBe(code);
  });

  test('refuses an invocation that has not ended', () => {
    expect(() => exitCodeOf({ Status: 'InProgress' }, CONTEXT)).toThrow(/has not ended \(InProgress\)/);
  });

  test('the CLI-only codes do not collide with the engine codes', () => {
    // Every code the engine (and so the document) can exit with, from the contract.
    const engine: number[] = Object.values(EXIT_CODES);
    expect(engine).toContain(EXIT_CODES.rolledBack);
    expect(engine).not.toContain(CLI_EXIT_CODES.didNotFinish);
    expect(engine).not.toContain(CLI_EXIT_CODES.aws);
  });
});

describe('failureReason', () => {
  const unhealthy = {
    Status: 'Failed',
    StatusDetails: 'Failed',
    ResponseCode: 5,
    StandardOutputContent: 'bluegreen [  0.22s] start    started blue (v4) on 127.0.0.1:8081; waiting up to 3s for /actuator/health\n',
    StandardErrorContent:
      '2025-01-01T00:00:00Z bluegreen-document: deploying the jar with sha256 47d03b600e57 as version v4\n' +
      'bluegreen: error: blue did not answer HTTP 200 within 3s. Nginx was not touched: green (v2) keeps serving.\n',
  };

  test("a deploy's reason is the custom resource's, word for word", () => {
    const reason = failureReason({ command: 'deploy', report: unhealthy, commandId: COMMAND, instanceId: INSTANCE, version: 'v4', outputLogGroupName: 'Logs' }, CONTEXT);
    expect(reason).toMatch(/^Deploy of v4 to i-0123456789abcdef0 failed: the deploy script failed with exit status 5 \(the new release did not become healthy\)\./);
    expect(reason).toMatch(/Host: bluegreen: error: blue did not answer HTTP 200 within 3s\. Nginx was not touched: green \(v2\) keeps serving\./);
    expect(reason).toMatch(/Full output: CloudWatch log group Logs, streams 5b6e8c60-1111-2222-3333-444455556666\/i-0123456789abcdef0\/\*\.$/);
  });

  test('a rollback says it was a rollback', () => {
    const report = { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 7, StandardErrorContent: 'bluegreen: error: no standby to roll back to\n' };
    const reason = failureReason({ command: 'rollback', report, commandId: COMMAND, instanceId: INSTANCE }, CONTEXT);
    expect(reason).toMatch(/^Rollback on i-0123456789abcdef0 failed: the deploy script failed with exit status 7 \(there was nothing to switch to\)\. Host: bluegreen: error: no standby/);
  });
});

const STATUS: Status = {
  live: 'green',
  slots: {
    blue: { port: 8081, role: 'standby', version: 'v1', sha256: 'a'.repeat(64), release: '/var/lib/bluegreen/releases/v1-aaaaaaaaaaaa', running: true, healthy: true, pid: 10, bake: null },
    green: { port: 8082, role: 'live', version: 'v2', sha256: 'b'.repeat(64), release: '/var/lib/bluegreen/releases/v2-bbbbbbbbbbbb', running: true, healthy: true, pid: 11, bake: null },
  },
  lastOperation: { at: '2025-01-01T10:00:00Z', action: 'deploy', from: 'blue', to: 'green', version: 'v2', sha256: 'b'.repeat(64), result: 'ok', seconds: 1.2, appSeconds: 0.7, message: 'v2 is live on green' },
};

describe('status', () => {
  test('is read from the last status JSON line of the output', () => {
    const lines = ['bluegreen [  1.14s] done     v2 is live on green', JSON.stringify(STATUS)];
    expect(parseStatus(lines)).toEqual(STATUS);
    expect(isStatusLine(lines[1]!)).toBe(true);
    expect(isStatusLine(lines[0]!)).toBe(false);
    expect(parseStatus(['no json here'])).toBeUndefined();
  });

  test('reads as a table that says what is live, what rollback would do, and the last operation', () => {
    const text = formatStatus(STATUS, { stackName: 'Ec2BlueGreen', instanceId: INSTANCE, siteUrl: 'http://example.com/' }).join('\n');
    expect(text).toMatch(/^Ec2BlueGreen \(i-0123456789abcdef0\): v2 is live on green at http:\/\/example\.com\//);
    expect(text).toMatch(/\nSLOT +PORT +ROLE +VERSION +RUNNING +HEALTHY +RELEASE\n/);
    expect(text).toMatch(/\nblue +8081 +standby +v1 +yes +yes +\/var\/lib\/bluegreen\/releases\/v1-aaaaaaaaaaaa\n/);
    expect(text).toMatch(/\ngreen +8082 +live +v2 +yes +yes +/);
    expect(text).toMatch(/'ec2-bluegreen rollback' switches back to blue \(v1\), the warm standby\./);
    expect(text).toMatch(/last: 2025-01-01T10:00:00Z {2}deploy {2}v2 {2}blue->green {2}ok {2}1\.2s {2}v2 is live on green$/);
  });

  test('a host with nothing deployed says so', () => {
    const empty: Status = {
      live: null,
      slots: {
        blue: { port: 8081, role: 'idle', version: null, sha256: null, release: null, running: false, healthy: false, pid: null, bake: null },
        green: { port: 8082, role: 'idle', version: null, sha256: null, release: null, running: false, healthy: false, pid: null, bake: null },
      },
      lastOperation: null,
    };
    expect(formatStatus(empty, { stackName: 'S', instanceId: INSTANCE })[0]).toBe('S (i-0123456789abcdef0): nothing deployed yet');
  });

  test('the result line of a deploy names the live slot and the warm standby', () => {
    expect(resultLine(['bluegreen [  1.14s] done     v2 is live on green; blue (v1) is the warm standby', JSON.stringify(STATUS)])).toBe(
      'v2 is live on green; blue (v1) is the warm standby',
    );
    expect(resultLine(['nothing useful'])).toBeUndefined();
  });
});

describe('history', () => {
  const entries: HistoryEntry[] = [
    { at: '2025-01-01T09:00:00Z', action: 'deploy', from: null, to: 'blue', version: 'v1', sha256: 'a'.repeat(64), result: 'ok', seconds: 2.5, appSeconds: 1, message: 'v1 is live on blue' },
    STATUS.lastOperation!,
  ];

  test('is read from the JSON array the host prints, and shown oldest first, the last N with a limit', () => {
    expect(parseHistory([JSON.stringify(entries)])).toEqual(entries);
    expect(parseHistory(['[not json'])).toBeUndefined();
    const table = formatHistory(entries);
    expect(table[0]).toMatch(/^WHEN +ACTION +VERSION +FROM-TO +RESULT +TIME +MESSAGE$/);
    expect(table[1]).toMatch(/^2025-01-01T09:00:00Z deploy +v1 +-->blue +ok +2\.5s +v1 is live on blue$/);
    expect(formatHistory(entries, 1)).toHaveLength(2);
    expect(formatHistory([])).toEqual(['no deploys yet']);
  });
});
