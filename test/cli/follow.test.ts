/**
 * followCommand against mocked SSM and CloudWatch Logs clients: a small simulated host writes
 * one line per poll; the mocks answer as the services do (GetCommandInvocation's output only
 * once the invocation has ended, log events as they are written).
 */
import { CloudWatchLogsClient, DescribeLogStreamsCommand, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetCommandInvocationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import { CLI_EXIT_CODES } from '../../cli/errors.js';
import { followCommand, type FollowDependencies } from '../../cli/follow.js';

const COMMAND_ID = '5b6e8c60-1111-2222-3333-444455556666';
const INSTANCE_ID = 'i-0123456789abcdef0';
const LOG_GROUP = 'Ec2BlueGreen-Output';
const PHASES = ['bluegreen [  0.03s] lock     acquired', 'bluegreen [  0.08s] check    ok', 'bluegreen [  0.22s] start    started green', 'bluegreen [  1.14s] done     v2 is live on green'];

const ssm = mockClient(SSMClient);
const logs = mockClient(CloudWatchLogsClient);
// Unit files share workers (vitest.config.ts): a mock left in place would answer another file's real client.
afterAll(() => {
  ssm.restore();
  logs.restore();
});

/** The host: after `tick` polls, the first `tick` phase lines are written; it ends after the last. */
let tick: number;
let clock: number;
let printed: Array<{ stream: string; line: string; atTick: number }>;
let notes: string[];

function written(): string[] {
  return PHASES.slice(0, Math.min(tick, PHASES.length));
}

function ended(): boolean {
  return tick > PHASES.length;
}

function dependencies(withLogs = true): FollowDependencies {
  return {
    ssm: new SSMClient({ region: 'us-east-1' }),
    ...(withLogs ? { logs: new CloudWatchLogsClient({ region: 'us-east-1' }) } : {}),
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
      tick++;
    },
    pollMs: 1000,
    onStdout: (line) => printed.push({ stream: 'stdout', line, atTick: tick }),
    onStderr: (line) => printed.push({ stream: 'stderr', line, atTick: tick }),
    onNote: (text) => notes.push(text),
  };
}

const SENT = { commandId: COMMAND_ID, instanceId: INSTANCE_ID, outputLogGroupName: LOG_GROUP, context: { deliveryTimeoutSeconds: 300 } };

beforeEach(() => {
  tick = 0;
  clock = 1_000_000;
  printed = [];
  notes = [];
  ssm.on(GetCommandInvocationCommand).callsFake(() => {
    if (tick === 0) throw Object.assign(new Error(''), { name: 'InvocationDoesNotExist' });
    return ended()
      ? { Status: 'Success', StatusDetails: 'Success', ResponseCode: 0, StandardOutputContent: `${PHASES.join('\n')}\n`, StandardErrorContent: 'document: deploying\n' }
      : { Status: 'InProgress', StatusDetails: 'InProgress', ResponseCode: -1, StandardOutputContent: '', StandardErrorContent: '' };
  });
  logs.on(DescribeLogStreamsCommand).callsFake(() => ({
    logStreams: tick === 0 ? [] : [{ logStreamName: `${COMMAND_ID}/${INSTANCE_ID}/bluegreen/stderr` }, { logStreamName: `${COMMAND_ID}/${INSTANCE_ID}/bluegreen/stdout` }],
  }));
  logs.on(GetLogEventsCommand).callsFake((input: { logStreamName: string; nextToken?: string }) => {
    const lines = input.logStreamName.endsWith('/stdout') ? written() : ['document: deploying'];
    const from = Number(/^f\/(\d+)$/.exec(input.nextToken ?? 'f/0')![1]);
    return { events: lines.slice(from).map((message) => ({ message, timestamp: clock })), nextForwardToken: `f/${lines.length}` };
  });
});

afterEach(() => {
  ssm.reset();
  logs.reset();
});

describe('followCommand', () => {
  test('prints each stdout line from CloudWatch Logs while the command runs, each once, and returns the ended invocation', async () => {
    const result = await followCommand(dependencies(), SENT);

    const stdout = printed.filter((entry) => entry.stream === 'stdout');
    expect(stdout.map((entry) => entry.line)).toEqual(PHASES);
    // Line N was printed at poll N, long before the invocation ended at poll 5.
    expect(stdout.map((entry) => entry.atTick)).toEqual([1, 2, 3, 4]);
    expect(printed.filter((entry) => entry.stream === 'stderr').map((entry) => entry.line)).toEqual(['document: deploying']);
    expect(result.report.Status).toBe('Success');
    expect(result.stdout).toEqual(PHASES);
    expect(notes).toEqual([]);
  });

  test('without access to the log group it says so once, and the output arrives when the command ends', async () => {
    logs.on(DescribeLogStreamsCommand).rejects(Object.assign(new Error('not authorized to perform: logs:DescribeLogStreams'), { name: 'AccessDeniedException' }));
    const result = await followCommand(dependencies(), SENT);

    expect(notes).toEqual([expect.stringMatching(/^cannot read the live output from CloudWatch Logs group Ec2BlueGreen-Output \(AccessDeniedException: .*\); the output follows when the command ends/)]);
    expect(printed.filter((entry) => entry.stream === 'stdout').map((entry) => entry.line)).toEqual(PHASES);
    expect(new Set(printed.map((entry) => entry.atTick))).toEqual(new Set([PHASES.length + 1]));
    expect(result.stderr).toEqual(['document: deploying']);
  });

  test('without a log group, only GetCommandInvocation is asked', async () => {
    await followCommand(dependencies(false), SENT);
    expect(logs.calls()).toHaveLength(0);
    expect(printed.filter((entry) => entry.stream === 'stdout').map((entry) => entry.line)).toEqual(PHASES);
  });

  test('throttling is waited out, not reported', async () => {
    ssm.on(GetCommandInvocationCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }))
      .callsFake(() => (ended() ? { Status: 'Success', ResponseCode: 0, StandardOutputContent: `${PHASES.join('\n')}\n` } : { Status: 'InProgress' }));
    const result = await followCommand(dependencies(), SENT);
    expect(result.report.Status).toBe('Success');
  });

  test('a failed command is returned with its output; the caller explains it', async () => {
    ssm.on(GetCommandInvocationCommand).callsFake(() =>
      tick >= 2
        ? { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 5, StandardOutputContent: `${PHASES[0]}\n`, StandardErrorContent: 'bluegreen: error: not healthy\n' }
        : { Status: 'InProgress' },
    );
    const result = await followCommand(dependencies(), SENT);
    expect(result.report).toMatchObject({ Status: 'Failed', ResponseCode: 5 });
  });

  test('a command SSM never shows fails after the delivery timeout and a minute', async () => {
    ssm.on(GetCommandInvocationCommand).rejects(Object.assign(new Error(''), { name: 'InvocationDoesNotExist' }));
    const error = await followCommand(dependencies(), SENT).catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: CLI_EXIT_CODES.didNotFinish, message: expect.stringMatching(/shows no invocation of command .* so it never started; the host is unchanged/) });
    expect(clock - 1_000_000).toBeGreaterThan(360_000);
  });

  test('a quiet command gets a note every 30 seconds', async () => {
    ssm.on(GetCommandInvocationCommand).callsFake(() => (tick >= 65 ? { Status: 'Success', ResponseCode: 0 } : { Status: 'Pending' }));
    logs.on(DescribeLogStreamsCommand).resolves({ logStreams: [] });
    await followCommand(dependencies(), SENT);
    expect(notes).toEqual([
      'still Pending after 30s (waiting for SSM Agent on the instance to pick the command up)',
      'still Pending after 60s (waiting for SSM Agent on the instance to pick the command up)',
    ]);
  });
});
