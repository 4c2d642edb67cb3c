import { describe, expect, test } from 'vitest';
import {
  CLOUDFORMATION_MAX_WAIT_SECONDS,
  commandLifetimeSeconds,
  invisibleInvocationLimitSeconds,
  onEventTimeoutSeconds,
  timeoutProblems,
  type DeploymentTimeouts,
} from '../../lib/deploy/timeouts.js';

/** The construct's defaults with the stack's document (execution timeout 2499 s). */
const DEFAULTS: DeploymentTimeouts = {
  executionTimeoutSeconds: 2499,
  deliveryTimeoutSeconds: 300,
  onlineWaitSeconds: 300,
  queryIntervalSeconds: 5,
  totalTimeoutSeconds: 3000,
  serviceTimeoutSeconds: 3600,
};

describe('timeoutProblems', () => {
  test('the defaults nest', () => {
    expect(timeoutProblems(DEFAULTS)).toEqual([]);
  });

  test('a command that can outlive the provider is refused, naming each part and the sum', () => {
    const problems = timeoutProblems({ ...DEFAULTS, executionTimeoutSeconds: 2700 });
    expect(problems).toEqual([
      "the document's executionTimeout (2700s) + deliveryTimeout (300s) + queryInterval (5s) = 3005s must be less than " +
        'totalTimeout (3000s), so that SSM reports why a command failed before the provider gives up on it.',
    ]);
  });

  test('execution timeout equal to the total timeout is refused (strictly less)', () => {
    const problems = timeoutProblems({ ...DEFAULTS, deliveryTimeoutSeconds: 30, queryIntervalSeconds: 1, executionTimeoutSeconds: 2969 });
    expect(problems).toHaveLength(1);
    expect(timeoutProblems({ ...DEFAULTS, deliveryTimeoutSeconds: 30, queryIntervalSeconds: 1, executionTimeoutSeconds: 2968 })).toEqual([]);
  });

  test('the online wait and the provider must fit in what CloudFormation waits', () => {
    expect(timeoutProblems({ ...DEFAULTS, serviceTimeoutSeconds: 3300 })).toEqual([
      'onlineWait (300s) + 60s to send + totalTimeout (3000s) = 3360s must not exceed serviceTimeout (3300s), ' +
        'so that the provider answers CloudFormation before CloudFormation stops waiting.',
    ]);
  });

  test('a service timeout over one hour is refused', () => {
    expect(timeoutProblems({ ...DEFAULTS, serviceTimeoutSeconds: 4000 })).toEqual([
      `serviceTimeout (4000s) must be at most ${CLOUDFORMATION_MAX_WAIT_SECONDS}s: CloudFormation waits no longer.`,
    ]);
  });

  test('a delivery timeout outside what SendCommand accepts is refused', () => {
    expect(timeoutProblems({ ...DEFAULTS, deliveryTimeoutSeconds: 10 })[0]).toMatch(/^deliveryTimeout \(10s\) must be from 30s/);
  });

  test('an online wait that cannot fit in a Lambda function is refused', () => {
    expect(timeoutProblems({ ...DEFAULTS, onlineWaitSeconds: 850, totalTimeoutSeconds: 2600 })[0]).toMatch(
      /^onlineWait \(850s\) plus 60s to send the command must fit in a Lambda function's 900s; use at most 840s\.$/,
    );
  });

  test.each([0, -1, Number.NaN])('a non-positive value (%s) is named and nothing else is checked', (bad) => {
    expect(timeoutProblems({ ...DEFAULTS, queryIntervalSeconds: bad })).toEqual([
      `queryIntervalSeconds must be a positive number of seconds, got ${bad}.`,
    ]);
  });

  test('several problems are all reported', () => {
    expect(timeoutProblems({ ...DEFAULTS, executionTimeoutSeconds: 3500, serviceTimeoutSeconds: 7200 })).toHaveLength(2);
  });
});

describe('timeout arithmetic', () => {
  test('onEvent needs its online wait plus one send', () => {
    expect(onEventTimeoutSeconds(300)).toBe(360);
  });

  test('a command ends at the latest after its delivery and execution timeouts', () => {
    expect(commandLifetimeSeconds({ executionTimeoutSeconds: 2199, deliveryTimeoutSeconds: 300 })).toBe(2499);
  });

  test('an invocation SSM never shows is given up a minute after the delivery timeout', () => {
    expect(invisibleInvocationLimitSeconds(300)).toBe(360);
  });
});
