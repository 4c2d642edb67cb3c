/**
 * The real deploy handlers (lambda/deploy/index.ts) as an end-to-end test runs them: the real
 * SDK on the wire to a loopback SSM endpoint, their settings from the environment as in Lambda,
 * and their JSON log lines (lambda/deploy/log.ts) kept out of the test output, readable, and
 * printed after a failed test.
 */
import { afterEach, vi } from 'vitest';
import type { CustomResourceEvent, IsCompleteResult, OnEventResult } from '../../lambda/deploy/resource.js';
import { DEPLOY_FUNCTION_ENV } from '../../lib/contract.js';

export type Handlers = {
  onEvent: (event: CustomResourceEvent, context?: { getRemainingTimeInMillis(): number }) => Promise<OnEventResult>;
  isComplete: (event: CustomResourceEvent & OnEventResult) => Promise<IsCompleteResult>;
};

/**
 * Imports the handlers with the Lambda environment pointing at `ssmUrl` (dummy credentials; the
 * SDK ignores AWS_ACCESS_KEY_ID while AWS_PROFILE is set), read once when the module loads.
 * `vi.unstubAllEnvs()` undoes the environment.
 */
export async function loadDeployHandlers(ssmUrl: string, deliveryTimeoutSeconds: number, logs: HandlerLogs): Promise<Handlers> {
  const environment: Record<string, string | undefined> = {
    AWS_PROFILE: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_ENDPOINT_URL_SSM: ssmUrl,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    [DEPLOY_FUNCTION_ENV.onlineWaitSeconds]: '60',
    [DEPLOY_FUNCTION_ENV.onlinePollSeconds]: '0.5',
    [DEPLOY_FUNCTION_ENV.deliveryTimeoutSeconds]: String(deliveryTimeoutSeconds),
  };
  for (const [name, value] of Object.entries(environment)) vi.stubEnv(name, value);
  logs.capture();
  return (await import('../../lambda/deploy/index.js')) as Handlers;
}

export class HandlerLogs {
  /** Every JSON line the handlers wrote since `capture`, parsed. */
  readonly lines: Array<Record<string, unknown>> = [];
  private restore: (() => void) | undefined;

  /** Registers the print-on-failure hook: call at the top level of a test file. */
  constructor() {
    afterEach((context) => {
      if (context.task.result?.state === 'fail') console.log(this.lines.map((line) => JSON.stringify(line)).join('\n'));
    });
  }

  /** From now on, stdout writes that are handler log lines are kept instead of printed. */
  capture(): void {
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      if (!text.startsWith('{"time":')) return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
      for (const line of text.split('\n').filter((entry) => entry !== '')) this.lines.push(JSON.parse(line) as Record<string, unknown>);
      return true;
    }) as typeof process.stdout.write;
    this.restore = () => (process.stdout.write = write as typeof process.stdout.write);
  }

  /** Puts stdout back. */
  stop(): void {
    this.restore?.();
    this.restore = undefined;
  }
}
