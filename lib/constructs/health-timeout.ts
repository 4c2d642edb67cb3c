/**
 * The health timeout on the construct side: a `Duration` on every construct's props, turned into
 * the plain seconds the document and the host read where it crosses to them.
 */
import { Duration } from 'aws-cdk-lib';
import { DEFAULT_HEALTH_TIMEOUT_SECONDS, MAX_HEALTH_TIMEOUT_SECONDS } from '../contract.js';

/** How long a new slot may take to become healthy when the props do not say. */
export const DEFAULT_HEALTH_TIMEOUT = Duration.seconds(DEFAULT_HEALTH_TIMEOUT_SECONDS);

/**
 * `healthTimeout` as whole seconds from 1 to `MAX_HEALTH_TIMEOUT_SECONDS`, the range the document's
 * `healthTimeout` parameter accepts; throws naming `owner` and the value otherwise. It must be
 * known at synth time: the document and the host's first-release record hold it as text.
 */
export function checkedHealthTimeoutSeconds(owner: string, healthTimeout: Duration): number {
  if (healthTimeout.isUnresolved()) {
    throw new Error(`${owner}: healthTimeout must be known at synth time (it is written into the deploy document and the host's release record); give Duration.seconds(N) with N from 1 to ${MAX_HEALTH_TIMEOUT_SECONDS}`);
  }
  const seconds = healthTimeout.toSeconds({ integral: false });
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_HEALTH_TIMEOUT_SECONDS) {
    const human = healthTimeout.toHumanString();
    const got = human === `${seconds} seconds` ? human : `${human} = ${seconds} seconds`;
    throw new Error(`${owner}: healthTimeout must be whole seconds from 1 to ${MAX_HEALTH_TIMEOUT_SECONDS}, got ${got}`);
  }
  return seconds;
}
