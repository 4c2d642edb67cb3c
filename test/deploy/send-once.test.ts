/**
 * SendCommand at most once (lib/deploy/send-once.ts), with the real AWS SDK on the wire against
 * the loopback SSM stand-in, which can create a command and then lose its answer (a 500, a
 * dropped connection) as SSM can. The instance is registered but not Online, so commands wait
 * (Delayed) and no script runs: what counts is how many commands SSM holds.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { RetryDependencies } from '../../lib/deploy/retry.js';
import { documentRunInput } from '../../lib/deploy/send-command.js';
import { isSameRequest, SEND_SEARCH_MARGIN_SECONDS, sendCommandOnce, SendOutcomeUnknownError } from '../../lib/deploy/send-once.js';
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

let sentBefore: number;
let operationsBefore: number;
/** Each test's request is its own (its comment differs), as two deploys are. */
let testNumber = 0;
let ownComment: string;
beforeEach(() => {
  ownComment = `ec2-bluegreen deploy v2 by ops@laptop #${++testNumber}`;
  sentBefore = ssm.commands.length;
  operationsBefore = ssm.operations.length;
});
afterEach(() => ssm.clearInjectedFailures());

/** Commands SSM created, and operations called, since the test began. */
const created = () => ssm.commands.slice(sentBefore);
const calls = (operation: string) => ssm.operations.slice(operationsBefore).filter((name) => name === operation).length;

/** A clock that moves only when the retries sleep; `aheadMs` ahead of the real one. */
function fakeTime(aheadMs = 0): RetryDependencies & { slept: number[] } {
  let now = Date.now() + aheadMs;
  const slept: number[] = [];
  return { slept, now: () => now, sleep: async (ms) => void (slept.push(ms), (now += ms)), random: () => 0 };
}

const input = (comment = ownComment) =>
  documentRunInput({ documentName: DOCUMENT_NAME, instanceIds: [INSTANCE_ID], deliveryTimeoutSeconds: 300, comment }, {});

describe('sendCommandOnce', () => {
  test('SSM creates the command, then answers 500: the retry finds and adopts it, and SSM holds one command', async () => {
    // GIVEN SSM that loses its answer to the next SendCommand after creating the command
    ssm.failNextAfterHandling('SendCommand');
    const time = fakeTime();

    // WHEN it is sent
    const command = await sendCommandOnce(client, input(), { deadlineMs: time.now() + 60_000, retry: time });

    // THEN there is one command, the one returned, with the comment as the caller wrote it
    expect(created()).toHaveLength(1);
    expect(command.CommandId).toBe(created()[0]!.commandId);
    expect(created()[0]!.comment).toBe(ownComment);
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

  test('answers lost until the deadline and no command shows up: an error that says so, with the comment and the line to look for it', async () => {
    for (let i = 0; i < 20; i++) ssm.failNext('SendCommand', 'InternalServerError', 'An internal error occurred', 500);
    const time = fakeTime();
    const error = await sendCommandOnce(client, input(), { deadlineMs: time.now() + 10_000, retry: time }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SendOutcomeUnknownError);
    const { since } = error as SendOutcomeUnknownError;
    // SSM's answer (its Date) dates the first attempt: about now, by SSM's clock.
    expect(Math.abs(Date.parse(since) - Date.now())).toBeLessThan(5_000);
    expect((error as Error).message).toBe(
      'the answer to SendCommand was lost (InternalServerError: An internal error occurred) and no command of Ec2BlueGreen-DeployDocument-Loopback ' +
        `with the comment "${ownComment}" shows up since ${since}, so it may or may not have been created`,
    );
    expect((error as SendOutcomeUnknownError).findCommand).toBe(
      `aws ssm list-commands --filters key=DocumentName,value=${DOCUMENT_NAME} key=InvokedAfter,value=${since} --query 'Commands[].[CommandId,Status,Comment]' --output text`,
    );
    expect(created()).toHaveLength(0);
    // One search before each send after the first, and one after the last.
    expect(calls('ListCommands')).toBe(calls('SendCommand'));
  });

  test('no time left for another attempt: one last look finds the command the lost answer hid', async () => {
    ssm.failNextAfterHandling('SendCommand');
    const time = fakeTime();
    const command = await sendCommandOnce(client, input(), { deadlineMs: time.now(), retry: time });
    expect(command).toMatchObject({ CommandId: created()[0]!.commandId, Comment: ownComment });
    expect(created()).toHaveLength(1);
    expect(calls('SendCommand')).toBe(1);
  });

  test('another request of the same document (another comment) is not taken for this one: sent again, two commands', async () => {
    // GIVEN a command of the same document from another request, just before
    const other = await sendCommandOnce(client, input('ec2-bluegreen deploy v2 by someone@else'), { deadlineMs: Date.now() + 60_000, retry: fakeTime() });
    // AND SSM refusing this request's first send with a 500 before creating anything
    ssm.failNext('SendCommand', 'InternalServerError', 'An internal error occurred', 500);
    const time = fakeTime();

    const command = await sendCommandOnce(client, input(), { deadlineMs: time.now() + 60_000, retry: time });

    expect(created().map((entry) => entry.commandId)).toEqual([other.CommandId, command.CommandId]);
    expect(command.CommandId).not.toBe(other.CommandId);
    expect(calls('ListCommands')).toBe(1);
  });

  test('the same request sent two seconds before a 500 is an earlier one: SSM\'s answer dates the attempt, so it is sent again', async () => {
    // GIVEN the same request, sent two seconds before
    const earlier = await sendCommandOnce(client, input(), { deadlineMs: Date.now() + 60_000, retry: fakeTime() });
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    // AND SSM failing the next send with a 500 before creating anything
    ssm.failNext('SendCommand', 'InternalServerError', 'An internal error occurred', 500);
    const time = fakeTime();

    const command = await sendCommandOnce(client, input(), { deadlineMs: time.now() + 60_000, retry: time });

    expect(created().map((entry) => entry.commandId)).toEqual([earlier.CommandId, command.CommandId]);
    expect(command.CommandId).not.toBe(earlier.CommandId);
  });

  test(`a dropped connection dates the attempt by this clock, less ${SEND_SEARCH_MARGIN_SECONDS}s: the same request sent a minute before is sent again`, async () => {
    // GIVEN the same request, sent a minute before this one (by the clock of this one)
    const earlier = await sendCommandOnce(client, input(), { deadlineMs: Date.now() + 60_000, retry: fakeTime() });
    // AND a connection dropped before SSM did anything
    ssm.dropNext('SendCommand');
    const time = fakeTime(60_000);

    const command = await sendCommandOnce(client, input(), { deadlineMs: time.now() + 60_000, retry: time });

    expect(created().map((entry) => entry.commandId)).toEqual([earlier.CommandId, command.CommandId]);
    expect(calls('SendCommand')).toBe(3);
  });
});

describe('isSameRequest', () => {
  const fleetInput = documentRunInput(
    { documentName: DOCUMENT_NAME, fleet: { tagKey: 'BlueGreenFleet', tagValue: 'Shop/Fleet', maxConcurrency: '2' }, deliveryTimeoutSeconds: 300, comment: 'deploy v2' },
    { action: ['deploy'], version: ['v2'] },
  );
  /** SSM's record of a send of `fleetInput`: defaults filled in, instance ids empty. */
  const recorded = {
    CommandId: 'c-1',
    DocumentName: DOCUMENT_NAME,
    Comment: 'deploy v2',
    InstanceIds: [],
    Targets: [{ Key: 'tag:BlueGreenFleet', Values: ['Shop/Fleet'] }],
    MaxConcurrency: '2',
    MaxErrors: '0',
    Parameters: { action: ['deploy'], version: ['v2'], healthTimeout: ['120'] },
  };

  test("SSM's record of the request, with the document's defaults filled in, is the same request", () => {
    expect(isSameRequest(recorded, fleetInput)).toBe(true);
  });

  test.each<[string, Record<string, unknown>]>([
    ['another comment', { Comment: 'deploy v2 by someone else' }],
    ['another release', { Parameters: { ...recorded.Parameters, version: ['v3'] } }],
    ['another fleet', { Targets: [{ Key: 'tag:BlueGreenFleet', Values: ['Other/Fleet'] }] }],
    ['instance ids instead of the tag', { InstanceIds: ['i-0123456789abcdef0'] }],
    ['another concurrency', { MaxConcurrency: '1' }],
    ['another document', { DocumentName: 'Other-Document' }],
  ])('%s is another request', (_case, change) => {
    expect(isSameRequest({ ...recorded, ...change }, fleetInput)).toBe(false);
  });
});
