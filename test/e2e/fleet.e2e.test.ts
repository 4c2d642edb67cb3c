/**
 * The deploy custom resource in fleet mode, end to end on this machine: the real handler modules
 * (lambda/deploy/index.ts) and the real AWS SDK v3 against the loopback SSM endpoint, which runs
 * the deploy document (synthesized by its construct) on a local fleet (scripts/lib/fleet.ts):
 * three hosts, each a real Nginx with two JVM slots, behind a local Nginx standing in for the
 * load balancer, with real load through it the whole time.
 *
 * CloudFormation's side is played here, as in custom-resource.e2e.test.ts: Create and Update events
 * shaped as CloudFormation sends them, isComplete polled as the Provider framework's waiter does.
 * The fleet's side is played by the harness: hosts boot as the user data boots them (SSM Agent
 * registers the host with its fleet tag early, then the recorded release is read from the
 * parameter and deployed before the host takes traffic).
 *
 * Timings are printed (and copied into docs/SCALING.md), never asserted.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { documentCommandInput, send } from '../../cli/command.js';
import type { FleetStackTarget } from '../../cli/stack.js';
import { parseFleetRelease } from '../../lib/deploy/fleet.js';
import type { CustomResourceEvent } from '../../lambda/deploy/resource.js';
import { DeployDocument } from '../../lib/constructs/deploy-document.js';
import { DEPLOYMENT_PROPERTIES as P, FLEET_RELEASE_UNSET, FLEET_TAG_KEY } from '../../lib/contract.js';
import { LocalFleet, recordedRelease, type BootRelease, type FleetHost, type HostBoot } from '../../scripts/lib/fleet.js';
import { formatSummary, startLoad, type LoadRun } from '../../scripts/lib/load.js';
import { buildJar } from '../support/host.js';
import { LoopbackSsm, type CommandDocumentContent } from '../support/ssm-server.js';
import { HandlerLogs, loadDeployHandlers, type Handlers } from '../support/deploy-handlers.js';

const PORTS = { balancer: 19100, ssm: 19101, firstHost: 19110 };
const DOCUMENT_NAME = 'Ec2BlueGreen-DeployDocument-Fleet';
const TAG_VALUE = 'Ec2BlueGreen';
const RELEASE_PARAMETER = '/ec2-bluegreen/Ec2BlueGreen/fleet-release';
/** The Provider framework's queryInterval, shortened. */
const QUERY_INTERVAL_MS = 250;
const HEALTH_TIMEOUT_SECONDS = '10';
/**
 * The first release. Versions name this suite's own jars: a suite that rebuilds a jar of the same
 * name while this one runs (jars are not byte-for-byte reproducible) would change its checksum.
 */
const V1 = 'fleet-v1';
const LOAD = { keepAliveConnections: 12, newConnectionWorkers: 2, slowRequestEvery: 40, slowMs: 800, thinkMs: 5 };

type Outcome =
  | { readonly ok: true; readonly data: Record<string, string>; readonly commandId: string; readonly ms: number }
  | { readonly ok: false; readonly reason: string; readonly commandId?: string; readonly ms: number };

let ssm: LoopbackSsm;
let client: SSMClient;
let fleet: LocalFleet;
let handlers: Handlers;
let releases: Record<'v1' | 'v2' | 'v3' | 'v4' | 'v5', BootRelease>;
let load: LoadRun | undefined;
const figures: string[] = [];
/** What each host's boot read from the release parameter, and whether the roll-out then running had finished. */
const boots = new Map<string, { release: BootRelease; rollOutRunning: boolean }>();
let rollOutCommandId: string | undefined;

function release(version: string): BootRelease {
  const jar = buildJar(version);
  return { artifactUri: jar, sha256: createHash('sha256').update(readFileSync(jar)).digest('hex'), version };
}

/** The deploy document exactly as its construct synthesizes it: parameters, patterns and script. */
function synthesizedDocument(): CommandDocumentContent {
  const stack = new Stack(new App(), 'FleetDocument');
  new DeployDocument(stack, 'DeployDocument');
  const [document] = Object.values(Template.fromStack(stack).findResources('AWS::SSM::Document'));
  return document!.Properties.Content as CommandDocumentContent;
}

/** How a host of this fleet boots: SSM Agent registers it with the fleet tag, then it reads the recorded release. */
const boot: HostBoot = {
  agentStarted: (host: FleetHost) => ssm.register(host.instanceId, 'Online', { [FLEET_TAG_KEY]: TAG_VALUE }, host.agentEnvironment()),
  release: async (host: FleetHost) => {
    const recorded = await recordedRelease(client, RELEASE_PARAMETER, releases.v1);
    const rollOutRunning = rollOutCommandId !== undefined && ['Pending', 'InProgress'].includes(ssm.commandState(rollOutCommandId).status);
    boots.set(host.instanceId, { release: recorded, rollOutRunning });
    return recorded;
  },
};

beforeAll(async () => {
  releases = { v1: release(V1), v2: release('fleet-v2'), v3: release('fleet-v3'), v4: release('fleet-v4'), v5: release('fleet-v5') };
  ssm = await LoopbackSsm.start({
    port: PORTS.ssm,
    documents: { [DOCUMENT_NAME]: synthesizedDocument() },
    instances: {},
    // SSM lists a command's invocations a moment after SendCommand; longer than the poll interval here,
    // so that anything deciding "not sent yet" from a list meets the lag on every run.
    invocationLagMs: 1000,
    environment: {},
    parameters: { [RELEASE_PARAMETER]: FLEET_RELEASE_UNSET },
  });
  client = new SSMClient({ endpoint: ssm.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

  handlers = await loadDeployHandlers(ssm.url, 60, handlerLogs);

  const started = performance.now();
  // Assigned before it boots, so that afterAll stops whatever did start.
  fleet = new LocalFleet({ size: 3, balancerPort: PORTS.balancer, firstHostPort: PORTS.firstHost, maxHosts: 5 });
  await fleet.up(boot);
  figures.push(`3 hosts booted (the first release, from the user data) in ${seconds(performance.now() - started)}`);
});

const handlerLogs = new HandlerLogs();

afterAll(async () => {
  handlerLogs.stop();
  vi.unstubAllEnvs();
  await load?.stop();
  await fleet?.down();
  await ssm?.close();
  if (figures.length > 0) console.log(`[fleet e2e]\n  ${figures.join('\n  ')}`);
});

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

let requestNumber = 0;
const PHYSICAL_ID = 'bluegreen-deployment/Deployment';
let liveProperties: Record<string, string> = {};

function propertiesOf(r: BootRelease, maxConcurrency: string): Record<string, string> {
  return {
    ServiceToken: 'arn:aws:lambda:us-east-1:111111111111:function:Ec2BlueGreen-DeploymentProviderframeworkonEvent',
    [P.targetTagKey]: FLEET_TAG_KEY,
    [P.targetTagValue]: TAG_VALUE,
    [P.maxConcurrency]: maxConcurrency,
    [P.releaseParameterName]: RELEASE_PARAMETER,
    [P.documentName]: DOCUMENT_NAME,
    [P.artifactUri]: r.artifactUri,
    [P.sha256]: r.sha256,
    [P.version]: r.version,
    [P.healthTimeout]: HEALTH_TIMEOUT_SECONDS,
  };
}

/** One resource operation as the Provider framework runs it; remembers the properties that went live. */
async function operation(requestType: 'Create' | 'Update', properties: Record<string, string>, onSent?: (commandId: string) => void): Promise<Outcome> {
  const event: CustomResourceEvent = {
    RequestType: requestType,
    LogicalResourceId: 'Deployment',
    RequestId: `request-${++requestNumber}`,
    StackId: 'arn:aws:cloudformation:us-east-1:111111111111:stack/Ec2BlueGreen/5b6e8c60-0000-0000-0000-000000000000',
    ResourceType: 'Custom::BlueGreenDeployment',
    ResourceProperties: properties,
    ...(requestType === 'Update' ? { PhysicalResourceId: PHYSICAL_ID, OldResourceProperties: liveProperties } : {}),
  };
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let commandId: string | undefined;
  try {
    const sent = await handlers.onEvent(event, { getRemainingTimeInMillis: () => 360_000 });
    commandId = sent.BlueGreenCommand?.commandId;
    if (commandId !== undefined) onSent?.(commandId);
    for (;;) {
      const result = await handlers.isComplete({ ...event, ...sent });
      if (result.IsComplete) {
        liveProperties = properties;
        return { ok: true, data: { ...result.Data }, commandId: commandId!, ms: ms() };
      }
      if (ms() > 100_000) return { ok: false, reason: 'Operation timed out', commandId, ms: ms() };
      await sleep(QUERY_INTERVAL_MS);
    }
  } catch (error) {
    return { ok: false, reason: (error as Error).message, commandId, ms: ms() };
  }
}

function expectSuccess(outcome: Outcome): asserts outcome is Extract<Outcome, { ok: true }> {
  expect(outcome.ok ? '' : outcome.reason).toBe('');
}

/** The version each host serves, straight from its own Nginx (not through the balancer). */
async function servedVersions(): Promise<string[]> {
  return Promise.all(fleet.hosts.map((fleetHost) => fleetHost.host.servedVersion()));
}

async function recordedVersion(): Promise<{ version: string; commandId: string } | undefined> {
  const answer = await client.send(new GetParameterCommand({ Name: RELEASE_PARAMETER }));
  const recorded = parseFleetRelease(answer.Parameter?.Value);
  return recorded === undefined ? undefined : { version: recorded.version, commandId: recorded.commandId };
}

function invocationsOf(commandId: string) {
  return ssm.invocations.filter((entry) => entry.commandId === commandId);
}

/** Something else holds a port on one host: it answers, but it is not the app. */
async function strayListener(port: number): Promise<Server> {
  const server = createServer((_, response) => response.writeHead(404).end('not the app\n'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

describe('a fleet of three local hosts behind a load balancer', () => {
  test('Create: the hosts booted the first release; the roll-out is a no-op on each and records it', async () => {
    expect([...boots.values()].map((entry) => entry.release.version)).toEqual([V1, V1, V1]);
    expect(await recordedVersion()).toBeUndefined();

    const outcome = await operation('Create', propertiesOf(releases.v1, '2'));

    expectSuccess(outcome);
    figures.push(`Create v1 (no-op on 3 hosts, MaxConcurrency 2): ${seconds(outcome.ms)}`);
    expect(await servedVersions()).toEqual([V1, V1, V1]);
    expect(await recordedVersion()).toEqual({ version: V1, commandId: outcome.commandId });
    const sent = ssm.commands.find((command) => command.commandId === outcome.commandId)!;
    expect(sent).toMatchObject({ targets: [{ Key: `tag:${FLEET_TAG_KEY}`, Values: [TAG_VALUE] }], maxConcurrency: '2', maxErrors: '0', instanceIds: [] });
    expect(invocationsOf(outcome.commandId).every((entry) => entry.stdout.includes(`${V1} is already live`))).toBe(true);
  });

  describe('under load through the load balancer', () => {
    beforeAll(async () => {
      load = startLoad({ baseUrl: fleet.url, ...LOAD });
      await sleep(500);
    });

    test('a deploy that fails on the second host leaves the third untouched; the rollback restores the first from its warm standby', async () => {
      // Another process holds the port of host 2's idle slot: the new release cannot start there.
      const second = fleet.hosts[1]!;
      const status = second.host.status();
      const idleSlot = status.live === 'blue' ? 'green' : 'blue';
      const stray = await strayListener(status.slots[idleSlot].port);
      let failed: Outcome;
      try {
        failed = await operation('Update', propertiesOf(releases.v2, '1'));
      } finally {
        await new Promise((resolve) => stray.close(resolve));
      }

      expect(failed.ok).toBe(false);
      const reason = failed.ok ? '' : failed.reason;
      figures.push(`Update v1 -> v2 failing on host 2: failed in ${seconds(failed.ms)}; reason: ${reason}`);
      const [first, , third] = fleet.hosts.map((fleetHost) => fleetHost.instanceId);
      expect(reason).toContain(second.instanceId);
      expect(reason).toMatch(/did not become healthy|exit status 5/);
      expect(reason).toMatch(new RegExp(`Took the new release: ${first}`));
      expect(reason).toMatch(new RegExp(`Not deployed \\(still on the previous release\\): ${third}`));
      // The third host's invocation never ran: SSM stopped the roll-out at the first error.
      const thirdInvocation = invocationsOf(failed.commandId!).find((entry) => entry.instanceId === third)!;
      expect(thirdInvocation).toMatchObject({ status: 'Cancelled', statusDetails: 'Terminated' });
      expect(thirdInvocation.startedAt).toBeUndefined();
      expect(await servedVersions()).toEqual([releases.v2.version, V1, V1]);
      // Nothing is recorded for new hosts until every host has the release.
      expect((await recordedVersion())?.version).toBe(V1);

      // CloudFormation rolls the stack back: an Update with the old properties.
      const rollback = await operation('Update', propertiesOf(releases.v1, '1'));

      expectSuccess(rollback);
      figures.push(`rollback Update v2 -> v1 (host 1 from its warm standby, no-op on hosts 2 and 3): ${seconds(rollback.ms)}`);
      expect(await servedVersions()).toEqual([V1, V1, V1]);
      const [firstBack, ...others] = invocationsOf(rollback.commandId);
      expect(firstBack!.stdout).toContain(`${V1} is the warm standby`);
      expect(firstBack!.stdout).not.toMatch(/\] start /);
      expect(others.every((entry) => entry.stdout.includes(`${V1} is already live`))).toBe(true);
    });

    test.each([
      ['1', 'v3'],
      ['2', 'v4'],
    ] as const)('a rolling deploy at MaxConcurrency %s: never more hosts swapping at once, every host ends on %s', async (maxConcurrency, key) => {
      const { version } = releases[key];
      const outcome = await operation('Update', propertiesOf(releases[key], maxConcurrency));

      expectSuccess(outcome);
      figures.push(`roll-out of ${version} to 3 hosts at MaxConcurrency ${maxConcurrency}: ${seconds(outcome.ms)}`);
      expect(await servedVersions()).toEqual([version, version, version]);
      expect(await recordedVersion()).toEqual({ version, commandId: outcome.commandId });
      // From the stand-in's record of when each host's deploy ran.
      expect(ssm.peakConcurrency(outcome.commandId)).toBe(Number(maxConcurrency));
      const ran = invocationsOf(outcome.commandId);
      expect(ran.map((entry) => entry.status)).toEqual(['Success', 'Success', 'Success']);
      figures.push(
        `  per host: ${ran.map((entry) => `${entry.instanceId} ${seconds(entry.endedAt!.getTime() - entry.startedAt!.getTime())}`).join(', ')}`,
      );
    });

    test('a host that joins mid-roll-out boots the recorded (previous) release; the catch-up brings it to the new one', async () => {
      let joined: Promise<FleetHost> | undefined;
      const outcome = await operation('Update', propertiesOf(releases.v5, '1'), (commandId) => {
        rollOutCommandId = commandId;
        // The Auto Scaling group launches a host while the first host swaps.
        joined = (async () => {
          await waitUntil(() => invocationsOf(commandId).some((entry) => entry.status === 'InProgress'));
          return fleet.addHost(boot);
        })();
      });
      const newHost = await joined!;

      expectSuccess(outcome);
      figures.push(`roll-out of ${releases.v5.version} to 3 hosts at MaxConcurrency 1, a 4th joining meanwhile and caught up: ${seconds(outcome.ms)}`);
      figures.push(`the 4th host booted (${releases.v4.version}, the recorded release) in ${seconds(fleet.bootMs.get(newHost.instanceId)!)}`);
      expect(boots.get(newHost.instanceId)).toMatchObject({ release: { version: releases.v4.version }, rollOutRunning: true });
      // SSM resolved the tag when the roll-out was sent: the new host was not one of its targets.
      const rollOut = ssm.commands.find((command) => command.commandId === outcome.commandId)!;
      expect(rollOut.targetIds).not.toContain(newHost.instanceId);
      const catchUp = ssm.commands.filter((command) => command.requestedAt > rollOut.requestedAt && command.targetIds.includes(newHost.instanceId));
      expect(catchUp).toHaveLength(1);
      expect(invocationsOf(catchUp[0]!.commandId)[0]).toMatchObject({ status: 'Success' });
      expect(await servedVersions()).toEqual(Array(4).fill(releases.v5.version));
      expect((await recordedVersion())?.version).toBe(releases.v5.version);
    });

    test("a fleet rollback reaches every host: one that joined after the roll-out, with no standby, deploys the previous release", async () => {
      // GIVEN a host the Auto Scaling group added after the roll-out: it boots the recorded release alone
      const late = await fleet.addHost(boot);
      expect(boots.get(late.instanceId)).toMatchObject({ release: { version: releases.v5.version }, rollOutRunning: false });
      const recordAnswer = await client.send(new GetParameterCommand({ Name: RELEASE_PARAMETER }));
      const record = parseFleetRelease(recordAnswer.Parameter?.Value)!;
      expect(record).toMatchObject({ version: releases.v5.version, previousVersion: releases.v4.version });

      // WHEN the operator command rolls the fleet back, one host at a time, stopping at the first failure
      const target: FleetStackTarget = {
        stackName: 'Ec2BlueGreen',
        documentName: DOCUMENT_NAME,
        fleet: { tagKey: FLEET_TAG_KEY, tagValue: TAG_VALUE, maxConcurrency: '1', releaseParameterName: RELEASE_PARAMETER },
      };
      const previous = { artifactUri: record.previousArtifactUri, sha256: record.previousSha256, version: record.previousVersion };
      const input = documentCommandInput(target, { command: 'rollback', previous }, { deliveryTimeoutSeconds: 300, requestedBy: 'ops@fleet-e2e' });
      const started = performance.now();
      const commandId = await send(client, input, 'rollback');
      await waitUntil(() => ['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(ssm.commandState(commandId).status), 100_000);
      figures.push(`rollback ${releases.v5.version} -> ${releases.v4.version} of 5 hosts (one joined late, without a standby): ${seconds(performance.now() - started)}`);

      // THEN every host ran it and serves the previous release: four from their warm standby, the late one by a deploy
      const ran = invocationsOf(commandId);
      expect(ran.map((entry) => [entry.instanceId, entry.status, entry.responseCode])).toEqual(
        fleet.hosts.map((fleetHost) => [fleetHost.instanceId, 'Success', 0]),
      );
      expect(ssm.commandState(commandId).status).toBe('Success');
      expect(await servedVersions()).toEqual(Array(5).fill(releases.v4.version));
      const lateRun = ran.find((entry) => entry.instanceId === late.instanceId)!;
      expect(lateRun.stderr + lateRun.stdout).toContain("no standby to roll back to on this host: deploying the fleet's previous release instead");
      for (const entry of ran.filter((other) => other.instanceId !== late.instanceId)) {
        expect(entry.stderr + entry.stdout).not.toContain('no standby to roll back to');
      }
    });

    test('no request through the load balancer failed, and every host served some', async () => {
      const report = await load!.stop();
      load = undefined;
      figures.push(`load: ${formatSummary(report)}`);
      const log = fleet.balancerLog();
      const retried = log.filter((entry) => entry.upstreams.length > 1);
      figures.push(`balancer: ${log.length} requests, ${retried.length} retried on another host (${retried.filter((entry) => entry.method === 'POST').length} POST)`);
      expect(report.totals.requests).toBeGreaterThan(500);
      const notOk = log.filter((entry) => entry.status >= 500);
      expect(report.failures, `${JSON.stringify(report.failures, null, 1)}\nbalancer 5xx: ${JSON.stringify(notOk)}\n${fleet.errorLogs()}`).toEqual({});
      expect(report.totals.failed).toBe(0);
      const answeredBy = new Set(log.flatMap((entry) => entry.upstreams.slice(-1)));
      expect([...answeredBy].sort()).toEqual(fleet.hosts.map((fleetHost) => `127.0.0.1:${fleetHost.host.ports.nginx}`).sort());
    });
  });
});

async function waitUntil(predicate: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(50);
  }
}
