/**
 * Which AWS errors pass if one waits, and how long to wait. The classification and the delays
 * are pure; `withRetries` takes its clock and sleep as arguments.
 */

/** Why an error is worth another try, or undefined when it is not. */
export type RetryReason = 'throttled' | 'iam-propagation' | 'service-error' | 'connection';

interface AwsErrorLike {
  readonly name?: string;
  /** Node's code for a failed connection (`ECONNRESET`, ...). */
  readonly code?: string;
  readonly $fault?: 'client' | 'server';
  readonly $retryable?: { readonly throttling?: boolean };
  readonly $metadata?: { readonly httpStatusCode?: number };
}

const THROTTLING = new Set(['ThrottlingException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded']);
/**
 * A role or policy created in the same stack update takes a few seconds to reach every IAM
 * endpoint: the first calls can be denied, or the new role's credentials not yet recognized.
 */
const IAM_PROPAGATION = new Set(['AccessDeniedException', 'AccessDenied', 'UnrecognizedClientException', 'InvalidClientTokenId']);

/**
 * No answer at all: the connection failed, was dropped or timed out (the names and codes the
 * SDK's own retries treat as transient). The request may or may not have reached the service.
 */
const CONNECTION = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

export function retryReason(error: unknown): RetryReason | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const aws = error as AwsErrorLike;
  if ((aws.name !== undefined && THROTTLING.has(aws.name)) || aws.$retryable?.throttling === true) return 'throttled';
  if (aws.name !== undefined && IAM_PROPAGATION.has(aws.name)) return 'iam-propagation';
  if (aws.$fault === 'server' || (aws.$metadata?.httpStatusCode ?? 0) >= 500) return 'service-error';
  const answered = aws.$metadata?.httpStatusCode !== undefined;
  if (!answered && ((aws.name !== undefined && CONNECTION.has(aws.name)) || (aws.code !== undefined && CONNECTION.has(aws.code)))) return 'connection';
  return undefined;
}

/**
 * Whether a request that failed with `error` may still have taken effect: unless the service
 * answered with a refusal (a 4xx status), it may have acted and its answer been lost (a 5xx
 * after the work was done, a dropped connection, an answer the SDK could not read).
 */
export function mayHaveTakenEffect(error: unknown): boolean {
  const status = typeof error === 'object' && error !== null ? (error as AwsErrorLike).$metadata?.httpStatusCode : undefined;
  return !(status !== undefined && status >= 400 && status < 500);
}

/** How long IAM propagation may plausibly take; a denial that lasts longer is a real one. */
export const IAM_PROPAGATION_SECONDS = 120;

/**
 * Exponential backoff with jitter: attempt 0 waits 0.5 to 1 s, doubling up to 10 to 20 s.
 * `random` is in [0, 1).
 */
export function backoffDelayMs(attempt: number, random: number): number {
  const ceiling = Math.min(20_000, 1000 * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

export interface RetryDependencies {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
  /**
   * How long an IAM denial counts as a role still propagating: a role made with the stack (the
   * custom resource's) is retried; a caller whose rights are what they are (the operator command)
   * passes 0, so a denial fails at once. @default IAM_PROPAGATION_SECONDS
   */
  readonly iamPropagationSeconds?: number;
  /** Told about each retried error. */
  readonly onRetry?: (error: unknown, reason: RetryReason, attempt: number, delayMs: number) => void;
}

/**
 * Runs `operation` until it succeeds, fails with an error that is not worth retrying, or the
 * deadline (epoch ms) would pass; then rethrows the last error. IAM denials are retried only
 * for `iamPropagationSeconds` from the first call.
 */
export async function withRetries<T>(operation: () => Promise<T>, deadlineMs: number, deps: RetryDependencies): Promise<T> {
  const started = deps.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      const reason = retryReason(error);
      if (reason === undefined) throw error;
      if (reason === 'iam-propagation' && deps.now() - started >= (deps.iamPropagationSeconds ?? IAM_PROPAGATION_SECONDS) * 1000) throw error;
      const delayMs = backoffDelayMs(attempt, deps.random());
      if (deps.now() + delayMs >= deadlineMs) throw error;
      deps.onRetry?.(error, reason, attempt, delayMs);
      await deps.sleep(delayMs);
    }
  }
}
