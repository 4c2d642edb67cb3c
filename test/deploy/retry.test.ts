import { describe, expect, test } from 'vitest';
import { backoffDelayMs, IAM_PROPAGATION_SECONDS, mayHaveTakenEffect, retryReason, withRetries } from '../../lib/deploy/retry.js';

/** An error shaped as the AWS SDK v3 throws them. */
function awsError(name: string, fault: 'client' | 'server' = 'client', extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), { name, $fault: fault, $metadata: { httpStatusCode: fault === 'server' ? 500 : 400 }, ...extra });
}

describe('retryReason', () => {
  test.each([
    ['ThrottlingException', 'throttled'],
    ['TooManyRequestsException', 'throttled'],
    ['AccessDeniedException', 'iam-propagation'],
    ['UnrecognizedClientException', 'iam-propagation'],
    ['InvalidClientTokenId', 'iam-propagation'],
    ['InternalServerError', 'service-error'],
  ])('%s -> %s', (name, reason) => {
    expect(retryReason(awsError(name, name === 'InternalServerError' ? 'server' : 'client'))).toBe(reason);
  });

  test('the SDK marking an error as throttling is enough', () => {
    expect(retryReason(awsError('SomethingElse', 'client', { $retryable: { throttling: true } }))).toBe('throttled');
  });

  test.each(['InvalidInstanceId', 'InvalidDocument', 'InvalidParameters', 'InvocationDoesNotExist'])('%s is not retried', (name) => {
    expect(retryReason(awsError(name))).toBeUndefined();
  });

  test.each(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED'])('no answer at all (Node code %s) is a connection failure, retried', (code) => {
    expect(retryReason(Object.assign(new Error('socket hang up'), { code }))).toBe('connection');
  });

  test("the SDK's TimeoutError is a connection failure; a name alone does not make an answered request one", () => {
    expect(retryReason(Object.assign(new Error('timed out'), { name: 'TimeoutError' }))).toBe('connection');
    expect(retryReason(awsError('RequestTimeout'))).toBeUndefined();
  });

  test('non-errors are not retried', () => {
    expect(retryReason('boom')).toBeUndefined();
    expect(retryReason(null)).toBeUndefined();
  });
});

describe('mayHaveTakenEffect', () => {
  test('a refusal (4xx) took no effect; a failure of the service, no answer, or an unreadable one may have', () => {
    expect(mayHaveTakenEffect(awsError('ThrottlingException'))).toBe(false);
    expect(mayHaveTakenEffect(awsError('InvalidInstanceId'))).toBe(false);
    expect(mayHaveTakenEffect(awsError('InternalServerError', 'server'))).toBe(true);
    expect(mayHaveTakenEffect(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(true);
    expect(mayHaveTakenEffect(new Error('SendCommand answered without a command id'))).toBe(true);
  });
});

describe('backoffDelayMs', () => {
  test('doubles from 0.5-1 s up to 10-20 s', () => {
    expect([0, 1, 2, 3, 4, 5, 9].map((attempt) => backoffDelayMs(attempt, 0))).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect([0, 1, 5].map((attempt) => backoffDelayMs(attempt, 0.999_999))).toEqual([1000, 2000, 20_000]);
  });
});

describe('withRetries', () => {
  /** A clock that only moves when someone sleeps. */
  function fakeTime() {
    let now = 1_000_000;
    const slept: number[] = [];
    return {
      slept,
      deps: { now: () => now, sleep: async (ms: number) => void (slept.push(ms), (now += ms)), random: () => 0 },
    };
  }

  test('retries throttling until it passes', async () => {
    const time = fakeTime();
    let calls = 0;
    const result = await withRetries(async () => (++calls < 3 ? Promise.reject(awsError('ThrottlingException')) : 'ok'), Infinity, time.deps);
    expect(result).toBe('ok');
    expect(time.slept).toEqual([500, 1000]);
  });

  test('rethrows an error that is not worth retrying at once', async () => {
    const time = fakeTime();
    await expect(withRetries(() => Promise.reject(awsError('InvalidDocument')), Infinity, time.deps)).rejects.toThrow('InvalidDocument happened');
    expect(time.slept).toEqual([]);
  });

  test('gives up on throttling before the deadline would pass', async () => {
    const time = fakeTime();
    const deadline = time.deps.now() + 2000;
    await expect(withRetries(() => Promise.reject(awsError('ThrottlingException')), deadline, time.deps)).rejects.toThrow('ThrottlingException');
    expect(time.slept).toEqual([500, 1000]);
  });

  test(`retries an IAM denial for ${IAM_PROPAGATION_SECONDS}s only, then it is real`, async () => {
    const time = fakeTime();
    await expect(withRetries(() => Promise.reject(awsError('AccessDeniedException')), Infinity, time.deps)).rejects.toThrow('AccessDenied');
    const waited = time.slept.reduce((sum, ms) => sum + ms, 0);
    expect(waited).toBeGreaterThanOrEqual(IAM_PROPAGATION_SECONDS * 1000);
    expect(waited).toBeLessThan((IAM_PROPAGATION_SECONDS + 20) * 1000);
  });

  test('tells about each retry', async () => {
    const time = fakeTime();
    const told: string[] = [];
    let calls = 0;
    await withRetries(async () => (++calls < 2 ? Promise.reject(awsError('AccessDeniedException')) : 'ok'), Infinity, {
      ...time.deps,
      onRetry: (_error, reason, attempt, delayMs) => told.push(`${reason} ${attempt} ${delayMs}`),
    });
    expect(told).toEqual(['iam-propagation 0 500']);
  });
});
