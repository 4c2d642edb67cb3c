/**
 * The loopback SSM endpoint's fleet behaviour, seen through the real SDK: tag targets, rate
 * controls, the statuses SSM's User Guide gives ("Understanding command statuses"), the lists'
 * filters and pages, and String parameters. A tiny document stands in for the deploy: it sleeps
 * and fails where the instance's own environment says so.
 */
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  GetParameterCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  PutParameterCommand,
  paginateDescribeInstanceInformation,
  paginateListCommandInvocations,
  paginateListCommands,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, test } from 'vitest';
import {
  LoopbackSsm,
  pluginOutput,
  SSM_PLUGIN_OUTPUT_LIMIT,
  type CommandDocumentContent,
  type LoopbackSsmOptions,
} from './ssm-server.js';

const FLEET_TAG = 'BlueGreenFleet';
const HOSTS = ['i-0000000000000000a', 'i-0000000000000000b', 'i-0000000000000000c', 'i-0000000000000000d'];

/** Sleeps `SSM_sleep` seconds, prints its host's name, fails when the host's FAIL is set. */
const STEP: CommandDocumentContent = {
  schemaVersion: '2.2',
  parameters: { sleep: { type: 'String', default: '0.3', allowedPattern: '^[0-9.]+$', interpolationType: 'ENV_VAR' } },
  mainSteps: [
    {
      action: 'aws:runShellScript',
      name: 'step',
      inputs: { runCommand: ['sleep "$SSM_sleep"', 'echo "on $HOST_NAME"', 'if [ -n "${FAIL:-}" ]; then echo "broken here" >&2; exit 5; fi'] },
    },
  ],
};

const servers: LoopbackSsm[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(options: Partial<LoopbackSsmOptions> = {}): Promise<{ ssm: LoopbackSsm; client: SSMClient }> {
  const ssm = await LoopbackSsm.start({
    documents: { Step: STEP },
    environment: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    ...options,
  });
  servers.push(ssm);
  const client = new SSMClient({ endpoint: ssm.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  return { ssm, client };
}

/** Registers `count` fleet hosts; `failing` ones fail the step. */
function registerFleet(server: LoopbackSsm, count: number, failing: readonly string[] = []): void {
  for (const id of HOSTS.slice(0, count)) {
    server.register(id, 'Online', { [FLEET_TAG]: 'app' }, { HOST_NAME: id, ...(failing.includes(id) ? { FAIL: '1' } : {}) });
  }
}

async function sendToFleet(client: SSMClient, rate: { MaxConcurrency?: string; MaxErrors?: string } = {}, value = 'app') {
  const sent = await client.send(new SendCommandCommand({ DocumentName: 'Step', Targets: [{ Key: `tag:${FLEET_TAG}`, Values: [value] }], ...rate }));
  return sent.Command!;
}

async function commandOf(client: SSMClient, commandId: string) {
  const listed = await client.send(new ListCommandsCommand({ CommandId: commandId }));
  return listed.Commands![0]!;
}

async function untilDone(client: SSMClient, commandId: string) {
  for (;;) {
    const command = await commandOf(client, commandId);
    if (!['Pending', 'InProgress'].includes(command.Status!)) return command;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('Run Command to a fleet by tag', () => {
  test('runs on every tagged instance, MaxConcurrency at a time, and the command ends Success', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 4);
    server.register('i-0000000000000000e', 'Online', { [FLEET_TAG]: 'other' });
    const sent = await sendToFleet(client, { MaxConcurrency: '2' });
    // Targets resolve after SendCommand answers.
    expect(sent).toMatchObject({ Status: 'Pending', TargetCount: 0, MaxConcurrency: '2', MaxErrors: '0', InstanceIds: [] });
    expect(sent.Targets).toEqual([{ Key: `tag:${FLEET_TAG}`, Values: ['app'] }]);

    const done = await untilDone(client, sent.CommandId!);

    expect(done).toMatchObject({ Status: 'Success', StatusDetails: 'Success', TargetCount: 4, CompletedCount: 4, ErrorCount: 0, DeliveryTimedOutCount: 0 });
    expect(done.RequestedDateTime).toBeInstanceOf(Date);
    expect(server.invocations.map((entry) => entry.instanceId)).toEqual(HOSTS);
    expect(server.peakConcurrency(sent.CommandId)).toBe(2);
    // The queue starts with one instance and widens as invocations complete.
    const [first, ...rest] = server.invocations;
    expect(rest.every((entry) => entry.startedAt!.getTime() >= first!.endedAt!.getTime())).toBe(true);
  });

  test('a percentage is of the targets: 50% of 4 hosts runs 2 at once', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 4);
    const sent = await sendToFleet(client, { MaxConcurrency: '50%' });
    await untilDone(client, sent.CommandId!);
    expect(server.peakConcurrency(sent.CommandId)).toBe(2);
  });

  test('MaxErrors 0: after the first failure no further host starts; those end Cancelled (Terminated)', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 3, [HOSTS[1]!]);
    const sent = await sendToFleet(client, { MaxConcurrency: '1', MaxErrors: '0' });

    const done = await untilDone(client, sent.CommandId!);

    expect(done).toMatchObject({ Status: 'Failed', StatusDetails: 'Failed', TargetCount: 3, CompletedCount: 3, ErrorCount: 1 });
    const listed = await client.send(new ListCommandInvocationsCommand({ CommandId: sent.CommandId }));
    expect(listed.CommandInvocations!.map((entry) => [entry.InstanceId, entry.Status, entry.StatusDetails])).toEqual([
      [HOSTS[0], 'Success', 'Success'],
      [HOSTS[1], 'Failed', 'Failed'],
      [HOSTS[2], 'Cancelled', 'Terminated'],
    ]);
    const untouched = await client.send(new GetCommandInvocationCommand({ CommandId: sent.CommandId, InstanceId: HOSTS[2] }));
    expect(untouched).toMatchObject({ Status: 'Cancelled', StatusDetails: 'Terminated', ResponseCode: -1, ExecutionStartDateTime: '' });
  });

  test('invocations already running when MaxErrors is passed run to the end', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 4, [HOSTS[0]!]);
    // Host a fails alone first (the queue starts with one), then the rest never start.
    const sent = await sendToFleet(client, { MaxConcurrency: '4', MaxErrors: '0' });
    await untilDone(client, sent.CommandId!);
    expect(server.invocations.map((entry) => entry.statusDetails)).toEqual(['Failed', 'Terminated', 'Terminated', 'Terminated']);

    // b and c run side by side after a: b's failure stops the roll-out before d, and c still runs to its end.
    const again = await start();
    registerFleet(again.ssm, 4, [HOSTS[1]!, HOSTS[2]!]);
    const second = await sendToFleet(again.client, { MaxConcurrency: '2', MaxErrors: '0' });
    const done = await untilDone(again.client, second.CommandId!);
    expect(again.ssm.invocations.map((entry) => entry.statusDetails)).toEqual(['Success', 'Failed', 'Failed', 'Terminated']);
    expect(done).toMatchObject({ Status: 'Failed', ErrorCount: 2 });
  });

  test('a failure within MaxErrors lets the roll-out finish; the command ends Failed (Incomplete)', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 3, [HOSTS[0]!]);
    const sent = await sendToFleet(client, { MaxConcurrency: '1', MaxErrors: '1' });
    const done = await untilDone(client, sent.CommandId!);
    expect(done).toMatchObject({ Status: 'Failed', StatusDetails: 'Incomplete', CompletedCount: 3, ErrorCount: 1 });
  });

  test('no instance with the tag: no invocations, and the command ends Success (NoInstancesInTag)', async () => {
    const { client } = await start();
    const sent = await sendToFleet(client, {}, 'nobody');
    const done = await untilDone(client, sent.CommandId!);
    expect(done).toMatchObject({ Status: 'Success', StatusDetails: 'NoInstancesInTag', TargetCount: 0 });
    const listed = await client.send(new ListCommandInvocationsCommand({ CommandId: sent.CommandId }));
    expect(listed.CommandInvocations).toEqual([]);
  });

  test('a tagged instance that is not Online is sent to, waits Delayed, and runs once it is Online', async () => {
    const { ssm: server, client } = await start();
    server.register(HOSTS[0]!, 'ConnectionLost', { [FLEET_TAG]: 'app' }, { HOST_NAME: 'late' });
    const sent = await sendToFleet(client);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.invocations[0]!.status).toBe('Delayed');
    server.setPingStatus(HOSTS[0]!, 'Online');
    const done = await untilDone(client, sent.CommandId!);
    expect(done.Status).toBe('Success');
    expect(server.invocations[0]!.stdout).toBe('on late\n');
  });

  test('an instance that registers after the command was sent is not one of its targets', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 1);
    const sent = await sendToFleet(client);
    server.register(HOSTS[1]!, 'Online', { [FLEET_TAG]: 'app' });
    const done = await untilDone(client, sent.CommandId!);
    expect(done.TargetCount).toBe(1);
    expect(server.invocations.map((entry) => entry.instanceId)).toEqual([HOSTS[0]]);
  });

  test('each instance runs with its own environment', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 2);
    const sent = await sendToFleet(client, { MaxConcurrency: '2' });
    await untilDone(client, sent.CommandId!);
    expect(server.invocations.map((entry) => entry.stdout)).toEqual([`on ${HOSTS[0]}\n`, `on ${HOSTS[1]}\n`]);
  });

  test('refuses rate controls that break the API patterns, and both InstanceIds and Targets', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 1);
    for (const rate of [{ MaxConcurrency: '0' }, { MaxConcurrency: '101%' }, { MaxErrors: '-1' }]) {
      await expect(sendToFleet(client, rate)).rejects.toMatchObject({ name: 'ValidationException' });
    }
    await expect(
      client.send(new SendCommandCommand({ DocumentName: 'Step', InstanceIds: [HOSTS[0]!], Targets: [{ Key: `tag:${FLEET_TAG}`, Values: ['app'] }] })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
  });
});

describe('the lists', () => {
  test('DescribeInstanceInformation filters by tag, tag key and ping status', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 3);
    server.register('i-0000000000000000e', 'Online', { Other: 'x' });
    const first = await client.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: `tag:${FLEET_TAG}`, Values: ['app'] }], MaxResults: 5 }));
    expect(first.InstanceInformationList!.map((entry) => entry.InstanceId)).toEqual(HOSTS.slice(0, 3));
    const online = await client.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'PingStatus', Values: ['Online'] }, { Key: 'tag-key', Values: ['Other'] }] }));
    expect(online.InstanceInformationList!.map((entry) => entry.InstanceId)).toEqual(['i-0000000000000000e']);
  });

  test('ListCommandInvocations: by instance without a command, filtered, paged, with plugin output', async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 3, [HOSTS[2]!]);
    const before = new Date(Date.now() - 1000).toISOString();
    const sent = await sendToFleet(client, { MaxConcurrency: '3', MaxErrors: '3' });
    await untilDone(client, sent.CommandId!);

    const byInstance = await client.send(new ListCommandInvocationsCommand({ InstanceId: HOSTS[1], Details: true }));
    expect(byInstance.CommandInvocations!.map((entry) => entry.CommandId)).toEqual([sent.CommandId]);
    expect(byInstance.CommandInvocations![0]!.CommandPlugins![0]).toMatchObject({ Name: 'step', Status: 'Success', ResponseCode: 0, Output: `on ${HOSTS[1]}\n` });
    expect(byInstance.CommandInvocations![0]!.CommandPlugins![0]!.ResponseStartDateTime).toBeInstanceOf(Date);
    const failed = await client.send(new ListCommandInvocationsCommand({ InstanceId: HOSTS[2], Details: true }));
    expect(failed.CommandInvocations![0]!.CommandPlugins![0]!.Output).toBe(`on ${HOSTS[2]}\n\n----------ERROR-------\nbroken here\n`);

    const filtered = await client.send(
      new ListCommandInvocationsCommand({ Filters: [{ key: 'InvokedAfter', value: before }, { key: 'DocumentName', value: 'Step' }] }),
    );
    expect(filtered.CommandInvocations).toHaveLength(3);
    const later = await client.send(new ListCommandInvocationsCommand({ Filters: [{ key: 'InvokedAfter', value: new Date(Date.now() + 60_000).toISOString() }] }));
    expect(later.CommandInvocations).toEqual([]);

    const page1 = await client.send(new ListCommandInvocationsCommand({ CommandId: sent.CommandId, MaxResults: 2 }));
    expect(page1.CommandInvocations).toHaveLength(2);
    const page2 = await client.send(new ListCommandInvocationsCommand({ CommandId: sent.CommandId, MaxResults: 2, NextToken: page1.NextToken }));
    expect(page2.CommandInvocations!.map((entry) => entry.InstanceId)).toEqual([HOSTS[2]]);
    expect(page2.NextToken).toBeUndefined();
  });

  test("the SDK's paginators read every page of DescribeInstanceInformation, ListCommands and ListCommandInvocations", async () => {
    const { ssm: server, client } = await start();
    registerFleet(server, 4);
    const first = await sendToFleet(client, { MaxConcurrency: '4' });
    await untilDone(client, first.CommandId!);
    const second = await sendToFleet(client, { MaxConcurrency: '4' });
    await untilDone(client, second.CommandId!);
    const pagesOf = async <Page>(pages: AsyncIterable<Page>): Promise<Page[]> => {
      const all: Page[] = [];
      for await (const page of pages) all.push(page);
      return all;
    };

    const hosts = await pagesOf(paginateDescribeInstanceInformation({ client, pageSize: 3 }, { Filters: [{ Key: `tag:${FLEET_TAG}`, Values: ['app'] }] }));
    expect(hosts.map((page) => page.InstanceInformationList!.length)).toEqual([3, 1]);
    expect(hosts.flatMap((page) => page.InstanceInformationList!.map((entry) => entry.InstanceId)).sort()).toEqual(HOSTS);

    const invocations = await pagesOf(paginateListCommandInvocations({ client, pageSize: 3 }, { CommandId: second.CommandId }));
    expect(invocations.map((page) => page.CommandInvocations!.length)).toEqual([3, 1]);
    expect(invocations.flatMap((page) => page.CommandInvocations!.map((entry) => entry.InstanceId)).sort()).toEqual(HOSTS);

    const commands = await pagesOf(paginateListCommands({ client, pageSize: 1 }, {}));
    expect(commands.map((page) => page.Commands!.map((entry) => entry.CommandId))).toEqual([[first.CommandId], [second.CommandId]]);
  });

  test("a plugin's Output is cut to 2,500 characters with SSM Agent's markers", () => {
    const cut = pluginOutput('o'.repeat(3000), 'e'.repeat(3000));
    expect(cut.length).toBeLessThanOrEqual(SSM_PLUGIN_OUTPUT_LIMIT);
    expect(cut).toMatch(/^o+\n---Output truncated---\n----------ERROR-------\ne+\n---Error truncated----$/);
    expect(pluginOutput('o'.repeat(3000), '')).toMatch(/^o{2477}\n---Output truncated---$/);
    expect(pluginOutput('short', '')).toBe('short');
  });
});

describe('String parameters', () => {
  test('Get and Put: versions count up, Overwrite is needed to change one, unknown names are ParameterNotFound', async () => {
    const { client } = await start({ parameters: { '/app/release': '# nothing yet' } });
    const initial = await client.send(new GetParameterCommand({ Name: '/app/release' }));
    expect(initial.Parameter).toMatchObject({ Name: '/app/release', Type: 'String', Value: '# nothing yet', Version: 1, DataType: 'text' });
    expect(initial.Parameter!.LastModifiedDate).toBeInstanceOf(Date);

    await expect(client.send(new PutParameterCommand({ Name: '/app/release', Value: 'v2', Type: 'String' }))).rejects.toMatchObject({ name: 'ParameterAlreadyExists' });
    const put = await client.send(new PutParameterCommand({ Name: '/app/release', Value: 'v2', Type: 'String', Overwrite: true }));
    expect(put).toMatchObject({ Version: 2, Tier: 'Standard' });
    expect((await client.send(new GetParameterCommand({ Name: '/app/release' }))).Parameter).toMatchObject({ Value: 'v2', Version: 2 });

    await expect(client.send(new GetParameterCommand({ Name: '/app/nothing' }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
    expect(await client.send(new PutParameterCommand({ Name: '/app/new', Value: 'x', Type: 'String' }))).toMatchObject({ Version: 1 });
    await expect(client.send(new PutParameterCommand({ Name: '/app/new', Value: '', Overwrite: true }))).rejects.toMatchObject({ name: 'ValidationException' });
  });
});
