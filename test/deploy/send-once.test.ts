/**
 * SendCommand at most once (lib/deploy/send-once.ts), with the real AWS SDK on the wire against
 * the loopback SSM stand-in, which can create a command and then lose its answer (a 500, a
 * dropped connection) as SSM can. The instance is registered but not Online, so commands wait
 * (Delayed) and no script runs: what counts is how many commands SSM holds.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { RetryDependencies } from '../../lib/deploy/retry.js';
import { commentWithToken, sendCommandOnce, SendOutcomeUnknownError, sendTokenMark } from '../../lib/deploy/send-once.js';
import { COMMENT_MAX_CHARS, documentRunInput } from '../../lib/deploy/send-command.js';
import { LoopbackSsm } from '../support/ssm-server.js';

const INSTANCE_ID = 'i-0123456789abcdef0';
const DOCUMENT_NAME = 'Ec2BlueGreen-DeployDocument-Loopback';

let ssm: LoopbackSsm;
let client: SSMClient;

beforeAll(async () => {
  ssm = await LoopbackSsm.start({
    documents: {
      [DOCUMENT_NAME]: { schemaVersion: '2.2', mainSteps: [{ action: 'aws:runShellScript', name: 'noop', inputs: { runCommand: ['true'] } }] },
    },
    instances: { [INSTANCE_ID]: 'ConnectionLost' },
    environment: {},
  });
  client = new SSMClient({ region: 'us-east-1', endpoint: ssm.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});

afterAll(async () => {
  client?.destroy();
  await ssm?.close();
});

let sentBefore: number;
let operationsBefore: number;
beforeEach(() => {
  sentBefore = ssm.commands.length;
  operationsBefore = ssm.operations.length;
});
afterEach(() => ssm.clearInjectedFailures());

/** Commands SSM created, and operations called, since the test began. */
const created = () => ssm.commands.slice(sentBefore);
const calls = (operation: string) => ssm.operations.slice(operationsBefore).filter((name) => name === operation).length;

/** A clock that moves only when the retries sleep. */
function fakeTime(): RetryDependencies & { slept: number[] } {
  let now = Date.now();
  const slept: number[] = [];
  return { slept, now: () => now, sleep: async (ms) => void (slept.push(ms), (now += ms)), random: () => 0 };
}

const input = (comment = 'ec2-bluegreen deploy v2 by ops@laptop') =>
  documentRunInput({ documentName: DOCUMENT_NAME, instanceIds: [INSTANCE_ID], deliveryTimeoutSeconds: 300, comment }, {});

describe('sendCommandOnce', () => {
  test('SSM creates the command, then answers 500: the retry finds and adopts it, and SSM holds one command', async () => {
    // GIVEN SSM that loses its answer to the next SendCommand after creating the command
    ssm.failNextAfterHandling('SendCommand');
    const time = fakeTime();

    // WHEN it is sent
    const command = await sendCommandOnce(client, input(), { deadlineMs: time.now() + 60_000, retry: time });

    // THEN there is one command, the one returned, with the request's token in its comment
    expect(created()).toHaveLength(1);
    expect(command.CommandId).toBe(created()[0]!.commandId);
    expect(created()[0]!.comment).toMatch(/^ec2-bluegreen deploy v2 by ops@laptop \[send [0-9a-f]{16}\]$/);
    // The SDK did not send it again on its own: one SendCommand, then the search.
    expect(calls('SendCommand')).toBe(1);
    expect(calls('ListCommands')).toBeGreaterThanOrEqual(1);
  });

  test('the connection drops after SSM created the command: still one command', async () => {
    ssm.dropNextAfterHandling('SendCommand');
    const time = fakeTime();
    const command = await sendCommandOnce(client, input(), { deadlineMs: time.now() + 60_000, retry: time });
    expect(created()).toHaveLength(1);
    expect(command.CommandId).toBe(created()[0]!.commandId);
    expect(calls('SendCommand')).toBe(1);
  });

  test('a 500 before anything was created: sent again once, after finding nothing', async () => {
    ssm.failNext('SendCommand', 'InternalServerError', 'An internal error occurred', 500);
    const time = fakeTime();
    const command = await sendCommandOnce(client, input(), { deadlineMs: time.now() + 60_000, retry: time });
    expect(created()).toHaveLength(1);
    expect(command.CommandId).toBe(created()[0]!.commandId);
    expect(calls('SendCommand')).toBe(2);
    expect(calls('ListCommands')).toBe(1);
  });

  test('throttling is a refusal: sent again without a search', async () => {
    ssm.failNext('SendCommand', 'ThrottlingException', 'Rate exceeded');
    const time = fakeTime();
    await sendCommandOnce(client, input(), { deadlineMs: time.now() + 60_000, retry: time });
    expect(created()).toHaveLength(1);
    expect(calls('SendCommand')).toBe(2);
    expect(calls('ListCommands')).toBe(0);
  });

  test('a refusal that waiting does not cure is thrown as SSM gave it, after one send and no search', async () => {
    const time = fakeTime();
    const unknownInstance = { ...input(), InstanceIds: ['i-0ffffffffffffffff'] };
    await expect(sendCommandOnce(client, unknownInstance, { deadlineMs: time.now() + 60_000, retry: time })).rejects.toMatchObject({ name: 'InvalidInstanceId' });
    expect(created()).toHaveLength(0);
    expect(calls('SendCommand')).toBe(1);
    expect(calls('ListCommands')).toBe(0);
  });

  test('answers lost until the deadline and no command shows up: an error that says so, with the token to look for', async () => {
    for (let i = 0; i < 20; i++) ssm.failNext('SendCommand', 'InternalServerError', 'An internal error occurred', 500);
    const time = fakeTime();
    const error = await sendCommandOnce(client, input(), { deadlineMs: time.now() + 10_000, retry: time, token: '0123456789abcdef' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SendOutcomeUnknownError);
    expect((error as Error).message).toMatch(/^the answer to SendCommand was lost \(InternalServerError: An internal error occurred\) and no command of Ec2BlueGreen-DeployDocument-Loopback with "\[send 0123456789abcdef\]"/);
    expect((error as SendOutcomeUnknownError).findCommand).toContain("ends_with(Comment, '[send 0123456789abcdef]')");
    expect(created()).toHaveLength(0);
    // One search before each send after the first, and one after the last.
    expect(calls('ListCommands')).toBe(calls('SendCommand'));
  });

  test('no time left for another attempt: one last look finds the command the lost answer hid', async () => {
    ssm.failNextAfterHandling('SendCommand');
    const time = fakeTime();
    const command = await sendCommandOnce(client, input(), { deadlineMs: time.now(), retry: time, token: 'feedfacecafebeef' });
    expect(command).toMatchObject({ CommandId: created()[0]!.commandId, Comment: expect.stringMatching(/ \[send feedfacecafebeef\]$/) });
    expect(created()).toHaveLength(1);
    expect(calls('SendCommand')).toBe(1);
  });
});

describe('the comment', () => {
  test('ends with the token; a long one is cut so that both fit SendCommand\'s 100 characters', () => {
    expect(commentWithToken('deploy v2', 'abc')).toBe(`deploy v2${sendTokenMark('abc')}`);
    const long = commentWithToken('x'.repeat(120), '0123456789abcdef');
    expect(long).toHaveLength(COMMENT_MAX_CHARS);
    expect(long).toMatch(/^x+… \[send 0123456789abcdef\]$/);
  });
});
