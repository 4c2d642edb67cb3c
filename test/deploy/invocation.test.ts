import { describe, expect, test } from 'vitest';
import { EXIT_CODES } from '../../lib/contract.js';
import {
  classifyInvocation,
  deployResult,
  describeExitStatus,
  failureMessage,
  MAX_FAILURE_MESSAGE_CHARS,
  outputTail,
  type InvocationReport,
} from '../../lib/deploy/invocation.js';

const CONTEXT = { deliveryTimeoutSeconds: 300, executionTimeoutSeconds: 2199 };

describe('classifyInvocation', () => {
  test.each(['Pending', 'InProgress', 'Delayed', 'Cancelling'])('%s: keeps waiting', (status) => {
    expect(classifyInvocation({ Status: status, StatusDetails: status }, CONTEXT)).toEqual({ kind: 'running', status });
  });

  test('no status yet: keeps waiting', () => {
    expect(classifyInvocation({}, CONTEXT)).toEqual({ kind: 'running', status: 'Pending' });
  });

  test('a status this code does not know: keeps waiting (the provider timeout still bounds it)', () => {
    expect(classifyInvocation({ Status: 'Paused' }, CONTEXT).kind).toBe('running');
  });

  test('Success: done', () => {
    expect(classifyInvocation({ Status: 'Success', StatusDetails: 'Success', ResponseCode: 0 }, CONTEXT)).toEqual({ kind: 'succeeded' });
  });

  const failures: Array<[string, InvocationReport, RegExp]> = [
    ['Failed with the engine exit code 5', { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 5 },
      /^the deploy script failed with exit status 5 \(the new release did not become healthy\)$/],
    ['Failed with the engine exit code 3', { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 3 },
      /exit status 3 \(the artifact was rejected/],
    ['Failed with an exit code the engine never uses', { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 127 },
      /^the deploy script failed with exit status 127$/],
    ['Failed before the script ran', { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: -1 }, /^the command failed \(Failed\)$/],
    ['Failed: Undeliverable', { Status: 'Failed', StatusDetails: 'Undeliverable', ResponseCode: -1 },
      /^Failed \(Undeliverable\): .*stopped, terminated, or no longer managed.*nothing ran on the host$/],
    ['Failed: Terminated', { Status: 'Failed', StatusDetails: 'Terminated' }, /^Failed \(Terminated\): the command was stopped/],
    ['Failed: InvalidPlatform', { Status: 'Failed', StatusDetails: 'InvalidPlatform' }, /^Failed \(InvalidPlatform\): the instance is not Linux/],
    ['Failed: NoInstancesInTag', { Status: 'Failed', StatusDetails: 'NoInstancesInTag' }, /^Failed \(NoInstancesInTag\): no instance matched/],
    ['Failed: AccessDenied', { Status: 'Failed', StatusDetails: 'AccessDenied' }, /^Failed \(AccessDenied\): .*denied the command/],
    ['TimedOut: DeliveryTimedOut', { Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut', ResponseCode: -1 },
      /^TimedOut \(DeliveryTimedOut\): SSM Agent did not pick the command up within the delivery timeout \(300s\), so nothing ran/],
    ['TimedOut: ExecutionTimedOut', { Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut' },
      /^TimedOut \(ExecutionTimedOut\): the deploy ran longer than the document's execution timeout \(2199s\) and SSM stopped it/],
    ['TimedOut: spelled with blanks, as the console shows it', { Status: 'TimedOut', StatusDetails: 'Execution Timed Out' },
      /execution timeout \(2199s\)/],
    ['Cancelled', { Status: 'Cancelled', StatusDetails: 'Cancelled' }, /^Cancelled \(Cancelled\): someone cancelled the command/],
    ['Cancelled without details', { Status: 'Cancelled' }, /^Cancelled \(Cancelled\): someone cancelled/],
    ['TimedOut with details this code does not know', { Status: 'TimedOut', StatusDetails: 'SomethingNew' },
      /^TimedOut \(SomethingNew\): SSM gave no further detail$/],
  ];

  test.each(failures)('%s: fails with a summary', (_name, report, summary) => {
    const outcome = classifyInvocation(report, CONTEXT);
    expect(outcome.kind).toBe('failed');
    expect(outcome.kind === 'failed' && outcome.summary).toMatch(summary);
  });

  test('without a known execution timeout the sentence still reads', () => {
    const outcome = classifyInvocation({ Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut' }, { deliveryTimeoutSeconds: 300 });
    expect(outcome.kind === 'failed' && outcome.summary).toMatch(/the document's execution timeout and SSM stopped it/);
  });
});

describe('describeExitStatus', () => {
  test('names every engine exit code', () => {
    const failures = Object.values(EXIT_CODES).filter((code) => code !== EXIT_CODES.ok);
    expect(failures.map(describeExitStatus)).toEqual([
      'exit status 1 (an unexpected error on the host)',
      'exit status 2 (a bad parameter or host configuration)',
      'exit status 3 (the artifact was rejected: missing, not a runnable jar, or not the expected sha256)',
      'exit status 4 (another deploy, switch or rollback held the lock)',
      'exit status 5 (the new release did not become healthy)',
      'exit status 6 (Nginx rejected the switch)',
      'exit status 7 (there was nothing to switch to)',
      'exit status 8 (the new release misbehaved after the switch and was rolled back to the previous one)',
    ]);
  });

  test('gives only the number for a status the engine never exits with', () => {
    expect(describeExitStatus(127)).toBe('exit status 127');
  });
});

describe('outputTail', () => {
  test('keeps the last lines that fit, joined on one line', () => {
    expect(outputTail('one\ntwo\nthree\nfour\n', 15)).toBe('three | four');
  });

  test('drops blank lines, colour codes and carriage returns', () => {
    expect(outputTail('\x1b[31mred\x1b[0m\r\n\n  \nplain\n', 100)).toBe('red | plain');
  });

  test('keeps the end of a last line longer than the budget', () => {
    expect(outputTail(`start ${'x'.repeat(50)} end`, 10)).toBe('…xxxxx end');
  });

  test('empty or missing output gives an empty tail', () => {
    expect(outputTail(undefined, 100)).toBe('');
    expect(outputTail('\n\n', 100)).toBe('');
  });
});

describe('failureMessage', () => {
  const engineStderr = [
    'bluegreen: last lines of /var/log/bluegreen/green.log:',
    '  Started SampleApp in 0.4 seconds',
    'bluegreen: error: green (v3) did not answer HTTP 200 with "status":"UP" on /actuator/health within 3s. Nginx was not touched: blue (v2) keeps serving. The release stays in /var/lib/bluegreen/releases/x and its log in /var/log/bluegreen/green.log; fix the app and deploy again.',
    '2026-11-25T10:00:00Z bluegreen-document: bluegreen deploy failed with exit status 5',
  ].join('\n');
  const failure = {
    summary: 'the deploy script failed with exit status 5 (the new release did not become healthy)',
    report: {
      Status: 'Failed',
      ResponseCode: 5,
      StandardOutputContent: 'bluegreen [  0.1s] lock     acquired\nbluegreen [  0.4s] start    started green (v3)\n',
      StandardErrorContent: engineStderr,
    },
    commandId: 'c0ffee00-1111-2222-3333-444455556666',
    instanceId: 'i-0123456789abcdef0',
    version: 'v3',
  };

  test("leads with what failed, quotes the host's error lines (what keeps serving), progress, and where the output is", () => {
    expect(failureMessage(failure)).toBe(
      'Deploy of v3 to i-0123456789abcdef0 failed: the deploy script failed with exit status 5 (the new release did not become healthy). ' +
        'Host: bluegreen: error: green (v3) did not answer HTTP 200 with "status":"UP" on /actuator/health within 3s. Nginx was not touched: ' +
        'blue (v2) keeps serving. The release stays in /var/lib/bluegreen/releases/x and its log in /var/log/bluegreen/green.log; fix the app and deploy again. ' +
        'Last progress: bluegreen [  0.1s] lock     acquired | bluegreen [  0.4s] start    started green (v3) ' +
        'Full output: aws ssm get-command-invocation --command-id c0ffee00-1111-2222-3333-444455556666 --instance-id i-0123456789abcdef0.',
    );
  });

  test('points at the log group when output goes to CloudWatch', () => {
    expect(failureMessage({ ...failure, outputLogGroupName: '/bluegreen/deploys' })).toMatch(
      /Full output: CloudWatch log group \/bluegreen\/deploys, streams c0ffee00-1111-2222-3333-444455556666\/i-0123456789abcdef0\/\*\.$/,
    );
  });

  test('without error lines, quotes the end of stderr', () => {
    const message = failureMessage({ ...failure, report: { ...failure.report, StandardErrorContent: 'sh: 1: bluegreen: not found\n' } });
    expect(message).toMatch(/Host: sh: 1: bluegreen: not found Last progress/);
  });

  test('stays within the limit however long the output', () => {
    const flood = Array.from({ length: 2000 }, (_, i) => `bluegreen: error: line ${i} ${'y'.repeat(120)}`).join('\n');
    const message = failureMessage({ ...failure, report: { ...failure.report, StandardErrorContent: flood, StandardOutputContent: flood } });
    expect(message.length).toBeLessThanOrEqual(MAX_FAILURE_MESSAGE_CHARS);
    expect(message).toMatch(/^Deploy of v3 to i-0123456789abcdef0 failed: /);
    expect(message).toMatch(/line 1999/);
    expect(message).toMatch(/Full output: aws ssm get-command-invocation/);
  });

  test('a failure with no output at all still reads', () => {
    expect(failureMessage({ ...failure, version: undefined, report: { Status: 'TimedOut' } })).toBe(
      'Deploy of the artifact to i-0123456789abcdef0 failed: the deploy script failed with exit status 5 (the new release did not become healthy). ' +
        'Full output: aws ssm get-command-invocation --command-id c0ffee00-1111-2222-3333-444455556666 --instance-id i-0123456789abcdef0.',
    );
  });
});

describe('deployResult', () => {
  test('reads the last status --json line when the document prints one', () => {
    const stdout = [
      'bluegreen [  4.1s] done     v2 is live on green; blue (v1) is the warm standby',
      '{"live":"green","slots":{"blue":{"port":8081,"role":"standby","version":"v1"},"green":{"port":8082,"role":"live","version":"v2"}},"lastOperation":null}',
    ].join('\n');
    expect(deployResult(stdout)).toEqual({ liveSlot: 'green', version: 'v2' });
  });

  test.each([
    ['a first deploy', 'bluegreen [  3.0s] done     v1 is live on blue (first deploy) (3.0s)', { liveSlot: 'blue', version: 'v1' }],
    ['a deploy', 'bluegreen [  4.1s] done     v2 is live on green; blue (v1) is the warm standby (4.1s)', { liveSlot: 'green', version: 'v2' }],
    ['a no-op', 'bluegreen [  0.2s] done     v2 is already live on green; nothing to do (0.2s)', { liveSlot: 'green', version: 'v2' }],
    ['a switch back to the standby', 'bluegreen [  0.9s] done     v1 is live on blue (was the warm standby); green (v2) is the standby (0.9s)',
      { liveSlot: 'blue', version: 'v1' }],
  ])("otherwise reads the engine's closing line: %s", (_name, line, expected) => {
    expect(deployResult(`bluegreen [  0.0s] lock     acquired\n${line}\n`)).toEqual(expected);
  });

  test('a JSON line that is not the status is skipped', () => {
    expect(deployResult('{"not":"status"}\nbluegreen [  1s] done     v9 is live on blue (first deploy)\n{broken')).toEqual({ liveSlot: 'blue', version: 'v9' });
  });

  test('output that names no slot gives nothing', () => {
    expect(deployResult('')).toEqual({});
    expect(deployResult(undefined)).toEqual({});
  });
});
