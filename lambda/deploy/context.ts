/**
 * What the single-host and the fleet handlers share: their dependencies (SSM client, settings,
 * logger, clock, sleep), retries that log, and the two rules for an `isComplete` that cannot
 * read the command yet.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { IAM_PROPAGATION_SECONDS, retryReason, type RetryDependencies } from '../../lib/deploy/retry.js';
import { invisibleInvocationLimitSeconds } from '../../lib/deploy/timeouts.js';
import type { Logger } from './log.js';
import { DeployFailedError, type SentCommand } from './resource.js';
import type { DeploySettings } from './settings.js';

export interface HandlerDependencies {
  readonly ssm: SSMClient;
  /** Fleet only, with `settings.uploadLocation`: tags the recorded jars. @default - no tagging */
  readonly s3?: S3Client;
  readonly settings: DeploySettings;
  readonly log: Logger;
  /** Epoch milliseconds. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** In [0, 1), for backoff jitter. */
  readonly random: () => number;
}

/** How long one `isComplete` call retries throttling before it answers "not yet". */
export const IS_COMPLETE_RETRY_MS = 20_000;

export interface HandlerContext extends HandlerDependencies {
  /** The clock, sleep and jitter for `withRetries`, logging each retry of `what`. */
  retrying(what: string): RetryDependencies;
  /**
   * Whether a read that failed past this call's retries is worth asking again on the next
   * `isComplete` (throttling, a service error, a dropped connection, a role still propagating); logs it if so.
   */
  readLater(error: unknown, command: SentCommand): boolean;
  /** Throws once SSM should have shown the command for a while and still does not. */
  notVisibleTooLong(command: SentCommand, elapsedSeconds: number): void;
}

export function handlerContext(deps: HandlerDependencies): HandlerContext {
  const { log, settings } = deps;
  return {
    ...deps,
    retrying: (what) => ({
      now: deps.now,
      sleep: deps.sleep,
      random: deps.random,
      onRetry: (error, reason, attempt, delayMs) => log.warn(`${what}: retrying`, { reason, attempt, delayMs, error }),
    }),

    readLater(error, command) {
      const reason = retryReason(error);
      const stillPropagating = deps.now() - command.sentAt < IAM_PROPAGATION_SECONDS * 1000;
      if (reason === 'throttled' || reason === 'service-error' || reason === 'connection' || (reason === 'iam-propagation' && stillPropagating)) {
        log.warn('cannot read the command now; asking again next time', { commandId: command.commandId, error });
        return true;
      }
      return false;
    },

    notVisibleTooLong(command, elapsedSeconds) {
      const limit = invisibleInvocationLimitSeconds(settings.deliveryTimeoutSeconds);
      if (elapsedSeconds <= limit) return;
      const where = command.instanceId ?? `the hosts tagged ${command.fleet?.tagKey}=${command.fleet?.tagValue}`;
      throw new DeployFailedError(
        `Systems Manager has no invocation of command ${command.commandId} on ${where} ${elapsedSeconds}s ` +
          `after it was sent, so the deploy never started; the ${command.instanceId === undefined ? 'fleet' : 'host'} is unchanged. Deploy again.`,
      );
    },
  };
}
