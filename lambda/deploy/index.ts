/**
 * Entry points of the deploy custom resource (CDK Provider framework): `onEvent` and
 * `isComplete`, wired to the shared SSM client and the settings in the function's environment.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DEPLOY_HANDLERS } from '../../lib/contract.js';
import { s3, ssm } from './clients.js';
import { createHandlers } from './handlers.js';
import { jsonLogger } from './log.js';
import { readDeploySettings } from './settings.js';

const handlers = createHandlers({
  ssm,
  s3,
  settings: readDeploySettings(process.env),
  log: jsonLogger({ function: process.env.AWS_LAMBDA_FUNCTION_NAME }),
  now: Date.now,
  sleep: (ms) => sleep(ms),
  random: Math.random,
});

export const onEvent = handlers.onEvent;
export const isComplete = handlers.isComplete;

// The construct names these exports as the functions' handlers; a rename must fail to compile.
({ onEvent, isComplete }) satisfies Record<(typeof DEPLOY_HANDLERS)[keyof typeof DEPLOY_HANDLERS], unknown>;
