/**
 * Fleet mode of the deploy custom resource: the release record, what a roll-out's state means,
 * and the handlers against a mocked SDK (the real command objects with their real input; the
 * clock and sleep are fakes). The roll-out against real hosts is test/e2e/fleet.e2e.test.ts.
 */
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  GetParameterCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  PutParameterCommand,
  SendCommandCommand,
  SSMClient,
  type Command,
  type CommandInvocationStatus,
  type CommandStatus,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, test } from 'vitest';
import {
  classifyRollOut,
  fleetFailureMessage,
  MAX_FLEET_FAILURE_CHARS,
  nextFleetRelease,
  parseFleetRelease,
  renderFleetRelease,
  rolledBackFleetRelease,
} from '../../lambda/deploy/fleet.js';
import { createHandlers, type CustomResourceEvent, type IsCompleteEvent } from '../../lambda/deploy/handlers.js';
import { jsonLogger } from '../../lambda/deploy/log.js';
import { readDeploymentRequest } from '../../lambda/deploy/send-command.js';
import { DEPLOYMENT_ATTRIBUTES as A, DEPLOYMENT_PROPERTIES as P, FLEET_RELEASE_UNSET, FLEET_TAG_KEY } from '../../lib/contract.js';

const ssmMock = mockClient(SSMClient);
afterAll(() => ssmMock.restore());

const COMMAND_ID = 'c0ffee00-1111-2222-3333-444455556666';
const CATCH_UP_ID = 'beef0000-1111-2222-3333-444455556666';
const SHA = 'cd'.repeat(32);
const TAG_VALUE = 'Shop/Ec2BlueGreen/Fleet';
const RELEASE_PARAMETER = 'Ec2BlueGreen-FleetRelease-AbC';
const HOSTS = ['i-0aaaaaaaaaaaaaaa1', 'i-0aaaaaaaaaaaaaaa2', 'i-0aaaaaaaaaaaaaaa3'];

const PROPERTIES = {
  ServiceToken: 'arn:aws:lambda:us-east-1:111111111111:function:framework-onEvent',
  [P.targetTagKey]: FLEET_TAG_KEY,
  [P.targetTagValue]: TAG_VALUE,
  [P.maxConcurrency]: '1',
  [P.releaseParameterName]: RELEASE_PARAMETER,
  [P.documentName]: 'Ec2BlueGreen-DeployDocument-AbCdEf123456',
  [P.artifactUri]: 's3://assets-bucket/1f3c.jar',
  [P.sha256]: SHA,
  [P.version]: 'v3',
};

let clock: number;

function handlers() {
  return createHandlers({
    ssm: new SSMClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
    settings: { onlineWaitSeconds: 300, onlinePollSeconds: 5, deliveryTimeoutSeconds: 300, executionTimeoutSeconds: 2199 },
    log: jsonLogger({}, () => undefined),
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
    },
    random: () => 0,
  });
}

function event(requestType: CustomResourceEvent['RequestType']): CustomResourceEvent {
  return {
    RequestType: requestType,
    LogicalResourceId: 'Deployment',
    RequestId: 'req-1',
    StackId: 'arn:aws:cloudformation:us-east-1:111111111111:stack/Shop/uuid',
    ResourceType: 'Custom::BlueGreenDeployment',
    ResourceProperties: PROPERTIES,
    PhysicalResourceId: 'bluegreen-deployment/Deployment',
  };
}

const fleet = { tagKey: FLEET_TAG_KEY, tagValue: TAG_VALUE, maxConcurrency: '1', releaseParameterName: RELEASE_PARAMETER };

function waiting(): IsCompleteEvent {
  return {
    ...event('Update'),
    PhysicalResourceId: 'bluegreen-deployment/Deployment',
    BlueGreenCommand: { commandId: COMMAND_ID, fleet, sentAt: clock, version: 'v3' },
  };
}

function hostsOnline(ids: readonly string[] = HOSTS) {
  return { InstanceInformationList: ids.map((id) => ({ InstanceId: id, PingStatus: 'Online' as const })) };
}

/** ListCommandInvocations' answer: no response codes (those are per plugin); a host past the error limit is Cancelled/Terminated. */
function invocations(statuses: ReadonlyArray<[string, CommandInvocationStatus, number?]>) {
  return {
    CommandInvocations: statuses.map(([instanceId, status]) => ({
      CommandId: COMMAND_ID,
      InstanceId: instanceId,
      Status: status,
      StatusDetails: status === 'Cancelled' ? 'Terminated' : status,
    })),
  };
}

beforeEach(() => {
  ssmMock.reset();
  clock = Date.parse('2026-11-25T10:00:00Z');
});

describe('the release record', () => {
  const release = {
    artifactUri: 's3://bucket/cli-releases/abc.jar',
    sha256: SHA,
    version: 'v3',
    commandId: COMMAND_ID,
    recordedAt: '2026-11-25T10:00:00.000Z',
    recordedBy: 'cloudformation',
    previousArtifactUri: 's3://bucket/cli-releases/old.jar',
    previousSha256: 'ef'.repeat(32),
    previousVersion: 'v2',
  };

  test('renders KEY=VALUE lines and reads them back', () => {
    const text = renderFleetRelease(release);
    expect(text.split('\n')).toEqual([
      'artifactUri=s3://bucket/cli-releases/abc.jar',
      `sha256=${SHA}`,
      'version=v3',
      `commandId=${COMMAND_ID}`,
      'recordedAt=2026-11-25T10:00:00.000Z',
      'recordedBy=cloudformation',
      'previousArtifactUri=s3://bucket/cli-releases/old.jar',
      `previousSha256=${'ef'.repeat(32)}`,
      'previousVersion=v2',
    ]);
    expect(parseFleetRelease(text)).toEqual(release);
  });

  test('a new release keeps the recorded one as its previous; the same release again keeps the record\'s previous', () => {
    const next = { artifactUri: 's3://b/new.jar', sha256: 'aa'.repeat(32), version: 'v4', commandId: 'c2', recordedAt: 't2', recordedBy: 'cli' };
    expect(nextFleetRelease(release, next)).toEqual({ ...next, previousArtifactUri: release.artifactUri, previousSha256: SHA, previousVersion: 'v3' });
    expect(nextFleetRelease(release, { ...next, artifactUri: release.artifactUri, sha256: SHA })).toMatchObject({
      previousSha256: 'ef'.repeat(32),
      previousVersion: 'v2',
    });
    expect(nextFleetRelease(undefined, next)).toMatchObject({ previousArtifactUri: '', previousSha256: '', previousVersion: '' });
  });

  test('a fleet-wide rollback records the previous release as live and the rolled-back one as previous', () => {
    expect(rolledBackFleetRelease(release, { commandId: 'c3', recordedAt: 't3', recordedBy: 'cli' })).toEqual({
      artifactUri: 's3://bucket/cli-releases/old.jar',
      sha256: 'ef'.repeat(32),
      version: 'v2',
      commandId: 'c3',
      recordedAt: 't3',
      recordedBy: 'cli',
      previousArtifactUri: release.artifactUri,
      previousSha256: SHA,
      previousVersion: 'v3',
    });
    expect(rolledBackFleetRelease({ ...release, previousArtifactUri: '', previousSha256: '' }, { commandId: 'c3', recordedAt: 't3', recordedBy: 'cli' })).toBeUndefined();
  });

  test('nothing recorded yet, or a record without artifact and checksum, is no release', () => {
    expect(parseFleetRelease(FLEET_RELEASE_UNSET)).toBeUndefined();
    expect(parseFleetRelease(undefined)).toBeUndefined();
    expect(parseFleetRelease('version=v3\n# comment')).toBeUndefined();
  });

  test('comments and unknown keys are ignored, and a value may contain "="', () => {
    const text = `# written by hand\nartifactUri=https://host/app.jar?X-Amz-Signature=ab%3D\nsha256=${SHA}\nfuture=thing`;
    expect(parseFleetRelease(text)).toMatchObject({ artifactUri: 'https://host/app.jar?X-Amz-Signature=ab%3D', sha256: SHA, version: '', commandId: '-' });
  });
});

describe('the fleet request', () => {
  test('a fleet is named by its tag, swapped one host at a time unless told otherwise', () => {
    const { [P.maxConcurrency]: _omitted, ...withoutConcurrency } = PROPERTIES;
    const request = readDeploymentRequest(withoutConcurrency);
    expect(request.fleet).toEqual({ ...fleet, maxConcurrency: '1' });
    expect(request.instanceId).toBeUndefined();
  });

  test('an instance and a fleet at once, or a bad fleet value, is refused before anything is sent', () => {
    expect(() => readDeploymentRequest({ ...PROPERTIES, [P.instanceId]: 'i-0123456789abcdef0' })).toThrow(
      /InstanceId and TargetTagKey are both set/,
    );
    expect(() => readDeploymentRequest({ ...PROPERTIES, [P.maxConcurrency]: '0' })).toThrow(/MaxConcurrency = "0" is not a number of hosts/);
    expect(() => readDeploymentRequest({ ...PROPERTIES, [P.targetTagValue]: 'a b' })).toThrow(/TargetTagValue = "a b" is not a tag value/);
    expect(() => readDeploymentRequest({ ...PROPERTIES, [P.releaseParameterName]: '' })).toThrow(/ReleaseParameterName is missing/);
  });
});

describe('what a roll-out state means', () => {
  test('running until SSM calls the command final', () => {
    const outcome = classifyRollOut({ Status: 'InProgress', TargetCount: 3 }, invocations([[HOSTS[0]!, 'Success', 0], [HOSTS[1]!, 'InProgress']]).CommandInvocations);
    expect(outcome).toEqual({ kind: 'running', progress: `1 of 3 hosts done (${HOSTS[0]} Success, ${HOSTS[1]} InProgress)` });
  });

  test('succeeded only when every host succeeded', () => {
    const all = invocations(HOSTS.map((id) => [id, 'Success', 0])).CommandInvocations;
    expect(classifyRollOut({ Status: 'Success' }, all)).toEqual({ kind: 'succeeded', instanceIds: HOSTS });
  });

  test('a host cancelled by hand (not Terminated by the error limit) counts as failed, not untouched', () => {
    const states = [
      { InstanceId: HOSTS[0], Status: 'Success', StatusDetails: 'Success' },
      { InstanceId: HOSTS[1], Status: 'Cancelled', StatusDetails: 'Cancelled' },
    ];
    const outcome = classifyRollOut({ Status: 'Cancelled' }, states);
    expect(outcome).toMatchObject({ kind: 'failed', untouched: [] });
    expect(outcome.kind === 'failed' && outcome.failed.map((entry) => entry.InstanceId)).toEqual([HOSTS[1]]);
  });

  test('MaxErrors 0: the failed host, those that took the release, and those never touched', () => {
    const states = invocations([
      [HOSTS[0]!, 'Success', 0],
      [HOSTS[1]!, 'Failed', 5],
      [HOSTS[2]!, 'Cancelled'],
    ]).CommandInvocations;
    const outcome = classifyRollOut({ Status: 'Failed', StatusDetails: 'Failed' }, states);
    expect(outcome).toMatchObject({ kind: 'failed', summary: '1 of 3 hosts failed', succeeded: [HOSTS[0]], untouched: [HOSTS[2]] });
    expect(outcome.kind === 'failed' && outcome.failed.map((entry) => entry.InstanceId)).toEqual([HOSTS[1]]);
  });

  test('no host carrying the tag is a failure that says so', () => {
    expect(classifyRollOut({ Status: 'Success', StatusDetails: 'Success', TargetCount: 0 }, [])).toMatchObject({
      kind: 'failed',
      summary: expect.stringMatching(/no host matched the command's target/),
    });
  });

  test('the failure message names each failed host with its status and own words, and stays within CloudFormation\'s budget', () => {
    const message = fleetFailureMessage({
      summary: '1 of 3 hosts failed',
      commandId: COMMAND_ID,
      version: 'v3',
      failedHosts: [
        {
          instanceId: HOSTS[1]!,
          report: { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 5, StandardErrorContent: 'x'.repeat(5000) + '\nbluegreen: error: v3 never became healthy on green; blue (v2) keeps serving' },
        },
      ],
      succeeded: [HOSTS[0]!],
      untouched: [HOSTS[2]!],
      context: { deliveryTimeoutSeconds: 300 },
      outputLogGroupName: '/bluegreen/deploy',
    });
    expect(message).toContain(`Roll-out of v3 failed: 1 of 3 hosts failed.`);
    expect(message).toContain(`${HOSTS[1]}: the deploy script failed with exit status 5 (the new release did not become healthy)`);
    expect(message).toContain('blue (v2) keeps serving');
    expect(message).toContain(`Took the new release: ${HOSTS[0]}`);
    expect(message).toContain(`Not deployed (still on the previous release): ${HOSTS[2]}`);
    expect(message).toContain(`streams ${COMMAND_ID}/INSTANCE/*`);
    expect(message.length).toBeLessThanOrEqual(MAX_FLEET_FAILURE_CHARS);
  });
});

describe('onEvent for a fleet', () => {
  test('waits for a fleet host to be Online, then sends once by tag with MaxConcurrency and MaxErrors 0', async () => {
    ssmMock
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce({ InstanceInformationList: [] })
      .resolves(hostsOnline());
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });

    const result = await handlers().onEvent(event('Update'));

    expect(result.BlueGreenCommand).toEqual({ commandId: COMMAND_ID, fleet, sentAt: clock, version: 'v3' });
    expect(ssmMock.commandCalls(DescribeInstanceInformationCommand)[0]!.args[0].input.Filters).toEqual([
      { Key: `tag:${FLEET_TAG_KEY}`, Values: [TAG_VALUE] },
    ]);
    const sends = ssmMock.commandCalls(SendCommandCommand);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.args[0].input).toMatchObject({
      Targets: [{ Key: `tag:${FLEET_TAG_KEY}`, Values: [TAG_VALUE] }],
      MaxConcurrency: '1',
      MaxErrors: '0',
      Comment: 'CloudFormation Update Deployment: deploy v3',
    });
    expect(sends[0]!.args[0].input.InstanceIds).toBeUndefined();
  });

  test('no host Online within the wait: fails naming the tag, sends nothing', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [{ InstanceId: HOSTS[0], PingStatus: 'ConnectionLost' }] });
    await expect(handlers().onEvent(event('Create'))).rejects.toThrow(
      new RegExp(`No host with tag ${FLEET_TAG_KEY}=${TAG_VALUE} is Online .*${HOSTS[0]} ConnectionLost.*nothing was sent and the fleet is unchanged`),
    );
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(0);
  });
});

describe('isComplete for a fleet', () => {
  test('running while SSM says the command is in progress; nothing recorded', async () => {
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'InProgress', TargetCount: 3 }] });
    ssmMock.on(ListCommandInvocationsCommand).resolves(invocations([[HOSTS[0]!, 'Success', 0], [HOSTS[1]!, 'InProgress']]));
    await expect(handlers().isComplete(waiting())).resolves.toEqual({ IsComplete: false });
    expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(0);
  });

  test('every host succeeded and none joined: records the release once, then completes', async () => {
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Success', TargetCount: 3 }] });
    ssmMock.on(ListCommandInvocationsCommand).resolves(invocations(HOSTS.map((id) => [id, 'Success', 0])));
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Value: FLEET_RELEASE_UNSET } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 2 });
    ssmMock.on(DescribeInstanceInformationCommand).resolves(hostsOnline());

    const result = await handlers().isComplete(waiting());

    expect(result).toEqual({
      IsComplete: true,
      Data: { [A.liveSlot]: 'per-host', [A.version]: 'v3', [A.commandId]: COMMAND_ID, [A.hosts]: '3' },
    });
    const puts = ssmMock.commandCalls(PutParameterCommand);
    expect(puts).toHaveLength(1);
    expect(puts[0]!.args[0].input).toMatchObject({ Name: RELEASE_PARAMETER, Type: 'String', Overwrite: true });
    expect(parseFleetRelease(puts[0]!.args[0].input.Value)).toMatchObject({
      artifactUri: 's3://assets-bucket/1f3c.jar',
      sha256: SHA,
      version: 'v3',
      commandId: COMMAND_ID,
      recordedBy: 'cloudformation',
    });
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(0);
  });

  test('a host that joined during the roll-out gets one catch-up deploy; complete once it succeeded', async () => {
    const joined = 'i-0bbbbbbbbbbbbbbb4';
    const comment = `catch-up of ${COMMAND_ID}: deploy v3`;
    // ListCommands by id answers the roll-out; by filters, the catch-ups SSM knows so far.
    let catchUps: Command[] = [];
    ssmMock.on(ListCommandsCommand).callsFake((input: { CommandId?: string }) => ({
      Commands: input.CommandId === COMMAND_ID ? [{ CommandId: COMMAND_ID, Status: 'Success', TargetCount: 3 }] : catchUps,
    }));
    ssmMock.on(ListCommandInvocationsCommand, { CommandId: COMMAND_ID }).resolves(invocations(HOSTS.map((id) => [id, 'Success', 0])));
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Value: FLEET_RELEASE_UNSET } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 2 });
    ssmMock.on(DescribeInstanceInformationCommand).resolves(hostsOnline([...HOSTS, joined]));
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: CATCH_UP_ID } });

    // WHEN the roll-out has just ended
    await expect(handlers().isComplete(waiting())).resolves.toEqual({ IsComplete: false });

    // THEN the joined host alone gets the same release, named as this roll-out's catch-up
    const sends = ssmMock.commandCalls(SendCommandCommand);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.args[0].input).toMatchObject({ InstanceIds: [joined], Comment: comment });
    expect(sends[0]!.args[0].input.Targets).toBeUndefined();
    expect(sends[0]!.args[0].input.Parameters).toMatchObject({ sha256: [SHA], version: ['v3'] });
    const lookups = ssmMock.commandCalls(ListCommandsCommand).filter((call) => call.args[0].input.Filters !== undefined);
    expect(lookups[0]!.args[0].input.Filters).toEqual([
      { key: 'InvokedAfter', value: new Date(clock - 1000).toISOString() },
      { key: 'DocumentName', value: PROPERTIES[P.documentName] },
    ]);

    // WHEN SSM lists the catch-up (its invocation not yet visible), then it runs, then succeeds
    const recorded = ssmMock.commandCalls(PutParameterCommand)[0]!.args[0].input.Value!;
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Value: recorded } });
    const catchUpCommand = (status: CommandStatus): Command[] => [{ CommandId: CATCH_UP_ID, Comment: comment, InstanceIds: [joined], Status: status }];
    catchUps = catchUpCommand('Pending');
    ssmMock.on(ListCommandInvocationsCommand, { CommandId: CATCH_UP_ID }).resolves({ CommandInvocations: [] });
    await expect(handlers().isComplete(waiting())).resolves.toEqual({ IsComplete: false });
    catchUps = catchUpCommand('InProgress');
    await expect(handlers().isComplete(waiting())).resolves.toEqual({ IsComplete: false });
    catchUps = catchUpCommand('Success');
    ssmMock.on(ListCommandInvocationsCommand, { CommandId: CATCH_UP_ID }).resolves({
      CommandInvocations: [{ CommandId: CATCH_UP_ID, InstanceId: joined, Status: 'Success' }],
    });
    await expect(handlers().isComplete(waiting())).resolves.toMatchObject({ IsComplete: true });

    // THEN it was sent once and the release recorded once
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(1);
    expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(1);
  });

  test('a failed roll-out names the failed host with its output, records nothing, sends nothing more', async () => {
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Failed', StatusDetails: 'Failed', TargetCount: 3 }] });
    ssmMock.on(ListCommandInvocationsCommand).resolves(invocations([[HOSTS[0]!, 'Success', 0], [HOSTS[1]!, 'Failed', 3], [HOSTS[2]!, 'Cancelled']]));
    ssmMock.on(GetCommandInvocationCommand, { CommandId: COMMAND_ID, InstanceId: HOSTS[1] }).resolves({
      Status: 'Failed',
      StatusDetails: 'Failed',
      ResponseCode: 3,
      StandardErrorContent: 'bluegreen: error: sha256 mismatch for /var/lib/bluegreen/incoming/app.jar; v2 keeps serving on blue',
    });

    await expect(handlers().isComplete(waiting())).rejects.toThrow(
      new RegExp(
        `Roll-out of v3 failed: 1 of 3 hosts failed\\. ${HOSTS[1]}: the deploy script failed with exit status 3 .*sha256 mismatch.*` +
          `Took the new release: ${HOSTS[0]} .*Not deployed \\(still on the previous release\\): ${HOSTS[2]}`,
      ),
    );
    expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(0);
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(0);
  });

  test('throttled: not complete yet, asked again next time', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    ssmMock.on(ListCommandsCommand).rejects(throttled);
    await expect(handlers().isComplete(waiting())).resolves.toEqual({ IsComplete: false });
  });
});
