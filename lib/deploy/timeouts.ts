/**
 * How the deploy's timeouts nest, in seconds. Pure: the construct checks them at synth time and
 * the handlers read the same numbers at run time, so the two cannot drift apart.
 *
 *   CloudFormation's wait (serviceTimeout, at most one hour)
 *   ├─ onEvent: wait for the instance to be Online (onlineWait), then SendCommand
 *   └─ the provider's waiter (totalTimeout), polling isComplete every queryInterval
 *      └─ the command: waits up to deliveryTimeout to start, then runs up to executionTimeout
 *         (which holds the wait for the host's deploy lock, DOCUMENT_LOCK_WAIT_SECONDS)
 */

/**
 * How long a deploy or rollback sent through the deploy document waits for the host's deploy lock
 * while another operation holds it (a Jenkins deploy, a deploy from a terminal), before it fails
 * with the engine's "locked" status. Failing at once would fail the stack update, and a stack
 * rollback that met the lock would end in UPDATE_ROLLBACK_FAILED. The document passes it to the
 * engine (`BLUEGREEN_LOCK_WAIT`), and its execution timeout includes it, so the nesting below
 * holds with it: enough for an ordinary deploy on the host to finish.
 */
export const DOCUMENT_LOCK_WAIT_SECONDS = 300;

/** CloudFormation never waits longer than this for a custom resource. */
export const CLOUDFORMATION_MAX_WAIT_SECONDS = 3600;
/** SendCommand's `TimeoutSeconds` range. */
export const SSM_DELIVERY_TIMEOUT_RANGE_SECONDS = { min: 30, max: 2_592_000 } as const;
/** The longest a Lambda function may run. */
export const LAMBDA_MAX_TIMEOUT_SECONDS = 900;
/** Time `onEvent` needs after its online wait: one SendCommand with its retries. */
export const SEND_ALLOWANCE_SECONDS = 60;

export interface DeploymentTimeouts {
  /** The document step's `timeoutSeconds`: how long the deploy itself may run on the host. */
  readonly executionTimeoutSeconds: number;
  /** SendCommand's `TimeoutSeconds`: how long the command may wait to start on the host. */
  readonly deliveryTimeoutSeconds: number;
  /** How long `onEvent` waits for the instance to be Online in Systems Manager. */
  readonly onlineWaitSeconds: number;
  /** The provider's `queryInterval`: how often `isComplete` runs. */
  readonly queryIntervalSeconds: number;
  /** The provider's `totalTimeout`: how long `isComplete` may keep answering "not yet". */
  readonly totalTimeoutSeconds: number;
  /** The custom resource's `serviceTimeout`: how long CloudFormation waits for an answer. */
  readonly serviceTimeoutSeconds: number;
}

/** The `onEvent` function's timeout: its online wait plus one send. */
export function onEventTimeoutSeconds(onlineWaitSeconds: number): number {
  return onlineWaitSeconds + SEND_ALLOWANCE_SECONDS;
}

/**
 * The longest a command can take before SSM itself reports a final status: it waits up to the
 * delivery timeout to start and then runs up to the execution timeout.
 */
export function commandLifetimeSeconds(timeouts: Pick<DeploymentTimeouts, 'executionTimeoutSeconds' | 'deliveryTimeoutSeconds'>): number {
  return timeouts.deliveryTimeoutSeconds + timeouts.executionTimeoutSeconds;
}

/**
 * What is wrong with a set of timeouts, one sentence per problem naming the settings and their
 * values; empty when they nest. Each rule keeps a failure's reason readable: when an outer
 * timeout fires first, CloudFormation only says "Operation timed out" (or waits an hour).
 */
export function timeoutProblems(timeouts: DeploymentTimeouts): string[] {
  const t = timeouts;
  const problems: string[] = [];
  const positive = Object.entries(t).filter(([, value]) => !(Number.isFinite(value) && value > 0));
  for (const [name, value] of positive) problems.push(`${name} must be a positive number of seconds, got ${value}.`);
  if (positive.length > 0) return problems;

  const delivery = SSM_DELIVERY_TIMEOUT_RANGE_SECONDS;
  if (t.deliveryTimeoutSeconds < delivery.min || t.deliveryTimeoutSeconds > delivery.max) {
    problems.push(`deliveryTimeout (${t.deliveryTimeoutSeconds}s) must be from ${delivery.min}s to ${delivery.max}s, as SendCommand accepts.`);
  }
  if (onEventTimeoutSeconds(t.onlineWaitSeconds) > LAMBDA_MAX_TIMEOUT_SECONDS) {
    problems.push(
      `onlineWait (${t.onlineWaitSeconds}s) plus ${SEND_ALLOWANCE_SECONDS}s to send the command must fit in a Lambda ` +
        `function's ${LAMBDA_MAX_TIMEOUT_SECONDS}s; use at most ${LAMBDA_MAX_TIMEOUT_SECONDS - SEND_ALLOWANCE_SECONDS}s.`,
    );
  }
  const lifetime = commandLifetimeSeconds(t) + t.queryIntervalSeconds;
  if (lifetime >= t.totalTimeoutSeconds) {
    problems.push(
      `the document's executionTimeout (${t.executionTimeoutSeconds}s) + deliveryTimeout (${t.deliveryTimeoutSeconds}s) ` +
        `+ queryInterval (${t.queryIntervalSeconds}s) = ${lifetime}s must be less than totalTimeout (${t.totalTimeoutSeconds}s), ` +
        `so that SSM reports why a command failed before the provider gives up on it.`,
    );
  }
  const cloudFormationNeeds = onEventTimeoutSeconds(t.onlineWaitSeconds) + t.totalTimeoutSeconds;
  if (cloudFormationNeeds > t.serviceTimeoutSeconds) {
    problems.push(
      `onlineWait (${t.onlineWaitSeconds}s) + ${SEND_ALLOWANCE_SECONDS}s to send + totalTimeout (${t.totalTimeoutSeconds}s) ` +
        `= ${cloudFormationNeeds}s must not exceed serviceTimeout (${t.serviceTimeoutSeconds}s), ` +
        `so that the provider answers CloudFormation before CloudFormation stops waiting.`,
    );
  }
  if (t.serviceTimeoutSeconds > CLOUDFORMATION_MAX_WAIT_SECONDS) {
    problems.push(`serviceTimeout (${t.serviceTimeoutSeconds}s) must be at most ${CLOUDFORMATION_MAX_WAIT_SECONDS}s: CloudFormation waits no longer.`);
  }
  return problems;
}

/**
 * How long after sending `isComplete` keeps accepting "no such invocation" from SSM. SSM makes
 * an invocation visible within seconds; past the delivery timeout it would have to exist.
 */
export function invisibleInvocationLimitSeconds(deliveryTimeoutSeconds: number): number {
  return deliveryTimeoutSeconds + 60;
}
