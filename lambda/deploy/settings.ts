/** The deploy functions' settings, read once from their environment (lib/contract.ts DEPLOY_FUNCTION_ENV). */
import { DEPLOY_FUNCTION_ENV } from '../../lib/contract.js';
import { DEFAULT_DEPLOY_SETTINGS } from '../../lib/deploy/defaults.js';
import { parseUploadLocation, type UploadLocation } from '../../lib/deploy/retention.js';

export interface DeploySettings {
  readonly onlineWaitSeconds: number;
  readonly onlinePollSeconds: number;
  readonly deliveryTimeoutSeconds: number;
  /** Quoted in the message when a command times out. */
  readonly executionTimeoutSeconds?: number;
  readonly outputLogGroupName?: string;
  /** Fleet only: where uploaded jars live, whose recorded ones must not expire. @default - none */
  readonly uploadLocation?: UploadLocation;
}

/**
 * Reads the settings; a variable that is absent takes its default (lib/deploy/defaults.ts), so
 * a function started without them behaves as the construct's. Throws naming the variable when
 * one is not a positive number.
 */
export function readDeploySettings(env: Readonly<Record<string, string | undefined>>): DeploySettings {
  const seconds = (name: string, fallback?: number): number | undefined => {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0) {
      throw new Error(`environment variable ${name}=${JSON.stringify(raw)} must be a positive number of seconds`);
    }
    return value;
  };
  const outputLogGroupName = env[DEPLOY_FUNCTION_ENV.outputLogGroupName]?.trim();
  const uploadLocationUri = env[DEPLOY_FUNCTION_ENV.uploadLocation]?.trim();
  const uploadLocation = uploadLocationUri === undefined || uploadLocationUri === '' ? undefined : parseUploadLocation(uploadLocationUri);
  if (uploadLocationUri !== undefined && uploadLocationUri !== '' && uploadLocation === undefined) {
    throw new Error(`environment variable ${DEPLOY_FUNCTION_ENV.uploadLocation}=${JSON.stringify(uploadLocationUri)} must be s3://BUCKET/PREFIX/`);
  }
  return {
    onlineWaitSeconds: seconds(DEPLOY_FUNCTION_ENV.onlineWaitSeconds, DEFAULT_DEPLOY_SETTINGS.onlineWaitSeconds)!,
    onlinePollSeconds: seconds(DEPLOY_FUNCTION_ENV.onlinePollSeconds, DEFAULT_DEPLOY_SETTINGS.onlinePollSeconds)!,
    deliveryTimeoutSeconds: seconds(DEPLOY_FUNCTION_ENV.deliveryTimeoutSeconds, DEFAULT_DEPLOY_SETTINGS.deliveryTimeoutSeconds)!,
    executionTimeoutSeconds: seconds(DEPLOY_FUNCTION_ENV.executionTimeoutSeconds),
    outputLogGroupName: outputLogGroupName === '' ? undefined : outputLogGroupName,
    ...(uploadLocation === undefined ? {} : { uploadLocation }),
  };
}
