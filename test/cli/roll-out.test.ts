/**
 * followRollOut against a mocked SSM client: a two-host roll-out at MaxConcurrency 1 whose state
 * advances one step per poll, as ListCommands and ListCommandInvocations (with plugin times)
 * report it. No log group: each host's output arrives from GetCommandInvocation when it ends.
 */
import { GetCommandInvocationCommand, ListCommandInvocationsCommand, ListCommandsCommand, SSMClient, type CommandInvocation } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, expect, test } from 'vitest';
import { followRollOut } from '../../cli/roll-out.js';

const ssm = mockClient(SSMClient);
afterEach(() => ssm.reset());
// Unit files share workers (vitest.config.ts): a mock left in place would answer another file's real client.
afterAll(() => ssm.restore());

const COMMAND_ID = 'cmd-1';
const [FIRST, SECOND] = ['i-0aaaaaaaaaaaaaaa1', 'i-0aaaaaaaaaaaaaaa2'];
const at = (seconds: number) => new Date(Date.UTC(2026, 10, 25, 10, 0, seconds));

function host(instanceId: string, status: string, started?: number, ended?: number): CommandInvocation {
  return {
    InstanceId: instanceId,
    Status: status as CommandInvocation['Status'],
    StatusDetails: status,
    CommandPlugins: [{ Name: 'bluegreen', ...(started === undefined ? {} : { ResponseStartDateTime: at(started) }), ...(ended === undefined ? {} : { ResponseFinishDateTime: at(ended) }) }],
  };
}

/** What SSM reports at each poll. In one poll the first host ends and the second starts. */
const TIMELINE: Array<{ command: string; hosts: CommandInvocation[] }> = [
  { command: 'Pending', hosts: [] },
  { command: 'InProgress', hosts: [host(FIRST, 'InProgress', 1), host(SECOND, 'Pending')] },
  { command: 'InProgress', hosts: [host(FIRST, 'Success', 1, 4), host(SECOND, 'InProgress', 5)] },
  { command: 'Failed', hosts: [host(FIRST, 'Success', 1, 4), host(SECOND, 'Failed', 5, 7)] },
];

test('each host starts, prints its output and ends, in the order the hosts ran; the roll-out fails on the second', async () => {
  let tick = 0;
  ssm.on(ListCommandsCommand).callsFake(() => ({ Commands: [{ CommandId: COMMAND_ID, Status: TIMELINE[tick]!.command, TargetCount: TIMELINE[tick]!.hosts.length }] }));
  ssm.on(ListCommandInvocationsCommand).callsFake(() => ({ CommandInvocations: TIMELINE[tick]!.hosts }));
  ssm.on(GetCommandInvocationCommand, { InstanceId: FIRST }).resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'switched\n' });
  ssm.on(GetCommandInvocationCommand, { InstanceId: SECOND }).resolves({
    Status: 'Failed',
    StatusDetails: 'Failed',
    ResponseCode: 5,
    StandardOutputContent: 'started green\n',
    StandardErrorContent: 'bluegreen: error: not healthy\n',
  });
  const printed: string[] = [];
  const followed = await followRollOut(
    {
      ssm: new SSMClient({ region: 'us-east-1' }),
      now: () => at(tick).getTime(),
      sleep: async () => {
        tick += 1;
      },
      pollMs: 1000,
      onProgress: (line) => printed.push(line),
      onHostStdout: (instanceId, line) => printed.push(`${instanceId} | ${line}`),
      onHostStderr: (instanceId, line) => printed.push(`${instanceId} ! ${line}`),
      onNote: (text) => printed.push(`note: ${text}`),
    },
    { commandId: COMMAND_ID, context: { deliveryTimeoutSeconds: 600 } },
  );

  expect(printed).toEqual([
    `${FIRST}: started (host 1 of 2)`,
    `${FIRST} | switched`,
    `${FIRST}: Success in 3.0s (1 of 2 done)`,
    `${SECOND}: started (host 2 of 2)`,
    `${SECOND} | started green`,
    `${SECOND} ! bluegreen: error: not healthy`,
    `${SECOND}: Failed after 2.0s: the deploy script failed with exit status 5 (the new release did not become healthy) (2 of 2 done)`,
  ]);
  expect(followed.outcome).toMatchObject({ kind: 'failed', succeeded: [FIRST], untouched: [] });
  expect(followed.hosts.map((entry) => [entry.instanceId, entry.ran, entry.report.ResponseCode])).toEqual([
    [FIRST, true, 0],
    [SECOND, true, 5],
  ]);
  // The per-host details are read once per host, when it ends.
  expect(ssm.commandCalls(GetCommandInvocationCommand)).toHaveLength(2);
  expect(ssm.commandCalls(ListCommandInvocationsCommand)[0]!.args[0].input).toMatchObject({ CommandId: COMMAND_ID, Details: true });
});

test('a host the roll-out never reached is reported as not run, without asking for its output', async () => {
  ssm.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Failed', TargetCount: 2 }] });
  ssm.on(ListCommandInvocationsCommand).resolves({
    CommandInvocations: [host(FIRST, 'Failed', 1, 2), { ...host(SECOND, 'Cancelled'), StatusDetails: 'Terminated' }],
  });
  ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 3 });
  const printed: string[] = [];
  const followed = await followRollOut(
    { ssm: new SSMClient({ region: 'us-east-1' }), now: Date.now, sleep: async () => {}, pollMs: 0, onProgress: (line) => printed.push(line), onHostStdout: () => {}, onHostStderr: () => {}, onNote: () => {} },
    { commandId: COMMAND_ID, context: { deliveryTimeoutSeconds: 600 } },
  );
  expect(printed.at(-1)).toBe(`${SECOND}: not run, Cancelled (Terminated): the roll-out stopped at the first failure; this host is unchanged`);
  expect(followed.outcome).toMatchObject({ kind: 'failed', untouched: [SECOND] });
  expect(ssm.commandCalls(GetCommandInvocationCommand).map((call) => call.args[0].input.InstanceId)).toEqual([FIRST]);
});

test('every page of the hosts is read: a host that failed on the second page fails the roll-out', async () => {
  const asked: Array<string | undefined> = [];
  ssm.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Failed', TargetCount: 2 }] });
  ssm.on(ListCommandInvocationsCommand).callsFake((input: { NextToken?: string }) => {
    asked.push(input.NextToken);
    return input.NextToken === undefined
      ? { CommandInvocations: [host(FIRST, 'Success', 1, 2)], NextToken: 'page-2' }
      : { CommandInvocations: [host(SECOND, 'Failed', 3, 4)] };
  });
  ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 5 });
  const followed = await followRollOut(
    { ssm: new SSMClient({ region: 'us-east-1' }), now: Date.now, sleep: async () => {}, pollMs: 0, onProgress: () => {}, onHostStdout: () => {}, onHostStderr: () => {}, onNote: () => {} },
    { commandId: COMMAND_ID, context: { deliveryTimeoutSeconds: 600 } },
  );
  expect(asked).toEqual([undefined, 'page-2']);
  expect(followed.hosts.map((entry) => entry.instanceId)).toEqual([FIRST, SECOND]);
  expect(followed.outcome).toMatchObject({ kind: 'failed', succeeded: [FIRST] });
});
