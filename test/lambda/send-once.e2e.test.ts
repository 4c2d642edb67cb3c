/**
 * The deploy custom resource's send, end to end with the real AWS SDK against the loopback SSM
 * stand-in, when SSM creates the command and then loses its answer (a 500, a dropped connection):
 * the handler's retry must adopt that command, not send a second one that would deploy twice.
 * End-to-end because the stand-in runs the document's script (a stub that only succeeds) with bash.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createHandlers } from '../../lambda/deploy/handlers.js';
import type { CustomResourceEvent, IsCompleteResult } from '../../lambda/deploy/resource.js';
import { jsonLogger } from '../../lambda/deploy/log.js';
import { DEPLOYMENT_PROPERTIES as P, DOCUMENT_PARAMS } from '../../lib/contract.js';
import { LoopbackSsm, type DocumentParameter } from '../support/ssm-server.js';

const INSTANCE_ID = 'i-0123456789abcdef0';
const DOCUMENT_NAME = 'Ec2BlueGreen-DeployDocument-Loopback';
const SHA = 'ab'.repeat(32);

let ssm: LoopbackSsm;
let client: SSMClient;
const logLines: string[] = [];

beforeAll(async () => {
  // A document with the deploy document's parameters whose script only succeeds: what is counted
  // here is commands, not deploys.
  const parameter: DocumentParameter = { type: 'String', default: '', interpolationType: 'ENV_VAR' };
  ssm = await LoopbackSsm.start({
    documents: {
      [DOCUMENT_NAME]: {
        schemaVersion: '2.2',
        parameters: Object.fromEntries(Object.values(DOCUMENT_PARAMS).map((name) => [name, parameter])),
        mainSteps: [{ action: 'aws:runShellScript', name: 'deploy', inputs: { runCommand: ['echo "deployed $SSM_version"'] } }],
      },
    },
    instances: { [INSTANCE_ID]: 'Online' },
    environment: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  client = new SSMClient({ region: 'us-east-1', endpoint: ssm.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});

afterAll(async () => {
  client?.destroy();
  await ssm?.close();
});

afterEach((context) => {
  if (context.task.result?.state === 'fail') console.log(logLines.join('\n'));
  ssm.clearInjectedFailures();
});

const handlers = () =>
  createHandlers({
    ssm: client,
    settings: { onlineWaitSeconds: 30, onlinePollSeconds: 0.5, deliveryTimeoutSeconds: 60 },
    log: jsonLogger({}, (line) => logLines.push(line)),
    now: () => Date.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    random: () => 0,
  });

let requestNumber = 0;
function updateEvent(version: string): CustomResourceEvent {
  return {
    RequestType: 'Update',
    LogicalResourceId: 'Deployment',
    RequestId: `request-${++requestNumber}`,
    StackId: 'arn:aws:cloudformation:us-east-1:111111111111:stack/Ec2BlueGreen/5b6e8c60-0000-0000-0000-000000000000',
    ResourceType: 'Custom::BlueGreenDeployment',
    PhysicalResourceId: 'bluegreen-deployment/Deployment',
    ResourceProperties: {
      ServiceToken: 'arn:aws:lambda:us-east-1:111111111111:function:onEvent',
      [P.instanceId]: INSTANCE_ID,
      [P.documentName]: DOCUMENT_NAME,
      [P.artifactUri]: '/opt/app.jar',
      [P.sha256]: SHA,
      [P.version]: version,
    },
  };
}

/** onEvent, then isComplete until the deploy ends, as the Provider framework runs them. */
async function deploy(version: string): Promise<{ commandId: string; result: IsCompleteResult }> {
  const event = updateEvent(version);
  const sent = await handlers().onEvent(event);
  for (;;) {
    const result = await handlers().isComplete({ ...event, ...sent });
    if (result.IsComplete) return { commandId: sent.BlueGreenCommand!.commandId, result };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('a deploy whose SendCommand answer is lost', () => {
  test.each<[string, () => void]>([
    ['a 500 after SSM created the command', () => ssm.failNextAfterHandling('SendCommand')],
    ['a connection dropped after SSM created the command', () => ssm.dropNextAfterHandling('SendCommand')],
  ])('%s: the retry adopts that command, so SSM holds exactly one, and the deploy completes on it', async (_case, loseTheAnswer) => {
    // GIVEN SSM that will lose its answer to the next SendCommand
    const before = ssm.commands.length;
    loseTheAnswer();

    // WHEN CloudFormation updates the deployment
    const { commandId, result } = await deploy(`v${requestNumber + 1}`);

    // THEN one command was created, the one the resource followed to success
    const created = ssm.commands.slice(before);
    expect(created.map((command) => command.commandId)).toEqual([commandId]);
    expect(result).toMatchObject({ IsComplete: true, Data: { CommandId: commandId } });
    expect(ssm.invocations.filter((invocation) => invocation.commandId === commandId).map((invocation) => invocation.stdout)).toEqual([
      `deployed ${created[0]!.parameters.version}\n`,
    ]);
  });
});
