/**
 * Fleet mode of the deploy custom resource: the handlers against a mocked SDK (the real command
 * objects with their real input; the clock and sleep are fakes). The release record and what a
 * roll-out's state means are test/deploy/fleet.test.ts; the roll-out against real hosts is
 * test/e2e/fleet.e2e.test.ts.
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
  SSMServiceException,
  type Command,
  type CommandStatus,
} from '@aws-sdk/client-ssm';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, test } from 'vitest';
import { createHandlers } from '../../lambda/deploy/handlers.js';
import type { CustomResourceEvent, IsCompleteEvent } from '../../lambda/deploy/resource.js';
import { jsonLogger } from '../../lambda/deploy/log.js';
import { DEPLOYMENT_ATTRIBUTES as A, DEPLOYMENT_PROPERTIES as P, FLEET_RELEASE_UNSET, FLEET_TAG_KEY, RELEASE_RETENTION_TAG } from '../../lib/contract.js';
import { parseFleetRelease } from '../../lib/deploy/fleet.js';
import type { UploadLocation } from '../../lib/deploy/retention.js';
import { LoopbackS3 } from '../support/s3-server.js';
import { COMMAND_ID, HOSTS, invocations, PROPERTIES, RELEASE_PARAMETER, SHA, TAG_VALUE } from '../support/fleet-request.js';

const ssmMock = mockClient(SSMClient);
afterAll(() => ssmMock.restore());

const CATCH_UP_ID = 'beef0000-1111-2222-3333-444455556666';

let clock: number;

function handlers(retention: { readonly s3?: S3Client; readonly uploadLocation?: UploadLocation } = {}) {
  return createHandlers({
    ssm: new SSMClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
    ...(retention.s3 === undefined ? {} : { s3: retention.s3 }),
    settings: {
      onlineWaitSeconds: 300,
      onlinePollSeconds: 5,
      deliveryTimeoutSeconds: 300,
      executionTimeoutSeconds: 2199,
      ...(retention.uploadLocation === undefined ? {} : { uploadLocation: retention.uploadLocation }),
    },
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

beforeEach(() => {
  ssmMock.reset();
  clock = Date.parse('2026-11-25T10:00:00Z');
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

  test("recording over a release the operator command uploaded keeps its jar (now the previous release) and frees the one two back, with the real SDK against the S3 stand-in", async () => {
    // GIVEN the record names two uploaded jars: the release (b) and the previous one (a), both recorded
    const s3 = await LoopbackS3.start({ buckets: ['uploads'] });
    const s3Client = new S3Client({ region: 'us-east-1', endpoint: s3.url, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    try {
      const recordedTag = `${RELEASE_RETENTION_TAG.key}=${RELEASE_RETENTION_TAG.recorded}`;
      for (const name of ['a', 'b']) await s3Client.send(new PutObjectCommand({ Bucket: 'uploads', Key: `cli-releases/${name}.jar`, Body: name, Tagging: recordedTag }));
      const before = [
        'artifactUri=s3://uploads/cli-releases/b.jar',
        `sha256=${'b'.repeat(64)}`,
        'version=b',
        'previousArtifactUri=s3://uploads/cli-releases/a.jar',
        `previousSha256=${'a'.repeat(64)}`,
        'previousVersion=a',
      ].join('\n');
      ssmMock.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Success', TargetCount: 3 }] });
      ssmMock.on(ListCommandInvocationsCommand).resolves(invocations(HOSTS.map((id) => [id, 'Success', 0])));
      ssmMock.on(GetParameterCommand).resolves({ Parameter: { Value: before } });
      ssmMock.on(PutParameterCommand).resolves({ Version: 3 });
      ssmMock.on(DescribeInstanceInformationCommand).resolves(hostsOnline());

      // WHEN a stack update rolls out its own jar (a CDK asset) and records it
      const result = await handlers({ s3: s3Client, uploadLocation: { bucket: 'uploads', prefix: 'cli-releases/' } }).isComplete(waiting());

      // THEN b, now the previous release, stays recorded; a, two back, may expire again
      expect(result.IsComplete).toBe(true);
      expect(parseFleetRelease(ssmMock.commandCalls(PutParameterCommand)[0]!.args[0].input.Value)).toMatchObject({ version: 'v3', previousVersion: 'b' });
      expect(s3.object('uploads', 'cli-releases/b.jar')!.tags).toEqual({ [RELEASE_RETENTION_TAG.key]: RELEASE_RETENTION_TAG.recorded });
      expect(s3.object('uploads', 'cli-releases/a.jar')!.tags).toEqual({ [RELEASE_RETENTION_TAG.key]: RELEASE_RETENTION_TAG.unrecorded });
    } finally {
      s3Client.destroy();
      await s3.close();
    }
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

  test("a catch-up whose SendCommand answers are lost: not complete, and nothing fails; the next call looks again", async () => {
    const joined = 'i-0bbbbbbbbbbbbbbb4';
    ssmMock.on(ListCommandsCommand).callsFake((input: { CommandId?: string }) => ({
      Commands: input.CommandId === COMMAND_ID ? [{ CommandId: COMMAND_ID, Status: 'Success', TargetCount: 3 }] : [],
    }));
    ssmMock.on(ListCommandInvocationsCommand, { CommandId: COMMAND_ID }).resolves(invocations(HOSTS.map((id) => [id, 'Success', 0])));
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Value: FLEET_RELEASE_UNSET } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 2 });
    ssmMock.on(DescribeInstanceInformationCommand).resolves(hostsOnline([...HOSTS, joined]));
    ssmMock
      .on(SendCommandCommand)
      .rejects(new SSMServiceException({ name: 'InternalServerError', message: 'An internal error occurred', $fault: 'server', $metadata: { httpStatusCode: 500 } }));

    await expect(handlers().isComplete(waiting())).resolves.toEqual({ IsComplete: false });
    expect(ssmMock.commandCalls(SendCommandCommand).length).toBeGreaterThan(1);
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

describe('a fleet longer than one page of SSM answers', () => {
  /** Answers `pages` in turn, as SSM pages a list with NextToken, and notes each token asked for. */
  function paged<T extends object>(pages: readonly T[], asked: Array<string | undefined>) {
    return (input: { NextToken?: string }) => {
      asked.push(input.NextToken);
      const index = input.NextToken === undefined ? 0 : Number(input.NextToken.slice('page-'.length));
      return { ...pages[index]!, ...(index + 1 < pages.length ? { NextToken: `page-${index + 1}` } : {}) };
    };
  }

  test('onEvent reads every page of hosts: an Online host on the last page is enough to send', async () => {
    const asked: Array<string | undefined> = [];
    ssmMock.on(DescribeInstanceInformationCommand).callsFake(
      paged(
        [
          { InstanceInformationList: [{ InstanceId: HOSTS[0], PingStatus: 'ConnectionLost' }] },
          { InstanceInformationList: [{ InstanceId: HOSTS[1], PingStatus: 'ConnectionLost' }] },
          { InstanceInformationList: [{ InstanceId: HOSTS[2], PingStatus: 'Online' }] },
        ],
        asked,
      ),
    );
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });

    await expect(handlers().onEvent(event('Update'))).resolves.toMatchObject({ BlueGreenCommand: { commandId: COMMAND_ID } });
    expect(asked).toEqual([undefined, 'page-1', 'page-2']);
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(1);
  });

  test('isComplete reads every page of invocations: a host that failed on the second page fails the roll-out', async () => {
    const asked: Array<string | undefined> = [];
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Failed', StatusDetails: 'Failed', TargetCount: 3 }] });
    ssmMock
      .on(ListCommandInvocationsCommand)
      .callsFake(paged([invocations([[HOSTS[0]!, 'Success', 0], [HOSTS[1]!, 'Success', 0]]), invocations([[HOSTS[2]!, 'Failed', 5]])], asked));
    ssmMock.on(GetCommandInvocationCommand).resolves({ Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 5, StandardErrorContent: 'never became healthy' });

    await expect(handlers().isComplete(waiting())).rejects.toThrow(
      new RegExp(`1 of 3 hosts failed\\. ${HOSTS[2]}: .*never became healthy.*Took the new release: ${HOSTS[0]}, ${HOSTS[1]}`),
    );
    expect(asked).toEqual([undefined, 'page-1']);
    expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(0);
  });

  test('a throttled page is retried by reading the list again from its first page, never half of it', async () => {
    const asked: Array<string | undefined> = [];
    const pages = paged([invocations([[HOSTS[0]!, 'Success', 0], [HOSTS[1]!, 'Success', 0]]), invocations([[HOSTS[2]!, 'Success', 0]])], asked);
    let throttledOnce = false;
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Success', TargetCount: 3 }] });
    ssmMock.on(ListCommandInvocationsCommand).callsFake((input: { NextToken?: string }) => {
      if (input.NextToken !== undefined && !throttledOnce) {
        throttledOnce = true;
        asked.push(input.NextToken);
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
      }
      return pages(input);
    });
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Value: FLEET_RELEASE_UNSET } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 2 });
    ssmMock.on(DescribeInstanceInformationCommand).resolves(hostsOnline());

    await expect(handlers().isComplete(waiting())).resolves.toMatchObject({ IsComplete: true, Data: { [A.hosts]: '3' } });
    expect(asked).toEqual([undefined, 'page-1', undefined, 'page-1']);
  });

  test('a catch-up that ListCommands shows on its second page is found, and not sent again', async () => {
    const joined = 'i-0bbbbbbbbbbbbbbb4';
    const asked: Array<string | undefined> = [];
    const lookups = paged(
      [
        { Commands: [{ CommandId: 'other-0000', Comment: 'ec2-bluegreen status by someone', InstanceIds: HOSTS, Status: 'Success' as const }] },
        { Commands: [{ CommandId: CATCH_UP_ID, Comment: `catch-up of ${COMMAND_ID}: deploy v3`, InstanceIds: [joined], Status: 'InProgress' as const }] },
      ],
      asked,
    );
    ssmMock
      .on(ListCommandsCommand)
      .callsFake((input: { CommandId?: string; NextToken?: string }) =>
        input.CommandId === COMMAND_ID ? { Commands: [{ CommandId: COMMAND_ID, Status: 'Success', TargetCount: 3 }] } : lookups(input),
      );
    ssmMock.on(ListCommandInvocationsCommand, { CommandId: COMMAND_ID }).resolves(invocations(HOSTS.map((id) => [id, 'Success', 0])));
    ssmMock.on(ListCommandInvocationsCommand, { CommandId: CATCH_UP_ID }).resolves({ CommandInvocations: [{ CommandId: CATCH_UP_ID, InstanceId: joined, Status: 'InProgress' }] });
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Value: FLEET_RELEASE_UNSET } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 2 });
    ssmMock.on(DescribeInstanceInformationCommand).resolves(hostsOnline([...HOSTS, joined]));

    await expect(handlers().isComplete(waiting())).resolves.toEqual({ IsComplete: false });
    expect(asked).toEqual([undefined, 'page-1']);
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(0);
  });
});
