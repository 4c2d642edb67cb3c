import { DescribeInstanceInformationCommand, type InstanceInformation, SendCommandCommand, SSMClient, SSMServiceException } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { documentCommandInput, fleetHosts, requireOnline, send } from '../../cli/command.js';
import { CLI_EXIT_CODES } from '../../cli/errors.js';
import type { FleetStackTarget, StackTarget } from '../../cli/stack.js';
import { DOCUMENT_PARAM_PATTERNS } from '../../lib/contract.js';

const TARGET: StackTarget = {
  stackName: 'Ec2BlueGreen',
  instanceId: 'i-0123456789abcdef0',
  documentName: 'Ec2BlueGreen-DeployDocument-abc',
  outputLogGroupName: 'Ec2BlueGreen-Output',
};
const SETTINGS = { deliveryTimeoutSeconds: 300, requestedBy: 'ops@laptop' };
const SHA = 'c'.repeat(64);

describe('documentCommandInput', () => {
  test("deploy sends the custom resource's parameters, with the output streamed to the stack's log group", () => {
    const input = documentCommandInput(
      TARGET,
      { command: 'deploy', artifact: { uri: 's3://bucket/cli-releases/x.jar', sha256: SHA, version: 'v2', source: 'app.jar' }, healthTimeoutSeconds: 60 },
      SETTINGS,
    );
    expect(input).toEqual({
      DocumentName: TARGET.documentName,
      DocumentVersion: '$LATEST',
      InstanceIds: [TARGET.instanceId],
      Parameters: { action: ['deploy'], artifactUri: ['s3://bucket/cli-releases/x.jar'], sha256: [SHA], version: ['v2'], healthTimeout: ['60'] },
      TimeoutSeconds: 300,
      Comment: 'ec2-bluegreen deploy v2 by ops@laptop',
      CloudWatchOutputConfig: { CloudWatchOutputEnabled: true, CloudWatchLogGroupName: 'Ec2BlueGreen-Output' },
    });
  });

  test.each(['rollback', 'status', 'history'] as const)('%s sends only the action (the document defaults the rest)', (command) => {
    const input = documentCommandInput(TARGET, { command }, SETTINGS);
    expect(input.Parameters).toEqual({ action: [command] });
    expect(input.Comment).toBe(`ec2-bluegreen ${command} by ops@laptop`);
    expect(input.CloudWatchOutputConfig).toEqual({ CloudWatchOutputEnabled: true, CloudWatchLogGroupName: 'Ec2BlueGreen-Output' });
  });

  test('rollback passes a health timeout; a stack without a log group sends no CloudWatch config', () => {
    const input = documentCommandInput({ ...TARGET, outputLogGroupName: undefined }, { command: 'rollback', healthTimeoutSeconds: 30 }, SETTINGS);
    expect(input.Parameters).toEqual({ action: ['rollback'], healthTimeout: ['30'] });
    expect(input.CloudWatchOutputConfig).toBeUndefined();
  });

  test("a fleet's rollback names the previous release, which a host without a standby deploys instead", () => {
    const previous = { artifactUri: 's3://bucket/cli-releases/v1.jar', sha256: SHA, version: 'v1' };
    const input = documentCommandInput(TARGET, { command: 'rollback', previous }, SETTINGS);
    expect(input.Parameters).toEqual({ action: ['rollback'], artifactUri: [previous.artifactUri], sha256: [SHA], version: ['v1'] });
    expect(input.Comment).toBe('ec2-bluegreen rollback by ops@laptop');
    for (const [name, [value]] of Object.entries(input.Parameters!)) {
      if (name === 'action') continue;
      expect(value).toMatch(new RegExp(DOCUMENT_PARAM_PATTERNS[name as keyof typeof DOCUMENT_PARAM_PATTERNS]));
    }
  });

  test("every value matches the document's allowedPattern", () => {
    const input = documentCommandInput(TARGET, { command: 'deploy', artifact: { uri: 's3://bucket/k.jar', sha256: SHA, version: 'v2', source: 'x' } }, SETTINGS);
    for (const [name, [value]] of Object.entries(input.Parameters!)) {
      if (name === 'action') continue;
      expect(value).toMatch(new RegExp(DOCUMENT_PARAM_PATTERNS[name as keyof typeof DOCUMENT_PARAM_PATTERNS]));
    }
  });

  test('a long comment is cut to SendCommand\'s 100 characters', () => {
    const input = documentCommandInput(TARGET, { command: 'status' }, { ...SETTINGS, requestedBy: `${'x'.repeat(120)}@host` });
    expect(input.Comment).toHaveLength(100);
  });
});

describe('requireOnline, fleetHosts and send', () => {
  const ssm = mockClient(SSMClient);
  afterEach(() => ssm.reset());
  // Unit files share workers (vitest.config.ts): a mock left in place would answer another file's real client.
  afterAll(() => ssm.restore());
  const client = () => new SSMClient({ region: 'us-east-1' });

  test.each<[InstanceInformation[], RegExp]>([
    [[], /is not registered with Systems Manager, so nothing was sent and the host is unchanged\./],
    [[{ InstanceId: TARGET.instanceId, PingStatus: 'ConnectionLost', LastPingDateTime: new Date('2025-01-01T00:00:00Z') }], /is ConnectionLost \(last ping 2025-01-01T00:00:00\.000Z\)/],
  ])('an instance that is not Online: nothing is sent (%#)', async (list, message) => {
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: list });
    await expect(requireOnline(client(), TARGET)).rejects.toMatchObject({ exitCode: CLI_EXIT_CODES.aws, message: expect.stringMatching(message) });
  });

  test('an Online instance passes', async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [{ InstanceId: TARGET.instanceId, PingStatus: 'Online' }] });
    await expect(requireOnline(client(), TARGET)).resolves.toBeUndefined();
  });

  test('history on a document without the history action says to update the stack', async () => {
    // As the SDK builds it from SSM's 400 answer.
    ssm.on(SendCommandCommand).rejects(
      new SSMServiceException({ name: 'InvalidParameters', message: 'Parameter "action" has a value that is not in allowedValues', $fault: 'client', $metadata: { httpStatusCode: 400 } }),
    );
    const input = documentCommandInput(TARGET, { command: 'history' }, SETTINGS);
    await expect(send(client(), input, 'history')).rejects.toThrow(/Nothing ran on the host\. The stack's document has no 'history' action yet: update the stack/);
  });

  test('fleetHosts asks for the hosts carrying the fleet tag and follows every page, in instance-id order', async () => {
    const fleet: FleetStackTarget = {
      stackName: 'Ec2BlueGreen',
      documentName: 'Doc',
      fleet: { tagKey: 'BlueGreenFleet', tagValue: 'Ec2BlueGreen', maxConcurrency: '1', releaseParameterName: '/p' },
    };
    // Recorded as each call is made: the SDK's paginator reuses one input object for every page.
    const asked: Array<string | undefined> = [];
    ssm.on(DescribeInstanceInformationCommand).callsFake((input: { NextToken?: string; Filters?: unknown }) => {
      asked.push(input.NextToken);
      expect(input.Filters).toEqual([{ Key: 'tag:BlueGreenFleet', Values: ['Ec2BlueGreen'] }]);
      return input.NextToken === undefined
        ? { InstanceInformationList: [{ InstanceId: 'i-0000000000000000b', PingStatus: 'Online' }], NextToken: 'page-2' }
        : { InstanceInformationList: [{ InstanceId: 'i-0000000000000000a', PingStatus: 'ConnectionLost' }] };
    });
    const hosts = await fleetHosts(client(), fleet);
    expect(asked).toEqual([undefined, 'page-2']);
    expect(hosts.map((host) => `${host.InstanceId} ${host.PingStatus}`)).toEqual(['i-0000000000000000a ConnectionLost', 'i-0000000000000000b Online']);
  });
});

