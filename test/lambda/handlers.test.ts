/**
 * The handlers against a mocked SDK (aws-sdk-client-mock): what they send, how they wait, and
 * what they answer for every state SSM can report. The clock and sleep are fakes, so a wait of
 * minutes takes no time; the SDK calls are the real command objects with their real input.
 */
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SendCommandCommand,
  SSMClient,
  SSMServiceException,
  type GetCommandInvocationCommandOutput,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, test } from 'vitest';
import { createHandlers } from '../../lambda/deploy/handlers.js';
import { DeployFailedError, type CustomResourceEvent, type IsCompleteEvent } from '../../lambda/deploy/resource.js';
import { jsonLogger } from '../../lambda/deploy/log.js';
import type { DeploySettings } from '../../lambda/deploy/settings.js';
import { DEPLOYMENT_ATTRIBUTES as A, DEPLOYMENT_PROPERTIES as P, DOCUMENT_PARAMS } from '../../lib/contract.js';
import { SEND_SEARCH_MARGIN_SECONDS } from '../../lib/deploy/send-once.js';

const ssmMock = mockClient(SSMClient);
afterAll(() => ssmMock.restore());

const INSTANCE_ID = 'i-0123456789abcdef0';
const DOCUMENT_NAME = 'Ec2BlueGreen-DeployDocument-AbCdEf123456';
const COMMAND_ID = 'c0ffee00-1111-2222-3333-444455556666';
const SHA = 'ab'.repeat(32);
const SETTINGS: DeploySettings = { onlineWaitSeconds: 300, onlinePollSeconds: 5, deliveryTimeoutSeconds: 300, executionTimeoutSeconds: 2199 };

const PROPERTIES = {
  ServiceToken: 'arn:aws:lambda:us-east-1:111111111111:function:framework-onEvent',
  [P.instanceId]: INSTANCE_ID,
  [P.documentName]: DOCUMENT_NAME,
  [P.artifactUri]: 's3://assets-bucket/0f3c.jar',
  [P.sha256]: SHA,
  [P.version]: 'v2',
  [P.healthTimeout]: '60',
};

function event(requestType: CustomResourceEvent['RequestType'], extra: Partial<CustomResourceEvent> = {}): CustomResourceEvent {
  return {
    RequestType: requestType,
    LogicalResourceId: 'Deployment',
    RequestId: 'req-1',
    StackId: 'arn:aws:cloudformation:us-east-1:111111111111:stack/Ec2BlueGreen/uuid',
    ResourceType: 'Custom::BlueGreenDeployment',
    ResourceProperties: PROPERTIES,
    ...(requestType === 'Create' ? {} : { PhysicalResourceId: 'bluegreen-deployment/Deployment' }),
    ...extra,
  };
}

/** An error as the SDK builds it from SSM's `{"__type": ...}` answer. */
function ssmError(name: string, message = `${name} from SSM`): SSMServiceException {
  return new SSMServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: 400 } });
}

function online(status: 'Online' | 'ConnectionLost' | 'Inactive' = 'Online') {
  return { InstanceInformationList: [{ InstanceId: INSTANCE_ID, PingStatus: status, LastPingDateTime: new Date('2026-11-25T10:00:00Z') }] };
}

let clock: number;
let slept: number[];
let logLines: Array<Record<string, unknown>>;

function handlers(settings: DeploySettings = SETTINGS) {
  return createHandlers({
    ssm: new SSMClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
    settings,
    log: jsonLogger({}, (line) => logLines.push(JSON.parse(line))),
    now: () => clock,
    sleep: async (ms) => {
      slept.push(ms);
      clock += ms;
    },
    random: () => 0,
  });
}

beforeEach(() => {
  ssmMock.reset();
  clock = Date.parse('2026-11-25T10:00:00Z');
  slept = [];
  logLines = [];
});

describe('onEvent', () => {
  test('Create: sends the document once to the online instance and passes the command on', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online());
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });

    const result = await handlers().onEvent(event('Create'));

    expect(result).toEqual({
      PhysicalResourceId: 'bluegreen-deployment/Deployment',
      BlueGreenCommand: { commandId: COMMAND_ID, instanceId: INSTANCE_ID, sentAt: clock, version: 'v2' },
    });
    expect(ssmMock.commandCalls(DescribeInstanceInformationCommand)[0]!.args[0].input).toEqual({
      Filters: [{ Key: 'InstanceIds', Values: [INSTANCE_ID] }],
    });
    const sends = ssmMock.commandCalls(SendCommandCommand);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.args[0].input).toEqual({
      DocumentName: DOCUMENT_NAME,
      DocumentVersion: '$LATEST',
      InstanceIds: [INSTANCE_ID],
      Parameters: {
        [DOCUMENT_PARAMS.action]: ['deploy'],
        [DOCUMENT_PARAMS.artifactUri]: ['s3://assets-bucket/0f3c.jar'],
        [DOCUMENT_PARAMS.sha256]: [SHA],
        [DOCUMENT_PARAMS.version]: ['v2'],
        [DOCUMENT_PARAMS.healthTimeout]: ['60'],
      },
      TimeoutSeconds: 300,
      Comment: 'CloudFormation Create Deployment: deploy v2',
    });
  });

  test('Update: keeps the physical resource id, so CloudFormation never replaces the deployment', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online());
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
    const result = await handlers().onEvent(event('Update', { PhysicalResourceId: 'kept-id', OldResourceProperties: PROPERTIES }));
    expect(result.PhysicalResourceId).toBe('kept-id');
    expect(ssmMock.commandCalls(SendCommandCommand)[0]!.args[0].input.Comment).toBe('CloudFormation Update Deployment: deploy v2');
  });

  test('Delete: succeeds without a single call to AWS (the instance may be gone)', async () => {
    const result = await handlers().onEvent(event('Delete', { ResourceProperties: {} }));
    expect(result).toEqual({ PhysicalResourceId: 'bluegreen-deployment/Deployment' });
    expect(ssmMock.calls()).toHaveLength(0);
  });

  test('waits while the instance is not registered or not Online, then sends', async () => {
    ssmMock
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce({ InstanceInformationList: [] })
      .resolvesOnce(online('ConnectionLost'))
      .resolves(online());
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });

    await handlers().onEvent(event('Create'));

    expect(slept).toEqual([5000, 5000]);
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(1);
    expect(logLines.filter((line) => line.message === 'waiting for the instance to be Online').map((line) => line.lastSeen)).toEqual([
      'not registered with Systems Manager',
      'ConnectionLost (last ping 2026-11-25T10:00:00.000Z)',
    ]);
  });

  test('gives up after the online wait with a reason that says nothing was sent and what to check', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online('ConnectionLost'));

    const error = await handlers({ ...SETTINGS, onlineWaitSeconds: 60 }).onEvent(event('Create')).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DeployFailedError);
    expect((error as Error).message).toBe(
      `Instance ${INSTANCE_ID} is not Online in Systems Manager after 60s (it is ConnectionLost (last ping 2026-11-25T10:00:00.000Z)), ` +
        'so nothing was sent and the host is unchanged. Check that the instance is running, that SSM Agent runs on it, that its role ' +
        'has AmazonSSMManagedInstanceCore, and that it can reach the SSM endpoints; then deploy again.',
    );
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(0);
  });

  test("never waits past the Lambda function's own timeout", async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [] });
    const started = clock;
    await expect(handlers().onEvent(event('Create'), { getRemainingTimeInMillis: () => 120_000 })).rejects.toThrow(/not Online/);
    // 120 s left: 10 s margin, 60 s kept for sending, so at most 50 s of waiting.
    expect(clock - started).toBeLessThanOrEqual(50_000);
  });

  test('InvalidInstanceId right after the instance came Online: waits and sends again, once it is accepted', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online());
    ssmMock
      .on(SendCommandCommand)
      .rejectsOnce(ssmError('InvalidInstanceId', 'Instances [[i-0123456789abcdef0]] not in a valid state for account 111111111111'))
      .resolves({ Command: { CommandId: COMMAND_ID } });

    const result = await handlers().onEvent(event('Create'));

    expect(result.BlueGreenCommand?.commandId).toBe(COMMAND_ID);
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(2);
    expect(slept).toEqual([5000]);
  });

  test('InvalidInstanceId that lasts past the online wait fails, quoting SSM', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online());
    ssmMock.on(SendCommandCommand).rejects(ssmError('InvalidInstanceId', 'Instances [[i-0123456789abcdef0]] not in a valid state'));
    await expect(handlers({ ...SETTINGS, onlineWaitSeconds: 20 }).onEvent(event('Create'))).rejects.toThrow(
      `Systems Manager refused to run ${DOCUMENT_NAME} on ${INSTANCE_ID} (InvalidInstanceId: Instances [[i-0123456789abcdef0]] not in a valid state). ` +
        'Nothing ran on the host; the current release keeps serving.',
    );
  });

  test('retries throttling and an IAM denial right after the role was created', async () => {
    ssmMock
      .on(DescribeInstanceInformationCommand)
      .rejectsOnce(ssmError('AccessDeniedException', 'User is not authorized to perform: ssm:DescribeInstanceInformation'))
      .resolves(online());
    ssmMock.on(SendCommandCommand).rejectsOnce(ssmError('ThrottlingException', 'Rate exceeded')).resolves({ Command: { CommandId: COMMAND_ID } });

    const result = await handlers().onEvent(event('Create'));

    expect(result.BlueGreenCommand?.commandId).toBe(COMMAND_ID);
    expect(slept).toEqual([500, 500]);
    expect(logLines.filter((line) => line.level === 'WARN').map((line) => line.reason)).toEqual(['iam-propagation', 'throttled']);
  });

  test('an answer lost after SSM created the command: the retry finds that send of the same request and adopts it, sending once', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online());
    const lost = new SSMServiceException({ name: 'InternalServerError', message: 'An internal error occurred', $fault: 'server', $metadata: { httpStatusCode: 500 } });
    ssmMock.on(SendCommandCommand).rejects(lost);
    const sent = (commandId: string, requestedAt: number, change: Record<string, unknown> = {}) => ({
      CommandId: commandId,
      DocumentName: DOCUMENT_NAME,
      Comment: 'CloudFormation Create Deployment: deploy v2',
      InstanceIds: [INSTANCE_ID],
      Targets: [],
      RequestedDateTime: new Date(requestedAt),
      Parameters: {
        [DOCUMENT_PARAMS.action]: ['deploy'],
        [DOCUMENT_PARAMS.artifactUri]: ['s3://assets-bucket/0f3c.jar'],
        [DOCUMENT_PARAMS.sha256]: [SHA],
        [DOCUMENT_PARAMS.version]: ['v2'],
        [DOCUMENT_PARAMS.healthTimeout]: ['60'],
        [DOCUMENT_PARAMS.engineUri]: [''],
      },
      ...change,
    });
    ssmMock.on(ListCommandsCommand).resolves({
      Commands: [
        // Another request of the same document, and the same request long before: not this one.
        sent('other-release', clock, { Parameters: { [DOCUMENT_PARAMS.version]: ['v3'] } }),
        sent('long-before', clock - 10 * 60_000),
        sent(COMMAND_ID, clock),
      ],
    });

    const result = await handlers().onEvent(event('Create'));

    expect(result.BlueGreenCommand?.commandId).toBe(COMMAND_ID);
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(1);
    // An error without an answer to date it: this clock, less the margin for skew.
    expect(ssmMock.commandCalls(ListCommandsCommand)[0]!.args[0].input.Filters).toEqual([
      { key: 'InvokedAfter', value: new Date(clock - SEND_SEARCH_MARGIN_SECONDS * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') },
      { key: 'DocumentName', value: DOCUMENT_NAME },
    ]);
  });

  test('answers lost until the send allowance ends, and no command shows up: fails saying the deploy may run and how to find it', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online());
    ssmMock
      .on(SendCommandCommand)
      .rejects(new SSMServiceException({ name: 'InternalServerError', message: 'An internal error occurred', $fault: 'server', $metadata: { httpStatusCode: 500 } }));
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [] });

    await expect(handlers().onEvent(event('Create'))).rejects.toThrow(
      new RegExp(
        `^Systems Manager may or may not have accepted ${DOCUMENT_NAME} for ${INSTANCE_ID}: the answer to SendCommand was lost \\(InternalServerError: An internal error occurred\\).*` +
          'The deploy may still run on the host: look for the command with aws ssm list-commands',
      ),
    );
    // Every send after the first looked for the earlier ones first, and once more at the end.
    expect(ssmMock.commandCalls(ListCommandsCommand)).toHaveLength(ssmMock.commandCalls(SendCommandCommand).length);
  });

  test('a denial that outlasts IAM propagation is real: it fails with the denial', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online());
    ssmMock.on(SendCommandCommand).rejects(ssmError('AccessDeniedException', 'not authorized to perform: ssm:SendCommand on document/Other'));
    await expect(handlers().onEvent(event('Create'))).rejects.toThrow(/AccessDeniedException: not authorized to perform: ssm:SendCommand/);
  });

  test.each([
    ['InvalidDocument', 'Document Other does not exist'],
    ['InvalidParameters', 'Parameter "artifactUri" does not match the allowed pattern'],
    ['UnsupportedPlatformType', 'The document is not supported on this platform'],
  ])('%s: fails at once, quoting SSM, with nothing run on the host', async (name, message) => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online());
    ssmMock.on(SendCommandCommand).rejects(ssmError(name, message));
    await expect(handlers().onEvent(event('Update'))).rejects.toThrow(`(${name}: ${message}). Nothing ran on the host`);
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(1);
  });

  test('an error asking whether the instance is Online fails readably, with nothing sent', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).rejects(ssmError('InvalidFilterKey', 'The specified key is not valid'));
    await expect(handlers().onEvent(event('Create'))).rejects.toThrow(
      `Cannot ask Systems Manager whether ${INSTANCE_ID} is Online (InvalidFilterKey: The specified key is not valid), so nothing was sent`,
    );
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(0);
  });

  test('bad properties fail before any call to AWS', async () => {
    await expect(handlers().onEvent(event('Update', { ResourceProperties: { ...PROPERTIES, [P.sha256]: 'nope' } }))).rejects.toThrow(
      /Sha256 = "nope" is not 64 lower-case hex digits.*Nothing was sent/,
    );
    await expect(handlers().onEvent(event('Create', { ResourceProperties: {} }))).rejects.toBeInstanceOf(DeployFailedError);
    expect(ssmMock.calls()).toHaveLength(0);
  });
});

describe('isComplete', () => {
  const sent = { commandId: COMMAND_ID, instanceId: INSTANCE_ID, sentAt: Date.parse('2026-11-25T10:00:00Z'), version: 'v2' };
  const waiting: IsCompleteEvent = { ...event('Update'), PhysicalResourceId: 'bluegreen-deployment/Deployment', BlueGreenCommand: sent };

  function invocation(fields: Partial<GetCommandInvocationCommandOutput>): Partial<GetCommandInvocationCommandOutput> {
    return {
      CommandId: COMMAND_ID,
      InstanceId: INSTANCE_ID,
      DocumentName: DOCUMENT_NAME,
      ResponseCode: -1,
      StandardOutputContent: '',
      StandardErrorContent: '',
      ...fields,
    };
  }

  test.each(['Pending', 'InProgress', 'Delayed', 'Cancelling'])('%s: not complete yet', async (status) => {
    ssmMock.on(GetCommandInvocationCommand).resolves(invocation({ Status: status as 'Pending', StatusDetails: status }));
    await expect(handlers().isComplete(waiting)).resolves.toEqual({ IsComplete: false });
    expect(ssmMock.commandCalls(GetCommandInvocationCommand)[0]!.args[0].input).toEqual({ CommandId: COMMAND_ID, InstanceId: INSTANCE_ID });
  });

  test('Success: complete, with the live slot, version and command id as attributes', async () => {
    ssmMock.on(GetCommandInvocationCommand).resolves(
      invocation({
        Status: 'Success',
        StatusDetails: 'Success',
        ResponseCode: 0,
        StandardOutputContent: 'bluegreen [  3.9s] done     v2 is live on green; blue (v1) is the warm standby (3.9s)\n',
      }),
    );
    const result = await handlers().isComplete(waiting);
    expect(result).toEqual({ IsComplete: true, Data: { [A.liveSlot]: 'green', [A.version]: 'v2', [A.commandId]: COMMAND_ID } });
    expect(JSON.stringify(result.Data).length).toBeLessThan(200);
  });

  test('Success with output that names no slot: complete, the slot "unknown", the requested version', async () => {
    ssmMock.on(GetCommandInvocationCommand).resolves(invocation({ Status: 'Success', StatusDetails: 'Success', ResponseCode: 0 }));
    await expect(handlers().isComplete(waiting)).resolves.toEqual({
      IsComplete: true,
      Data: { [A.liveSlot]: 'unknown', [A.version]: 'v2', [A.commandId]: COMMAND_ID },
    });
  });

  const failures: Array<[string, Partial<GetCommandInvocationCommandOutput>, RegExp]> = [
    ['Failed (the engine refused an unhealthy release)', {
      Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 5,
      StandardOutputContent: 'bluegreen [  0.4s] start    started green (v3)\n',
      StandardErrorContent: 'bluegreen: error: green (v3) did not answer HTTP 200 within 3s. Nginx was not touched: blue (v2) keeps serving.\n',
    }, /^Deploy of v2 to i-0123456789abcdef0 failed: the deploy script failed with exit status 5 \(the new release did not become healthy\)\. Host: bluegreen: error: green \(v3\) did not answer HTTP 200 within 3s\. Nginx was not touched: blue \(v2\) keeps serving\. Last progress: .*started green \(v3\) Full output: aws ssm get-command-invocation/],
    ['Failed: Undeliverable', { Status: 'Failed', StatusDetails: 'Undeliverable' }, /failed: Failed \(Undeliverable\): .*nothing ran on the host\./],
    ['Failed: Terminated', { Status: 'Failed', StatusDetails: 'Terminated' }, /failed: Failed \(Terminated\)/],
    ['Failed: InvalidPlatform', { Status: 'Failed', StatusDetails: 'InvalidPlatform' }, /failed: Failed \(InvalidPlatform\): the instance is not Linux/],
    ['Failed: NoInstancesInTag', { Status: 'Failed', StatusDetails: 'NoInstancesInTag' }, /failed: Failed \(NoInstancesInTag\)/],
    ['TimedOut: DeliveryTimedOut', { Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut' }, /failed: TimedOut \(DeliveryTimedOut\): SSM Agent did not pick the command up within the delivery timeout \(300s\)/],
    ['TimedOut: ExecutionTimedOut', { Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut', StandardOutputContent: 'bluegreen [  1.0s] start    started green (v3)\n' },
      /failed: TimedOut \(ExecutionTimedOut\): the deploy ran longer than the document's execution timeout \(2199s\).*Last progress: .*started green \(v3\)/],
    ['Cancelled', { Status: 'Cancelled', StatusDetails: 'Cancelled' }, /failed: Cancelled \(Cancelled\): someone cancelled the command/],
  ];

  test.each(failures)('%s: throws the reason CloudFormation shows', async (_name, fields, reason) => {
    ssmMock.on(GetCommandInvocationCommand).resolves(invocation(fields));
    const error = (await handlers().isComplete(waiting).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DeployFailedError);
    expect(error.message).toMatch(reason);
    // The framework appends the trace to the reason: it must add nothing but the message.
    expect(error.stack).toBe(`DeployFailedError: ${error.message}`);
    expect(logLines.at(-1)).toMatchObject({ level: 'ERROR', message: 'deploy failed', commandId: COMMAND_ID });
  });

  test('InvocationDoesNotExist right after sending: not complete yet', async () => {
    ssmMock.on(GetCommandInvocationCommand).rejects(ssmError('InvocationDoesNotExist', ''));
    ssmMock.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [] });
    clock = sent.sentAt + 3000;
    await expect(handlers().isComplete(waiting)).resolves.toEqual({ IsComplete: false });
    expect(ssmMock.commandCalls(ListCommandInvocationsCommand)[0]!.args[0].input).toEqual({ CommandId: COMMAND_ID, InstanceId: INSTANCE_ID });
  });

  test('InvocationDoesNotExist, but the list already has it: its status counts', async () => {
    ssmMock.on(GetCommandInvocationCommand).rejects(ssmError('InvocationDoesNotExist', ''));
    ssmMock.on(ListCommandInvocationsCommand).resolves({
      CommandInvocations: [{ CommandId: COMMAND_ID, InstanceId: INSTANCE_ID, Status: 'Failed', StatusDetails: 'Undeliverable' }],
    });
    await expect(handlers().isComplete(waiting)).rejects.toThrow(/Failed \(Undeliverable\)/);
  });

  test('InvocationDoesNotExist, but the list already says Success: not complete until the output can be read', async () => {
    ssmMock.on(GetCommandInvocationCommand).rejects(ssmError('InvocationDoesNotExist', ''));
    ssmMock.on(ListCommandInvocationsCommand).resolves({
      CommandInvocations: [{ CommandId: COMMAND_ID, InstanceId: INSTANCE_ID, Status: 'Success', StatusDetails: 'Success' }],
    });
    await expect(handlers().isComplete(waiting)).resolves.toEqual({ IsComplete: false });
    expect(logLines.some((line) => line.message === 'deploy succeeded')).toBe(false);
  });

  test('an invocation SSM still does not show long after the delivery timeout: the deploy never started', async () => {
    ssmMock.on(GetCommandInvocationCommand).rejects(ssmError('InvocationDoesNotExist', ''));
    ssmMock.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [] });
    clock = sent.sentAt + 361_000;
    await expect(handlers().isComplete(waiting)).rejects.toThrow(
      `Systems Manager has no invocation of command ${COMMAND_ID} on ${INSTANCE_ID} 361s after it was sent, so the deploy never started; the host is unchanged.`,
    );
  });

  test('throttled past its retries: not complete yet, the provider asks again', async () => {
    ssmMock.on(GetCommandInvocationCommand).rejects(ssmError('ThrottlingException', 'Rate exceeded'));
    await expect(handlers().isComplete(waiting)).resolves.toEqual({ IsComplete: false });
    expect(ssmMock.commandCalls(GetCommandInvocationCommand).length).toBeGreaterThan(1);
  });

  test('a denial long after sending is real: it fails, saying the deploy may still run', async () => {
    ssmMock.on(GetCommandInvocationCommand).rejects(ssmError('AccessDeniedException', 'not authorized to perform: ssm:GetCommandInvocation'));
    clock = sent.sentAt + 600_000;
    await expect(handlers().isComplete(waiting)).rejects.toThrow(
      /Cannot read command .* \(AccessDeniedException: not authorized .*\)\. The deploy may still be running on the host; check with: aws ssm get-command-invocation/,
    );
  });

  test('Delete: complete at once, without a call to AWS', async () => {
    const deleted: IsCompleteEvent = { ...event('Delete'), PhysicalResourceId: 'bluegreen-deployment/Deployment' };
    await expect(handlers().isComplete(deleted)).resolves.toEqual({ IsComplete: true });
    expect(ssmMock.calls()).toHaveLength(0);
  });
});

describe('the entry points (lambda/deploy/index.ts)', () => {
  test('are wired to the shared client: Create sends, Delete touches nothing', async () => {
    ssmMock.on(DescribeInstanceInformationCommand).resolves(online());
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
    ssmMock.on(GetCommandInvocationCommand).resolves(
      invocationOutput('Success', 'bluegreen [  1.0s] done     v2 is already live on green; nothing to do (1.0s)\n'),
    );
    const { onEvent, isComplete } = await import('../../lambda/deploy/index.js');

    const created = await onEvent(event('Create'));
    expect(created.BlueGreenCommand?.commandId).toBe(COMMAND_ID);
    await expect(isComplete({ ...event('Create'), ...created })).resolves.toMatchObject({ IsComplete: true, Data: { [A.liveSlot]: 'green' } });

    ssmMock.resetHistory();
    await expect(onEvent(event('Delete'))).resolves.toEqual({ PhysicalResourceId: 'bluegreen-deployment/Deployment' });
    expect(ssmMock.calls()).toHaveLength(0);
  });
});

function invocationOutput(status: 'Success', stdout: string): Partial<GetCommandInvocationCommandOutput> {
  return { CommandId: COMMAND_ID, InstanceId: INSTANCE_ID, Status: status, StatusDetails: status, ResponseCode: 0, StandardOutputContent: stdout };
}
