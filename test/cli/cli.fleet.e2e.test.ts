/**
 * `ec2-bluegreen` on a fleet stack, end to end, run as a user runs it: `node bin/ec2-bluegreen.mjs`
 * as a child process against the loopback CloudFormation, S3, SSM and CloudWatch Logs stand-ins.
 * The SSM stand-in runs the synthesized deploy document by tag, with `MaxConcurrency` and
 * `MaxErrors`, on a local fleet (scripts/lib/fleet.ts): three hosts, each a real Nginx with two
 * JVM slots, behind a local Nginx that stands in for the load balancer. Hosts boot as the fleet's
 * user data boots them: registered with the fleet tag, then the recorded release deployed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseFleetRelease, type FleetRelease } from '../../lib/deploy/fleet.js';
import { FLEET_RELEASE_UNSET, FLEET_TAG_KEY, STACK_OUTPUTS } from '../../lib/contract.js';
import { LocalFleet, recordedRelease, type BootRelease, type FleetHost, type HostBoot } from '../../scripts/lib/fleet.js';
import { documentContent, synthesize } from '../constructs/synth.js';
import { LoopbackCloudFormation } from '../support/cloudformation-server.js';
import { buildJar, PROJECT_DIR } from '../support/host.js';
import { LoopbackLogs } from '../support/logs-server.js';
import { LoopbackS3 } from '../support/s3-server.js';
import { LoopbackSsm, type CommandDocumentContent } from '../support/ssm-server.js';
import { loopbackAwsEnvironment } from '../support/loopback.js';

const PORTS = { ssm: 19300, cloudFormation: 19301, s3: 19302, logs: 19303, balancer: 19304, closed: 19305, firstHost: 19310 };
const STACK = 'CliFleet';
const TAG_VALUE = 'CliFleet';
const DOCUMENT_NAME = 'CliFleet-DeployDocument-Loopback';
const LOG_GROUP = 'CliFleet-DeployDocumentOutputLogGroup-Loopback';
const BUCKET = 'clifleet-artifacts-loopback';
const UPLOAD_PREFIX = 'cli-releases/';
const RELEASE_PARAMETER = '/ec2-bluegreen/CliFleet/fleet-release';
/** Versions name this suite's own jars (another suite rebuilding a jar of the same name would change its checksum). */
const VERSIONS = { v1: 'clifleet-v1', v2: 'clifleet-v2', v3: 'clifleet-v3', v4: 'clifleet-v4', v5: 'clifleet-v5' } as const;
const INSTANCE_ID = /i-[0-9a-f]{8,17}/;

let ssm: LoopbackSsm;
let client: SSMClient;
let logs: LoopbackLogs;
let s3: LoopbackS3;
let cloudFormation: LoopbackCloudFormation;
let fleet: LocalFleet;
let jars: Record<keyof typeof VERSIONS, string>;
let firstRelease: BootRelease;
const figures: string[] = [];

function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The agent's environment on a host: its own, plus the S3 bridge (test/support/bin/aws). */
function agentEnvironment(host: FleetHost): Record<string, string> {
  const own = host.agentEnvironment();
  return { ...own, PATH: `${host.binDir}:${join(PROJECT_DIR, 'test', 'support', 'bin')}:${own.PATH}`, LOOPBACK_S3_URL: s3.url };
}

/**
 * As the user data boots a host: SSM Agent registers it with the fleet tag, then it deploys the
 * recorded release. The boot runs `bluegreen deploy` itself, without the agent's S3 bridge, so an
 * s3:// release this suite uploaded is handed over as the local jar with the same checksum.
 */
const boot: HostBoot = {
  agentStarted: (host) => ssm.register(host.instanceId, 'Online', { [FLEET_TAG_KEY]: TAG_VALUE }, agentEnvironment(host)),
  release: async () => {
    const release = await recordedRelease(client, RELEASE_PARAMETER, firstRelease);
    const jar = Object.values(jars).find((path) => sha256Of(path) === release.sha256);
    return jar === undefined ? release : { ...release, artifactUri: jar };
  },
};

beforeAll(async () => {
  const { template } = synthesize();
  jars = {
    v1: buildJar(VERSIONS.v1),
    v2: buildJar(VERSIONS.v2),
    v3: buildJar(VERSIONS.v3),
    v4: buildJar(VERSIONS.v4),
    v5: buildJar(VERSIONS.v5),
  };
  firstRelease = { artifactUri: jars.v1, sha256: sha256Of(jars.v1), version: VERSIONS.v1 };
  logs = await LoopbackLogs.start({ port: PORTS.logs, logGroups: [LOG_GROUP] });
  s3 = await LoopbackS3.start({ port: PORTS.s3, buckets: [BUCKET] });
  ssm = await LoopbackSsm.start({
    port: PORTS.ssm,
    documents: { [DOCUMENT_NAME]: documentContent(template) as CommandDocumentContent },
    instances: {},
    invocationLagMs: 300,
    cloudWatchOutput: logs,
    environment: {},
    parameters: { [RELEASE_PARAMETER]: FLEET_RELEASE_UNSET, '/ec2-bluegreen/Garbled/fleet-release': 'this is not a release' },
  });
  client = new SSMClient({ endpoint: ssm.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const fleetOutputs = {
    [STACK_OUTPUTS.fleetTarget]: `tag:${FLEET_TAG_KEY}=${TAG_VALUE}`,
    [STACK_OUTPUTS.fleetMaxConcurrency]: '1',
    [STACK_OUTPUTS.fleetReleaseParameter]: RELEASE_PARAMETER,
    [STACK_OUTPUTS.documentName]: DOCUMENT_NAME,
    [STACK_OUTPUTS.outputLogGroup]: LOG_GROUP,
    [STACK_OUTPUTS.artifactUploadLocation]: `s3://${BUCKET}/${UPLOAD_PREFIX}`,
    [STACK_OUTPUTS.siteUrl]: `http://127.0.0.1:${PORTS.balancer}/`,
  };
  cloudFormation = await LoopbackCloudFormation.start({
    port: PORTS.cloudFormation,
    stacks: {
      [STACK]: { outputs: fleetOutputs },
      Both: { outputs: { ...fleetOutputs, [STACK_OUTPUTS.instanceId]: 'i-0123456789abcdef0' } },
      BadTarget: { outputs: { ...fleetOutputs, [STACK_OUTPUTS.fleetTarget]: `${FLEET_TAG_KEY}=${TAG_VALUE}` } },
      NoRecord: { outputs: { ...fleetOutputs, [STACK_OUTPUTS.fleetReleaseParameter]: '/ec2-bluegreen/Gone/fleet-release' } },
      Garbled: { outputs: { ...fleetOutputs, [STACK_OUTPUTS.fleetReleaseParameter]: '/ec2-bluegreen/Garbled/fleet-release' } },
    },
  });
  fleet = new LocalFleet({ size: 3, balancerPort: PORTS.balancer, firstHostPort: PORTS.firstHost, maxHosts: 4 });
  await fleet.up(boot);
}, 120_000);

afterAll(async () => {
  await fleet?.down();
  await Promise.all([ssm?.close(), logs?.close(), s3?.close(), cloudFormation?.close()]);
  if (figures.length > 0) console.log(`[ec2-bluegreen CLI fleet e2e]\n  ${figures.join('\n  ')}`);
});

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function userEnvironment(): NodeJS.ProcessEnv {
  return loopbackAwsEnvironment({ CLOUDFORMATION: cloudFormation.url, SSM: ssm.url, S3: s3.url, CLOUDWATCH_LOGS: logs.url });
}

async function cli(args: string[], whileRunning?: () => Promise<void>): Promise<CliRun> {
  const started = Date.now();
  const child = spawn('node', [join(PROJECT_DIR, 'bin', 'ec2-bluegreen.mjs'), ...args], { cwd: PROJECT_DIR, env: userEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
  const during = whileRunning?.();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  await during;
  if (code === null || process.env.CLI_E2E_VERBOSE === '1') console.log(`$ ec2-bluegreen ${args.join(' ')}\n${stdout}${stderr}`);
  return { code, stdout, stderr, ms: Date.now() - started };
}

async function recorded(): Promise<FleetRelease | undefined> {
  return parseFleetRelease((await client.send(new GetParameterCommand({ Name: RELEASE_PARAMETER }))).Parameter?.Value);
}

async function servedVersions(): Promise<string[]> {
  return Promise.all(fleet.hosts.map((fleetHost) => fleetHost.host.servedVersion()));
}

/** The per-host progress lines (`ID: started ...`, `ID: Success in ...`), in the order printed. */
function progress(stdout: string): Array<{ readonly instanceId: string; readonly event: string }> {
  return stdout
    .split('\n')
    .map((line) => new RegExp(`^(${INSTANCE_ID.source}): (started|Success|Failed|TimedOut|Cancelled|not run)\\b`).exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ instanceId: match[1]!, event: match[2]! }));
}

/** The most hosts the printed lines show running at once. */
function printedPeak(events: ReturnType<typeof progress>): number {
  let running = 0;
  let peak = 0;
  for (const { event } of events) {
    if (event === 'started') running += 1;
    else if (event !== 'not run') running -= 1;
    peak = Math.max(peak, running);
  }
  return peak;
}

function sentCommands(before: number) {
  return ssm.commands.slice(before);
}

describe('ec2-bluegreen on a fleet of three local hosts', () => {
  test.each([
    ['Both', /stack Both has both outputs InstanceId \(i-0123456789abcdef0\) and FleetTarget \(tag:BlueGreenFleet=CliFleet\).*Nothing was sent\./],
    ['BadTarget', /stack BadTarget is a fleet stack, but its outputs are not usable: FleetTarget is "BlueGreenFleet=CliFleet", not tag:KEY=VALUE\. Nothing was sent\./],
    ['NoRecord', /cannot read the fleet's release record \/ec2-bluegreen\/Gone\/fleet-release \(ParameterNotFound: .*\)\. Nothing was sent\./],
    ['Garbled', /the fleet's release record \/ec2-bluegreen\/Garbled\/fleet-release holds "this is not a release", not KEY=VALUE lines .* Nothing was sent\./],
  ])('stack %s: a clear error, exit 9, nothing uploaded or sent', async (stack, message) => {
    const commands = ssm.commands.length;
    const uploads = s3.requests.filter((request) => request.startsWith('PUT ')).length;
    const run = await cli(['deploy', jars.v2, '--stack', stack]);
    expect(run.code, run.stderr).toBe(9);
    expect(run.stderr).toMatch(message);
    expect(ssm.commands.length).toBe(commands);
    expect(s3.requests.filter((request) => request.startsWith('PUT ')).length).toBe(uploads);
  });

  test('deploy rolls out host by host with per-host progress and output, then records the release', async () => {
    const before = ssm.commands.length;
    const run = await cli(['deploy', jars.v2, '--stack', STACK, '--version', VERSIONS.v2]);
    expect(run.code, run.stderr).toBe(0);
    figures.push(`deploy ${VERSIONS.v2} to 3 hosts at MaxConcurrency 1: ${run.ms} ms`);

    const [rollOut] = sentCommands(before);
    expect(rollOut).toMatchObject({ targets: [{ Key: `tag:${FLEET_TAG_KEY}`, Values: [TAG_VALUE] }], maxConcurrency: '1', maxErrors: '0', instanceIds: [] });
    const ids = fleet.hosts.map((fleetHost) => fleetHost.instanceId);
    // One host at a time: each host's start, then its end, before the next host starts.
    expect(progress(run.stdout)).toEqual(ids.flatMap((instanceId) => [{ instanceId, event: 'started' }, { instanceId, event: 'Success' }]));
    expect(run.stdout).toMatch(new RegExp(`^${ids[0]}: started \\(host 1 of 3\\)$`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^${ids[2]}: Success in \\d+\\.\\ds \\(3 of 3 done\\)$`, 'm'));
    expect(ssm.peakConcurrency(rollOut!.commandId)).toBe(1);
    // Each host's own phase lines, prefixed with the host, between its start and its end.
    for (const id of ids) {
      const lines = run.stdout.split('\n');
      const start = lines.indexOf(lines.find((line) => line.startsWith(`${id}: started`))!);
      const end = lines.indexOf(lines.find((line) => line.startsWith(`${id}: Success`))!);
      const switchLine = lines.findIndex((line) => line.startsWith(`${id} | bluegreen [`) && /\]\s+switch\s/.test(line));
      expect(switchLine).toBeGreaterThan(start);
      expect(switchLine).toBeLessThan(end);
    }
    expect(run.stdout).not.toMatch(/\{"live"/);
    expect(run.stdout).toMatch(new RegExp(`ec2-bluegreen: deploy done in \\d+\\.\\ds: ${VERSIONS.v2} is live on 3 hosts\\n`));
    expect(run.stderr).toMatch(new RegExp(`recorded ${VERSIONS.v2} in ${RELEASE_PARAMETER}: hosts the Auto Scaling group adds boot it`));
    expect(await servedVersions()).toEqual([VERSIONS.v2, VERSIONS.v2, VERSIONS.v2]);
    expect(await recorded()).toMatchObject({
      artifactUri: `s3://${BUCKET}/${UPLOAD_PREFIX}${sha256Of(jars.v2)}.jar`,
      sha256: sha256Of(jars.v2),
      version: VERSIONS.v2,
      commandId: rollOut!.commandId,
      recordedBy: 'cli',
      previousSha256: '',
    });
  });

  test('--max-concurrency 2 overrides the stack: never more than two hosts at once, by SSM and by the printed lines', async () => {
    const before = ssm.commands.length;
    const run = await cli(['deploy', jars.v3, '--stack', STACK, '--version', VERSIONS.v3, '--max-concurrency', '2']);
    expect(run.code, run.stderr).toBe(0);
    figures.push(`deploy ${VERSIONS.v3} to 3 hosts at MaxConcurrency 2: ${run.ms} ms`);
    const [rollOut] = sentCommands(before);
    expect(rollOut!.maxConcurrency).toBe('2');
    expect(ssm.peakConcurrency(rollOut!.commandId)).toBeLessThanOrEqual(2);
    const events = progress(run.stdout);
    expect(events.filter(({ event }) => event === 'Success')).toHaveLength(3);
    expect(printedPeak(events)).toBeLessThanOrEqual(2);
    expect(await recorded()).toMatchObject({ version: VERSIONS.v3, previousVersion: VERSIONS.v2 });
  });

  test('rollback switches every host to its warm standby and records the previous release', async () => {
    const run = await cli(['rollback', '--stack', STACK]);
    expect(run.code, run.stderr).toBe(0);
    figures.push(`rollback on 3 hosts: ${run.ms} ms`);
    expect(progress(run.stdout).filter(({ event }) => event === 'Success')).toHaveLength(3);
    expect(run.stdout).toMatch(new RegExp(`ec2-bluegreen: rollback done in \\d+\\.\\ds: ${VERSIONS.v2} is live on 3 hosts`));
    expect(await servedVersions()).toEqual([VERSIONS.v2, VERSIONS.v2, VERSIONS.v2]);
    expect(await recorded()).toMatchObject({ version: VERSIONS.v2, previousVersion: VERSIONS.v3, recordedBy: 'cli' });
  });

  test('status shows each host, and whether they agree', async () => {
    const run = await cli(['status', '--stack', STACK]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^${STACK}: 3 hosts \\(tag ${FLEET_TAG_KEY}=${TAG_VALUE}\\) at http://127\\.0\\.0\\.1:${PORTS.balancer}/\\n`));
    expect(run.stdout).toMatch(new RegExp(`\\nrecorded release \\(new hosts boot it\\): ${VERSIONS.v2} \\(sha256 [0-9a-f]{12}, recorded at \\S+ by cli\\); previous ${VERSIONS.v3}\\n`));
    for (const fleetHost of fleet.hosts) {
      expect(run.stdout).toMatch(new RegExp(`\\n${fleetHost.instanceId} +(blue|green) +${VERSIONS.v2} +${VERSIONS.v3} \\((blue|green)\\) +yes +yes\\n`));
    }
    expect(run.stdout).toMatch(new RegExp(`\\nall 3 hosts serve ${VERSIONS.v2}\\n$`));
    const json = JSON.parse((await cli(['status', '--stack', STACK, '--json'])).stdout) as { hosts: Array<{ instanceId: string; status: { live: string } }> };
    expect(json.hosts.map((host) => host.instanceId)).toEqual(fleet.hosts.map((fleetHost) => fleetHost.instanceId));
  });

  test('history shows each host\'s own history under its id', async () => {
    const run = await cli(['history', '--stack', STACK, '--limit', '2']);
    expect(run.code, run.stderr).toBe(0);
    const sections = run.stdout.trimEnd().split('\n\n');
    expect(sections.map((section) => section.split('\n')[0])).toEqual(fleet.hosts.map((fleetHost) => `== ${fleetHost.instanceId}`));
    for (const section of sections) {
      expect(section.split('\n').slice(2).map((row) => row.split(/\s+/).slice(1, 3))).toEqual([
        ['deploy', VERSIONS.v3],
        ['rollback', VERSIONS.v2],
      ]);
    }
  });

  test('a deploy that fails on the second host exits with its code, names it, leaves the third untouched and records nothing', async () => {
    // Host 2 cannot reach S3 (its agent's S3 endpoint is a closed port): it cannot fetch the jar.
    const second = fleet.hosts[1]!;
    ssm.register(second.instanceId, 'Online', { [FLEET_TAG_KEY]: TAG_VALUE }, { ...agentEnvironment(second), LOOPBACK_S3_URL: `http://127.0.0.1:${PORTS.closed}` });
    let run: CliRun;
    try {
      run = await cli(['deploy', jars.v4, '--stack', STACK, '--version', VERSIONS.v4]);
    } finally {
      ssm.register(second.instanceId, 'Online', { [FLEET_TAG_KEY]: TAG_VALUE }, agentEnvironment(second));
    }
    const [first, , third] = fleet.hosts.map((fleetHost) => fleetHost.instanceId);
    figures.push(`deploy failing on host 2: exit ${run.code} in ${run.ms} ms`);
    const hostCode = ssm.invocations.find((entry) => entry.instanceId === second.instanceId && entry.parameters.version === VERSIONS.v4)!.responseCode;
    expect(hostCode).toBeGreaterThan(0);
    expect(run.code).toBe(hostCode);
    expect(progress(run.stdout)).toEqual([
      { instanceId: first, event: 'started' },
      { instanceId: first, event: 'Success' },
      { instanceId: second.instanceId, event: 'started' },
      { instanceId: second.instanceId, event: 'Failed' },
      { instanceId: third, event: 'not run' },
    ]);
    expect(run.stdout).toMatch(new RegExp(`^${second.instanceId}: Failed after \\d+\\.\\ds: the deploy script failed with exit status ${hostCode}`, 'm'));
    expect(run.stderr).toMatch(new RegExp(`\\n${second.instanceId} \\| bluegreen: error: .*`));
    expect(run.stderr).toMatch(new RegExp(`ec2-bluegreen: Roll-out of ${VERSIONS.v4} failed: 1 of 3 hosts failed\\. ${second.instanceId}: the deploy script failed with exit status ${hostCode}`));
    expect(run.stderr).toMatch(new RegExp(`Not deployed \\(still on the previous release\\): ${third}\\.`));
    const recordedV2 = (await recorded())!;
    expect(recordedV2.version).toBe(VERSIONS.v2);
    // What to run to put the recorded release back on the host that took the new one.
    const advice = new RegExp(
      `Took the new release: ${first}\\. Nothing was recorded: ${RELEASE_PARAMETER} still names ${VERSIONS.v2}.*: npx ec2-bluegreen deploy (s3://\\S+) --sha256 ([0-9a-f]{64}) --version ${VERSIONS.v2} --stack ${STACK}`,
    ).exec(run.stderr);
    expect(advice?.slice(1)).toEqual([recordedV2.artifactUri, recordedV2.sha256]);
    expect(await servedVersions()).toEqual([VERSIONS.v4, VERSIONS.v2, VERSIONS.v2]);

    // The advice, run: the first host switches back to its warm standby, the others do nothing.
    const undo = await cli(['deploy', advice![1]!, '--sha256', advice![2]!, '--version', VERSIONS.v2, '--stack', STACK]);
    expect(undo.code, undo.stderr).toBe(0);
    expect(undo.stdout).toMatch(new RegExp(`^${first} \\| bluegreen \\[.*\\] standby +${VERSIONS.v2} is the warm standby`, 'm'));
    expect(await servedVersions()).toEqual([VERSIONS.v2, VERSIONS.v2, VERSIONS.v2]);
    // The same release again keeps the record's previous one.
    expect(await recorded()).toMatchObject({ version: VERSIONS.v2, previousVersion: VERSIONS.v3 });
  });

  test('a host that joins during the roll-out gets the release from a catch-up after it is recorded', async () => {
    let joined: FleetHost | undefined;
    const before = ssm.commands.length;
    const run = await cli(['deploy', jars.v5, '--stack', STACK, '--version', VERSIONS.v5], async () => {
      // The Auto Scaling group launches a host while the first host swaps.
      await waitUntil(() => sentCommands(before).some((command) => ssm.invocations.some((entry) => entry.commandId === command.commandId && entry.status === 'InProgress')));
      joined = await fleet.addHost(boot);
    });
    expect(run.code, run.stderr).toBe(0);
    figures.push(`deploy ${VERSIONS.v5} with a 4th host joining and caught up: ${run.ms} ms`);
    const [rollOut, ...catchUps] = sentCommands(before);
    expect(rollOut!.targetIds).not.toContain(joined!.instanceId);
    expect(catchUps).toHaveLength(1);
    expect(catchUps[0]).toMatchObject({ instanceIds: [joined!.instanceId], comment: expect.stringMatching(new RegExp(`^catch-up of ${rollOut!.commandId}: deploy ${VERSIONS.v5}`)) });
    expect(run.stderr).toMatch(new RegExp(`${joined!.instanceId} joined the fleet during the roll-out; command \\S+ deploys the recorded release ${VERSIONS.v5} to it`));
    expect(run.stdout).toMatch(new RegExp(`^${joined!.instanceId}: Success in`, 'm'));
    expect(await servedVersions()).toEqual(Array(4).fill(VERSIONS.v5));
    expect(run.stdout).toMatch(new RegExp(`deploy done in \\d+\\.\\ds: ${VERSIONS.v5} is live on 4 hosts`));
  });
});

async function waitUntil(predicate: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(50);
  }
}
