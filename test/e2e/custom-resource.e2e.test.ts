/**
 * The deploy custom resource end to end on this machine: the real handler modules
 * (lambda/deploy/index.ts) and the real AWS SDK v3 on the wire, against a loopback SSM endpoint
 * (test/support/ssm-server.ts) that runs the deploy document's script, taken from the
 * synthesized stack, against a real local host (Nginx, JVMs, the bluegreen engine).
 *
 * CloudFormation's side is played by this file: it sends Create/Update/Delete events shaped as
 * CloudFormation sends them, and polls isComplete as the Provider framework's waiter does.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { CustomResourceEvent } from '../../lambda/deploy/resource.js';
import { DEPLOYMENT_ATTRIBUTES as A, DEPLOYMENT_PROPERTIES as P } from '../../lib/contract.js';
import { formatSummary, startLoad, type LoadReport, type LoadRun } from '../../scripts/lib/load.js';
import { documentContent as synthesizedContent, synthesize } from '../constructs/synth.js';
import { buildJar, LocalHost, PROJECT_DIR, TEST_JAVA_OPTS } from '../support/host.js';
import { LoopbackSsm, SSM_OUTPUT_LIMITS, type CommandDocumentContent } from '../support/ssm-server.js';
import { HandlerLogs, loadDeployHandlers, type Handlers } from '../support/deploy-handlers.js';

const PORTS = { nginx: 18300, blue: 18301, green: 18302, ssm: 18303 };
const INSTANCE_ID = 'i-0123456789abcdef0';
const DOCUMENT_NAME = 'Ec2BlueGreen-DeployDocument-Loopback';
/** The Provider framework's queryInterval, shortened: the waiter polls isComplete this often. */
const QUERY_INTERVAL_MS = 250;
const LOAD = { keepAliveConnections: 16, newConnectionWorkers: 2, slowRequestEvery: 40, slowMs: 800, thinkMs: 5 };

interface Release {
  readonly jar: string;
  readonly sha256: string;
  readonly version: string;
  readonly healthTimeoutSeconds?: number;
}

/** What CloudFormation saw: success with the resource's attributes, or failure with its reason. */
type Outcome =
  | { readonly ok: true; readonly physicalResourceId: string; readonly data: Record<string, string>; readonly ms: number }
  | { readonly ok: false; readonly reason: string; readonly ms: number };

let host: LocalHost;
let ssm: LoopbackSsm;
let handlers: Handlers;
let documentContent: CommandDocumentContent;
let releases: Record<'v1' | 'v2' | 'v3' | 'broken' | 'slow', Release>;
let load: LoadRun | undefined;
const figures: string[] = [];

function release(version: string, jar: string, healthTimeoutSeconds?: number): Release {
  return { jar, sha256: createHash('sha256').update(readFileSync(jar)).digest('hex'), version, healthTimeoutSeconds };
}

beforeAll(async () => {
  // The document exactly as the stack synthesizes it: parameters, patterns and script.
  const { template } = synthesize();
  documentContent = synthesizedContent(template) as CommandDocumentContent;

  releases = {
    v1: release('v1', buildJar('v1')),
    v2: release('v2', buildJar('v2')),
    v3: release('v3', buildJar('v3')),
    broken: release('v4-broken', buildJar('v4-broken', { behaviour: 'never-healthy' }), 3),
    slow: release('v5-slow', buildJar('v5-slow', { startDelayMs: 20_000 }), 60),
  };

  host = new LocalHost({ nginx: PORTS.nginx, blue: PORTS.blue, green: PORTS.green }).up();
  ssm = await LoopbackSsm.start({
    port: PORTS.ssm,
    documents: { [DOCUMENT_NAME]: documentContent },
    // Not registered yet: the first Create has to wait for it.
    instances: {},
    invocationLagMs: 300,
    environment: {
      PATH: `${join(PROJECT_DIR, 'assets', 'instance', 'bin')}:${process.env.PATH}`,
      HOME: process.env.HOME ?? '/root',
      BLUEGREEN_CONF: host.conf,
      BLUEGREEN_JAVA_OPTS: TEST_JAVA_OPTS,
    },
  });

  handlers = await loadDeployHandlers(ssm.url, 30, handlerLogs);
});

const handlerLogs = new HandlerLogs();

afterAll(async () => {
  handlerLogs.stop();
  vi.unstubAllEnvs();
  await load?.stop();
  await ssm?.close();
  host?.destroy();
  if (figures.length > 0) console.log(`[custom resource e2e]\n  ${figures.join('\n  ')}`);
});

let requestNumber = 0;

function cfnEvent(
  requestType: CustomResourceEvent['RequestType'],
  properties: Record<string, string>,
  old?: { physicalResourceId: string; properties: Record<string, string> },
): CustomResourceEvent {
  return {
    RequestType: requestType,
    LogicalResourceId: 'Deployment',
    RequestId: `request-${++requestNumber}`,
    StackId: 'arn:aws:cloudformation:us-east-1:111111111111:stack/Ec2BlueGreen/5b6e8c60-0000-0000-0000-000000000000',
    ResourceType: 'Custom::BlueGreenDeployment',
    ResourceProperties: properties,
    ...(old === undefined ? {} : { PhysicalResourceId: old.physicalResourceId }),
    ...(old === undefined || requestType === 'Delete' ? {} : { OldResourceProperties: old.properties }),
  };
}

/** The resource's properties for a release, as CloudFormation passes them (all strings). */
function propertiesOf(r: Release): Record<string, string> {
  return {
    ServiceToken: 'arn:aws:lambda:us-east-1:111111111111:function:Ec2BlueGreen-DeploymentProviderframeworkonEvent',
    [P.instanceId]: INSTANCE_ID,
    [P.documentName]: DOCUMENT_NAME,
    [P.artifactUri]: r.jar,
    [P.sha256]: r.sha256,
    [P.version]: r.version,
    ...(r.healthTimeoutSeconds === undefined ? {} : { [P.healthTimeout]: String(r.healthTimeoutSeconds) }),
  };
}

/** One resource operation as the Provider framework runs it: onEvent, then isComplete until done. */
async function runOperation(event: CustomResourceEvent, maxWaitMs = 60_000): Promise<Outcome> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const sent = await handlers.onEvent(event, { getRemainingTimeInMillis: () => 360_000 });
    const waiting = { ...event, ...sent };
    while (performance.now() - started < maxWaitMs) {
      const result = await handlers.isComplete(waiting);
      if (result.IsComplete) return { ok: true, physicalResourceId: sent.PhysicalResourceId, data: { ...result.Data }, ms: ms() };
      await sleep(QUERY_INTERVAL_MS);
    }
    return { ok: false, reason: 'Operation timed out', ms: ms() };
  } catch (error) {
    return { ok: false, reason: (error as Error).message, ms: ms() };
  }
}

let physicalResourceId = '';
let liveProperties: Record<string, string> = {};

/** An Update from the live properties to `to`'s, as CloudFormation sends it; remembers what went live. */
async function update(to: Release, label: string): Promise<Outcome> {
  const properties = propertiesOf(to);
  const outcome = await runOperation(cfnEvent('Update', properties, { physicalResourceId, properties: liveProperties }));
  figures.push(`${label}: ${outcome.ok ? 'ok' : 'FAILED'} in ${(outcome.ms / 1000).toFixed(2)} s`);
  if (outcome.ok) {
    expect(outcome.physicalResourceId).toBe(physicalResourceId);
    liveProperties = properties;
  }
  return outcome;
}

function expectSuccess(outcome: Outcome, liveSlot: string, version: string): void {
  expect(outcome.ok ? '' : outcome.reason).toBe('');
  if (!outcome.ok) return;
  expect(outcome.data[A.liveSlot]).toBe(liveSlot);
  expect(outcome.data[A.version]).toBe(version);
  expect(outcome.data[A.commandId]).toMatch(/^[0-9a-f-]{36}$/);
}

function lastInvocation() {
  return ssm.invocations.at(-1)!;
}

describe('the deploy custom resource, end to end', () => {
  test('Create waits for the instance to come Online, then deploys v1', async () => {
    // The instance boots: unknown to SSM, then registered but not yet connected, then Online.
    let onlineAt = Number.POSITIVE_INFINITY;
    setTimeout(() => ssm.setPingStatus(INSTANCE_ID, 'ConnectionLost'), 1000);
    setTimeout(() => {
      onlineAt = Date.now();
      ssm.setPingStatus(INSTANCE_ID, 'Online');
    }, 2500);
    // A role created in the same stack update is not usable at once.
    ssm.failNext('DescribeInstanceInformation', 'AccessDeniedException', 'User is not authorized to perform: ssm:DescribeInstanceInformation');

    const outcome = await runOperation(cfnEvent('Create', propertiesOf(releases.v1)));

    expectSuccess(outcome, 'blue', 'v1');
    physicalResourceId = outcome.ok ? outcome.physicalResourceId : '';
    liveProperties = propertiesOf(releases.v1);
    expect(outcome.ms).toBeGreaterThanOrEqual(2500);
    figures.push(`Create v1 (instance Online after 2.5 s): ok in ${(outcome.ms / 1000).toFixed(2)} s`);
    // Sent exactly once, and only after the instance was Online.
    expect(ssm.operations.filter((operation) => operation === 'SendCommand')).toHaveLength(1);
    expect(lastInvocation().requestedAt.getTime()).toBeGreaterThanOrEqual(onlineAt);
    // It asked again and again while the instance was not Online, and read the invocation before it was visible.
    expect(ssm.operations.filter((operation) => operation === 'DescribeInstanceInformation').length).toBeGreaterThan(3);
    expect(ssm.operations).toContain('ListCommandInvocations');
    expect(lastInvocation().parameters).toMatchObject({ action: 'deploy', artifactUri: releases.v1.jar, sha256: releases.v1.sha256, version: 'v1' });
    // Structured logs: one JSON object per line, each step with its fields.
    expect(handlerLogs.lines.map((line) => line.message)).toEqual(
      expect.arrayContaining(['onEvent', 'DescribeInstanceInformation: retrying', 'waiting for the instance to be Online', 'deploy sent', 'invocation not visible yet', 'deploy succeeded']),
    );
    expect(handlerLogs.lines.find((line) => line.message === 'deploy succeeded')).toMatchObject({ level: 'INFO', LiveSlot: 'blue', Version: 'v1', CommandId: lastInvocation().commandId });
    expect(await host.servedVersion()).toBe('v1');
  });

  describe('under load', () => {
    beforeAll(() => {
      load = startLoad({ baseUrl: host.url, ...LOAD });
    });

    test('Update to v2 deploys it; the same Update again is a quick no-op', async () => {
      await sleep(500);
      const first = await update(releases.v2, 'Update v1 -> v2');
      expectSuccess(first, 'green', 'v2');
      expect(await host.servedVersion()).toBe('v2');
      const again = await update(releases.v2, 'Update v2 -> v2 (again)');
      expectSuccess(again, 'green', 'v2');
      expect(lastInvocation().stdout).toMatch(/v2 is already live on green; nothing to do/);
    });

    test('a stack rollback after a good deploy switches back to the warm standby, quickly; twice is a no-op', async () => {
      expectSuccess(await update(releases.v3, 'Update v2 -> v3'), 'blue', 'v3');
      // Another resource of the same stack update failed: CloudFormation sends the old properties.
      const rollback = await update(releases.v2, 'Rollback Update v3 -> v2 (warm standby)');
      expectSuccess(rollback, 'green', 'v2');
      expect(lastInvocation().stdout).toMatch(/v2 is the warm standby on green/);
      expect(lastInvocation().stdout).not.toMatch(/\] start /);
      const again = await update(releases.v2, 'Rollback Update v3 -> v2 (again)');
      expectSuccess(again, 'green', 'v2');
      expect(await host.servedVersion()).toBe('v2');
    });

    test('Update to a broken jar fails with a readable reason while v2 keeps serving; twice, the same', async () => {
      for (const attempt of ['', ' (again)']) {
        const outcome = await update(releases.broken, `Update v2 -> broken${attempt}`);
        expect(outcome.ok).toBe(false);
        const reason = outcome.ok ? '' : outcome.reason;
        expect(reason).toMatch(/^Deploy of v4-broken to i-0123456789abcdef0 failed: the deploy script failed with exit status 5 \(the new release did not become healthy\)\./);
        expect(reason).toMatch(/Host: bluegreen: error: .*did not answer HTTP 200 .* within 3s\. Nginx was not touched: green \(v2\) keeps serving\./);
        expect(reason).toMatch(/Full output: aws ssm get-command-invocation --command-id [0-9a-f-]{36} --instance-id i-0123456789abcdef0\.$/);
        expect(reason.length).toBeLessThan(1600);
        expect(await host.servedVersion()).toBe('v2');
        if (attempt === '') figures.push(`failure reason: ${reason}`);
      }
    });

    test("CloudFormation's rollback Update (the v2 properties) succeeds quickly; twice, the same", async () => {
      for (const attempt of ['', ' (again)']) {
        const outcome = await update(releases.v2, `Rollback Update broken -> v2${attempt}`);
        expectSuccess(outcome, 'green', 'v2');
        expect(lastInvocation().stdout).toMatch(/v2 is already live on green; nothing to do/);
        expect(outcome.ms).toBeLessThan(3000);
      }
    });

    test('a deploy that outlasts the execution timeout fails saying so; v2 keeps serving and the next Update recovers', async () => {
      ssm.overrideExecutionTimeout(3);
      let outcome: Outcome;
      try {
        outcome = await update(releases.slow, 'Update v2 -> slow (execution timeout 3 s)');
      } finally {
        ssm.overrideExecutionTimeout(undefined);
      }
      expect(outcome.ok).toBe(false);
      expect(outcome.ok ? '' : outcome.reason).toMatch(
        /^Deploy of v5-slow to i-0123456789abcdef0 failed: TimedOut \(ExecutionTimedOut\): the deploy ran longer than the document's execution timeout and SSM stopped it\. Nginx only ever switches to a healthy slot.*Last progress: .*start .*v5-slow/,
      );
      expect(await host.servedVersion()).toBe('v2');
      const recovered = await update(releases.v2, 'Rollback Update slow -> v2');
      expectSuccess(recovered, 'green', 'v2');
      expect(lastInvocation().stderr).toMatch(/was interrupted before it finished/);
    });

    test('no request failed through all of it', async () => {
      const report: LoadReport = await load!.stop();
      load = undefined;
      figures.push(`load: ${formatSummary(report)}`);
      expect(report.totals.requests).toBeGreaterThan(500);
      expect(report.failures, JSON.stringify(report.failures, null, 1)).toEqual({});
      expect(report.totals.failed).toBe(0);
      expect(report.totals.resentOk).toBe(report.totals.rawResets);
    });
  });

  test('Delete succeeds without touching the host', async () => {
    const operationsBefore = ssm.operations.length;
    const outcome = await runOperation(cfnEvent('Delete', liveProperties, { physicalResourceId, properties: liveProperties }));
    expect(outcome).toMatchObject({ ok: true, physicalResourceId });
    expect(ssm.operations.length).toBe(operationsBefore);
    expect(await host.servedVersion()).toBe('v2');
  });

  test('an instance that never comes Online fails the Create with a reason, and nothing is sent', async () => {
    ssm.setPingStatus(INSTANCE_ID, 'ConnectionLost');
    try {
      const started = ssm.invocations.length;
      // 72 s left in the Lambda function: 10 s margin and 60 s to send leave 2 s to wait.
      const reason = await handlers
        .onEvent(cfnEvent('Create', propertiesOf(releases.v2)), { getRemainingTimeInMillis: () => 72_000 })
        .then(() => '', (error: Error) => error.message);
      expect(reason).toMatch(
        /^Instance i-0123456789abcdef0 is not Online in Systems Manager after \ds \(it is ConnectionLost \(last ping .*\)\), so nothing was sent and the host is unchanged\./,
      );
      expect(ssm.invocations.length).toBe(started);
    } finally {
      ssm.setPingStatus(INSTANCE_ID, 'Online');
    }
  });
});

describe('the loopback SSM endpoint, seen through the real SDK', () => {
  const client = () => new SSMClient({ endpoint: ssm.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  beforeAll(() => ssm.setPingStatus(INSTANCE_ID, 'Online'));

  test("refuses a parameter that breaks the document's allowedPattern, as SSM does", async () => {
    await expect(
      client().send(
        new SendCommandCommand({
          DocumentName: DOCUMENT_NAME,
          InstanceIds: [INSTANCE_ID],
          Parameters: { action: ['deploy'], artifactUri: ['/tmp/app.jar; rm -rf /'] },
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidParameters' });
  });

  test('answers InvalidInstanceId for an instance SSM does not know, and lists only known ones', async () => {
    await expect(
      client().send(new SendCommandCommand({ DocumentName: DOCUMENT_NAME, InstanceIds: ['i-0fffffffffffffff0'] })),
    ).rejects.toMatchObject({ name: 'InvalidInstanceId' });
    const info = await client().send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [INSTANCE_ID, 'i-0fffffffffffffff0'] }] }));
    expect(info.InstanceInformationList?.map((entry) => [entry.InstanceId, entry.PingStatus])).toEqual([[INSTANCE_ID, 'Online']]);
    expect(info.InstanceInformationList?.[0]?.LastPingDateTime).toBeInstanceOf(Date);
  });

  test('keeps only the first 24,000 characters of stdout and 8,000 of stderr', async () => {
    const noisy = await LoopbackSsm.start({
      documents: {
        Noisy: {
          schemaVersion: '2.2',
          mainSteps: [{ action: 'aws:runShellScript', name: 'noise', inputs: { runCommand: ["head -c 30000 /dev/zero | tr '\\0' o", "head -c 9000 /dev/zero | tr '\\0' e >&2"] } }],
        },
      },
      instances: { [INSTANCE_ID]: 'Online' },
      environment: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    try {
      const noisyClient = new SSMClient({ endpoint: noisy.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
      const sent = await noisyClient.send(new SendCommandCommand({ DocumentName: 'Noisy', InstanceIds: [INSTANCE_ID] }));
      expect(sent.Command?.RequestedDateTime).toBeInstanceOf(Date);
      await noisy.idle();
      const invocation = await noisyClient.send(new GetCommandInvocationCommand({ CommandId: sent.Command!.CommandId, InstanceId: INSTANCE_ID }));
      expect(invocation.Status).toBe('Success');
      expect(invocation.StandardOutputContent).toHaveLength(SSM_OUTPUT_LIMITS.stdout);
      expect(invocation.StandardErrorContent).toHaveLength(SSM_OUTPUT_LIMITS.stderr);
      expect(invocation.ExecutionStartDateTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    } finally {
      await noisy.close();
    }
  });
});
