/**
 * The operator command's send (cli/command.ts `send`), with the real AWS SDK on the wire against
 * the loopback SSM stand-in, when SSM creates the command and then loses its answer: the command
 * must follow the one command SSM created, never create a second. The instance is registered but
 * not Online, so the command waits (Delayed) and no script runs.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { send } from '../../cli/command.js';
import { CLI_EXIT_CODES, CliError } from '../../cli/errors.js';
import { documentRunInput } from '../../lib/deploy/send-command.js';
import { NOOP_DOCUMENT_NAME, NOOP_INSTANCE_ID, startNoopSsm } from '../support/noop-ssm.js';
import type { LoopbackSsm } from '../support/ssm-server.js';

const INSTANCE_ID = NOOP_INSTANCE_ID;
const DOCUMENT_NAME = NOOP_DOCUMENT_NAME;

let ssm: LoopbackSsm;
let client: SSMClient;

beforeAll(async () => {
  ({ ssm, client } = await startNoopSsm());
});

afterAll(async () => {
  client?.destroy();
  await ssm?.close();
});

afterEach(() => ssm.clearInjectedFailures());

/** A clock that moves only when the retries sleep. */
function fakeTime() {
  let now = Date.now();
  return { now: () => now, sleep: async (ms: number) => void (now += ms), random: () => 0 };
}

/** Each test's request is its own (its comment differs), as two deploys are. */
let testNumber = 0;
const input = () =>
  documentRunInput({ documentName: DOCUMENT_NAME, instanceIds: [INSTANCE_ID], deliveryTimeoutSeconds: 300, comment: `ec2-bluegreen deploy v2 by ops@laptop #${++testNumber}` }, {});

describe("the operator command's send", () => {
  test('SSM creates the command, then answers 500: one command, whose id the command follows', async () => {
    const before = ssm.commands.length;
    ssm.failNextAfterHandling('SendCommand');
    const commandId = await send(client, input(), 'deploy', fakeTime());
    expect(ssm.commands.slice(before).map((command) => command.commandId)).toEqual([commandId]);
  });

  test('an answer lost for good: the message says the deploy may run, and how to find it', async () => {
    const before = ssm.commands.length;
    for (let i = 0; i < 40; i++) ssm.failNext('SendCommand', 'InternalServerError', 'An internal error occurred', 500);
    const error = await send(client, input(), 'deploy', fakeTime()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(CLI_EXIT_CODES.aws);
    expect((error as Error).message).toMatch(
      /^Systems Manager may or may not have accepted Ec2BlueGreen-DeployDocument-Loopback for i-0123456789abcdef0: .* The deploy may still run: look for it with aws ssm list-commands --filters key=DocumentName,value=Ec2BlueGreen-DeployDocument-Loopback key=InvokedAfter,value=\S+Z /,
    );
    expect(ssm.commands.slice(before)).toHaveLength(0);
  });

  test('the connection drops after SSM created the command: still one command', async () => {
    const before = ssm.commands.length;
    ssm.dropNextAfterHandling('SendCommand');
    const commandId = await send(client, input(), 'deploy', fakeTime());
    expect(ssm.commands.slice(before).map((command) => command.commandId)).toEqual([commandId]);
  });

  test.each<[string, string, string]>([
    ['a denial (the operator may not send)', 'AccessDeniedException', 'User is not authorized to perform: ssm:SendCommand'],
    ['an instance SSM does not know', 'InvalidInstanceId', 'Instances [[i-0123456789abcdef0]] not in a valid state'],
  ])('%s is a refusal: sent once, never looked for, nothing ran, exit 9', async (_case, type, message) => {
    const before = ssm.commands.length;
    const operations = ssm.operations.length;
    ssm.failNext('SendCommand', type, message);
    const error = await send(client, input(), 'deploy', fakeTime()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(CLI_EXIT_CODES.aws);
    expect((error as Error).message).toBe(
      `Systems Manager refused to run ${DOCUMENT_NAME} on ${INSTANCE_ID} (${type}: ${message}). Nothing ran on the host.`,
    );
    expect(ssm.operations.slice(operations)).toEqual(['SendCommand']);
    expect(ssm.commands.slice(before)).toHaveLength(0);
  });
});
