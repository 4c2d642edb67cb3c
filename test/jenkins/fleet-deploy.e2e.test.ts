/**
 * bluegreen-pipeline deploy on the fleet's own Jenkins, end to end on this machine: the Jenkins
 * tools exactly as the stack ships them (assets/jenkins/ plus the operator command bundled into
 * one file, lib/jenkins-tools.ts), run with this machine's node and no node_modules beside them,
 * with Jenkins' global variables as configure-jenkins renders them. The pipeline deploys through
 * bluegreen-fleet-deploy, which reads the fleet's settings from the settings file (run here as
 * root directly; the last tests go through real sudo as the build agent's user, as on the host).
 *
 * The bundled command talks, with the real AWS SDK, to the loopback SSM, S3 and CloudWatch Logs
 * stand-ins (test/support/), reached through AWS_ENDPOINT_URL_* with dummy credentials. The SSM
 * stand-in runs the deploy document (as its construct synthesizes it) by tag, with MaxConcurrency
 * and MaxErrors, on a local fleet (scripts/lib/fleet.ts): three hosts, each a real Nginx with two
 * JVM slots, behind a local Nginx standing in for the load balancer. Hosts boot as the fleet's
 * user data boots them: registered with the fleet tag, then the recorded release deployed.
 *
 * The tests run in order and each starts from the fleet the one before left.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FLEET_RELEASE_KEYS, FLEET_RELEASE_UNSET, FLEET_TAG_KEY } from '../../lib/contract.js';
import { DeployDocument } from '../../lib/constructs/deploy-document.js';
import { CLI_BUNDLE_NAME, jenkinsToolsDir } from '../../lib/jenkins-tools.js';
import { LocalFleet, recordedRelease, type BootRelease, type FleetHost, type HostBoot } from '../../scripts/lib/fleet.js';
import { buildJar, PROJECT_DIR } from '../support/host.js';
import { LoopbackLogs } from '../support/logs-server.js';
import { loopbackAwsEnvironment } from '../support/loopback.js';
import { LoopbackS3 } from '../support/s3-server.js';
import { LoopbackSsm, type CommandDocumentContent, type CommandRecord } from '../support/ssm-server.js';
import { JENKINS_TOOLS_DIR } from '../../lib/constructs/bluegreen-host.js';
import { AGENT, casc, FLEET_DEPLOY, FLEET_SUDOERS, fleetSettings, globalEnv, httpsJob, scratch, settings, settingsFile, type Settings } from './support.js';

const PORTS = { ssm: 18640, s3: 18641, logs: 18642, balancer: 18643, closed: 18644, firstHost: 18650 };
const TAG_VALUE = 'JenkinsFleet';
const DOCUMENT_NAME = 'JenkinsFleet-DeployDocument-Loopback';
const LOG_GROUP = 'JenkinsFleet-DeployDocumentOutputLogGroup-Loopback';
const BUCKET = 'jenkinsfleet-artifacts-loopback';
const UPLOAD_LOCATION = `s3://${BUCKET}/cli-releases/`;
const RELEASE_PARAMETER = '/ec2-bluegreen/JenkinsFleet/fleet-release';
/** Versions name this suite's own jars (another suite rebuilding a jar of the same name would change its checksum). */
const VERSIONS = { v1: 'jenkins-v1', v2: 'jenkins-v2', v3: 'jenkins-v3', v4: 'jenkins-v4', v5: 'jenkins-v5', v6: 'jenkins-v6' } as const;
type Version = keyof typeof VERSIONS;
/** A managed instance that carries the fleet's tag but has no host behind it (not Online). */
const PHANTOM = 'i-0f1ee7eee0000000e';
const INSTANCE_ID = /i-[0-9a-f]{8,17}/;

/** The fleet's settings as its stack writes them, for this fleet. */
const FLEET = {
  ...fleetSettings,
  documentName: DOCUMENT_NAME,
  fleetTarget: `tag:${FLEET_TAG_KEY}=${TAG_VALUE}`,
  maxConcurrency: '1',
  releaseParameter: RELEASE_PARAMETER,
  uploadLocation: UPLOAD_LOCATION,
  outputLogGroup: LOG_GROUP,
};

let ssm: LoopbackSsm;
let client: SSMClient;
let s3: LoopbackS3;
let logs: LoopbackLogs;
let fleet: LocalFleet;
let jars: Record<Version, string>;
let firstRelease: BootRelease;
let toolsDir: string;
const figures: string[] = [];

function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The deploy document exactly as its construct synthesizes it. */
function synthesizedDocument(): CommandDocumentContent {
  const stack = new Stack(new App(), 'JenkinsFleetDocument');
  new DeployDocument(stack, 'DeployDocument');
  const [document] = Object.values(Template.fromStack(stack).findResources('AWS::SSM::Document'));
  return document!.Properties.Content as CommandDocumentContent;
}

/** SSM Agent's environment on a host: its own, plus the S3 bridge (test/support/bin/aws) to `s3Url`. */
function agentEnvironment(host: FleetHost, s3Url = s3.url): Record<string, string> {
  const own = host.agentEnvironment();
  return { ...own, PATH: `${host.binDir}:${join(PROJECT_DIR, 'test', 'support', 'bin')}:${own.PATH}`, LOOPBACK_S3_URL: s3Url };
}

/** Registers `host` with the fleet's tag; with `s3Url`, its agent reaches S3 there (a closed port: it cannot). */
function register(host: FleetHost, s3Url?: string): void {
  ssm.register(host.instanceId, 'Online', { [FLEET_TAG_KEY]: TAG_VALUE }, agentEnvironment(host, s3Url));
}

/**
 * As the user data boots a host: SSM Agent registers it with the fleet tag, then it deploys the
 * recorded release. The boot runs `bluegreen deploy` itself, without the agent's S3 bridge, so an
 * s3:// release is handed over as the local jar with the same checksum.
 */
const boot: HostBoot = {
  agentStarted: (host) => register(host),
  release: async () => {
    const release = await recordedRelease(client, RELEASE_PARAMETER, firstRelease);
    const jar = Object.values(jars).find((path) => sha256Of(path) === release.sha256);
    return jar === undefined ? release : { ...release, artifactUri: jar };
  },
};

beforeAll(async () => {
  // The tools as the fleet's Jenkins gets them: the pipeline with the bundled command beside it.
  const started = Date.now();
  toolsDir = jenkinsToolsDir();
  figures.push(`Jenkins tools with the bundled command (${CLI_BUNDLE_NAME}) staged in ${Date.now() - started} ms`);
  jars = Object.fromEntries(Object.entries(VERSIONS).map(([key, version]) => [key, buildJar(version)])) as Record<Version, string>;
  firstRelease = { artifactUri: jars.v1, sha256: sha256Of(jars.v1), version: VERSIONS.v1 };
  logs = await LoopbackLogs.start({ port: PORTS.logs, logGroups: [LOG_GROUP] });
  s3 = await LoopbackS3.start({ port: PORTS.s3, buckets: [BUCKET] });
  ssm = await LoopbackSsm.start({
    port: PORTS.ssm,
    documents: { [DOCUMENT_NAME]: synthesizedDocument() },
    instances: {},
    invocationLagMs: 300,
    cloudWatchOutput: logs,
    environment: {},
    parameters: { [RELEASE_PARAMETER]: FLEET_RELEASE_UNSET },
  });
  client = new SSMClient({ endpoint: ssm.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  fleet = new LocalFleet({ size: 3, balancerPort: PORTS.balancer, firstHostPort: PORTS.firstHost, maxHosts: 4 });
  await fleet.up(boot);
  // The stack's own deploy recorded the first release.
  await putRecord(recordOf(firstRelease, 'cmd-0', 'cloudformation', ['', '', '']));
}, 180_000);

afterAll(async () => {
  await fleet?.down();
  await Promise.all([ssm?.close(), logs?.close(), s3?.close()]);
  if (figures.length > 0) console.log(`[Jenkins fleet deploy]\n  ${figures.join('\n  ')}`);
});

/** A release record in FLEET_RELEASE_KEYS lines, as whoever recorded it writes it. */
function recordOf(release: BootRelease, commandId: string, recordedBy: string, previous: [string, string, string]): string {
  const values: Record<keyof typeof FLEET_RELEASE_KEYS, string> = {
    artifactUri: `${UPLOAD_LOCATION}${release.sha256}.jar`,
    sha256: release.sha256,
    version: release.version,
    commandId,
    recordedAt: '2026-11-20T09:00:00Z',
    recordedBy,
    previousArtifactUri: previous[0],
    previousSha256: previous[1],
    previousVersion: previous[2],
  };
  return (Object.keys(FLEET_RELEASE_KEYS) as Array<keyof typeof FLEET_RELEASE_KEYS>).map((key) => `${FLEET_RELEASE_KEYS[key]}=${values[key]}`).join('\n');
}

async function putRecord(value: string): Promise<void> {
  await client.send(new PutParameterCommand({ Name: RELEASE_PARAMETER, Value: value, Type: 'String', Overwrite: true }));
}

async function recordLines(): Promise<string[]> {
  return ((await client.send(new GetParameterCommand({ Name: RELEASE_PARAMETER }))).Parameter?.Value ?? '').split('\n');
}

async function servedVersions(): Promise<string[]> {
  return Promise.all(fleet.hosts.map((fleetHost) => fleetHost.host.servedVersion()));
}

interface PipelineRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** The jar the build produced (build/libs/app.jar) and its sha256. */
  readonly jarPath: string;
  readonly sha256: string;
  /** What the stand-ins saw during the run. */
  readonly commands: CommandRecord[];
  readonly operations: string[];
  readonly s3Requests: string[];
}

interface PipelineOptions {
  /** Over the environment a push-triggered build on the fleet's Jenkins has. */
  readonly env?: Record<string, string>;
  /** Over the fleet's settings, in the settings file bluegreen-fleet-deploy reads. */
  readonly settings?: Partial<Settings>;
  /**
   * Run the pipeline as this user, with only the environment Jenkins gives a build (no AWS
   * endpoint), in `workspace`, deploying through `fleetCommand` (real sudo).
   * @default - as root, bluegreen-fleet-deploy run directly, with the loopback AWS environment
   */
  readonly asUser?: { readonly user: string; readonly workspace: string; readonly fleetCommand: string; readonly env: Record<string, string> };
  /** The pipeline to run. @default - bluegreen-pipeline in the staged Jenkins tools */
  readonly pipeline?: string;
  /** Runs while the pipeline does; it is given the pipeline's pid (the process Jenkins would signal). */
  readonly whileRunning?: (pid: number) => Promise<void>;
}

/**
 * `bluegreen-pipeline deploy` in a checkout whose build produced `version`'s jar, with the
 * fleet Jenkins' global variables (from the JCasC configure-jenkins renders) and what Jenkins
 * sets for a build that a push triggered. Run as a child process: the stand-ins answer in this one.
 */
async function deployToFleet(version: Version, options: PipelineOptions = {}): Promise<PipelineRun> {
  const workspace = options.asUser?.workspace ?? mkdtempSync(join(scratch, 'fleet-workspace-'));
  mkdirSync(join(workspace, 'build', 'libs'), { recursive: true });
  const jarPath = join(workspace, 'build', 'libs', 'app.jar');
  copyFileSync(jars[version], jarPath);
  const jenkinsEnv = globalEnv(casc(settings({ ...httpsJob, ...FLEET })));
  const build = { ...jenkinsEnv, DEPLOY_MODE: 'configured', JOB_NAME: 'shop', BUILD_NUMBER: '42', APP_VERSION: VERSIONS[version], ...options.env };
  const before = { commands: ssm.commands.length, operations: ssm.operations.length, s3: s3.requests.length };
  const started = Date.now();
  const pipeline = options.pipeline ?? join(toolsDir, 'bluegreen-pipeline');
  const asUser = options.asUser;
  const child =
    asUser === undefined
      ? spawn(pipeline, ['deploy'], {
          cwd: workspace,
          env: { ...rootFleetEnvironment(options.settings), BLUEGREEN_FLEET_COMMAND: join(toolsDir, 'bluegreen-fleet-deploy'), ...build },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(
          'runuser',
          ['-u', asUser.user, '--', 'env', '-i', ...Object.entries({ ...asUser.env, ...build, BLUEGREEN_FLEET_COMMAND: asUser.fleetCommand }).map(([key, value]) => `${key}=${value}`), pipeline, 'deploy'],
          { cwd: workspace, stdio: ['ignore', 'pipe', 'pipe'] },
        );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  const during = options.whileRunning?.(child.pid!);
  const code = await closed;
  await during;
  if (process.env.JENKINS_FLEET_VERBOSE === '1') console.log(`$ bluegreen-pipeline deploy (${version})\n${stdout}${stderr}`);
  return {
    code,
    stdout,
    stderr,
    ms: Date.now() - started,
    jarPath,
    sha256: sha256Of(jarPath),
    commands: ssm.commands.slice(before.commands),
    operations: ssm.operations.slice(before.operations),
    s3Requests: s3.requests.slice(before.s3),
  };
}

/**
 * What bluegreen-fleet-deploy has as root on this machine: the loopback AWS stand-ins (the region
 * from the settings alone, as on the Jenkins instance) and the fleet's settings file.
 */
function rootFleetEnvironment(overrides: Partial<Settings> = {}): Record<string, string> {
  const aws = loopbackAwsEnvironment({ SSM: ssm.url, S3: s3.url, CLOUDWATCH_LOGS: logs.url });
  delete aws.AWS_REGION;
  return { ...aws, BLUEGREEN_JENKINS_SETTINGS: settingsFile(settings({ ...httpsJob, ...FLEET, ...overrides })) };
}

/** The per-host progress lines (`ID: started ...`, `ID: Success in ...`), in the order printed. */
function progress(stdout: string): Array<{ readonly instanceId: string; readonly event: string }> {
  return stdout
    .split('\n')
    .map((line) => new RegExp(`^(${INSTANCE_ID.source}): (started|Success|Failed|TimedOut|Cancelled|not run)\\b`).exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ instanceId: match[1]!, event: match[2]! }));
}

/** Resolves once `predicate` holds; the pipeline is running meanwhile. */
async function waitUntil(predicate: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(20);
  }
}

/** Whether the `index`th command sent since `before` has a host running it. */
function running(before: number, index: number): boolean {
  const command = ssm.commands[before + index];
  return command !== undefined && ssm.invocations.some((entry) => entry.commandId === command.commandId && entry.status === 'InProgress');
}

const ids = () => fleet.hosts.slice(0, 3).map((fleetHost) => fleetHost.instanceId);

describe('bluegreen-pipeline deploy on the fleet’s Jenkins: the bundled operator command against a local fleet', () => {
  test('uploads the jar by its sha256, sends the document to the fleet tag one host at a time with MaxErrors 0, follows each host, then records the release', async () => {
    // WHEN a push-triggered build deploys on the fleet's Jenkins (DEPLOY_MODE=configured), over the recorded v1
    const run = await deployToFleet('v2');
    figures.push(`deploy ${VERSIONS.v2} to 3 hosts at MaxConcurrency 1: ${run.ms} ms`);

    // THEN
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.stdout).toContain(`bluegreen-pipeline: deploying ${run.jarPath} as ${VERSIONS.v2} to the fleet`);
    // AND the jar went to the upload location under its sha256, as the operator command uploads it
    const uri = `${UPLOAD_LOCATION}${run.sha256}.jar`;
    const uploaded = s3.object(BUCKET, `cli-releases/${run.sha256}.jar`);
    expect(uploaded?.body.equals(readFileSync(run.jarPath))).toBe(true);
    expect(uploaded?.contentType).toBe('application/java-archive');
    // AND the document went to the tag, not a list of instances, with the release as parameters,
    // one host at a time (the settings' maxConcurrency), stopping at the first failure, output to the log group
    expect(run.commands).toHaveLength(1);
    const [rollOut] = run.commands;
    expect(rollOut).toMatchObject({
      documentName: DOCUMENT_NAME,
      targets: [{ Key: `tag:${FLEET_TAG_KEY}`, Values: [TAG_VALUE] }],
      instanceIds: [],
      maxConcurrency: '1',
      maxErrors: '0',
      cloudWatchLogGroupName: LOG_GROUP,
      comment: `ec2-bluegreen deploy ${VERSIONS.v2} by Jenkins shop #42`,
      parameters: expect.objectContaining({ action: 'deploy', artifactUri: uri, sha256: run.sha256, version: VERSIONS.v2 }),
    });
    expect(ssm.peakConcurrency(rollOut!.commandId)).toBe(1);
    // AND a line for each host as it starts and as it finishes, one host after the other,
    // with the host's own output, live from the log group, in between
    expect(progress(run.stdout)).toEqual(ids().flatMap((instanceId) => [{ instanceId, event: 'started' }, { instanceId, event: 'Success' }]));
    expect(run.stdout).toMatch(new RegExp(`^${ids()[0]}: started \\(host 1 of 3\\)$`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^${ids()[2]}: Success in \\d+\\.\\ds \\(3 of 3 done\\)$`, 'm'));
    for (const id of ids()) {
      const lines = run.stdout.split('\n');
      const start = lines.findIndex((line) => line.startsWith(`${id}: started`));
      const end = lines.findIndex((line) => line.startsWith(`${id}: Success`));
      const switched = lines.findIndex((line) => line.startsWith(`${id} | bluegreen [`) && /\]\s+switch\s/.test(line));
      expect(switched).toBeGreaterThan(start);
      expect(switched).toBeLessThan(end);
    }
    expect(await servedVersions()).toEqual(Array(3).fill(VERSIONS.v2));
    // AND the release is recorded for the hosts the group adds, in the contract's keys, by jenkins
    const record = await recordLines();
    expect(record.map((line) => line.split('=')[0])).toEqual(Object.values(FLEET_RELEASE_KEYS));
    expect(record).toEqual([
      `artifactUri=${uri}`,
      `sha256=${run.sha256}`,
      `version=${VERSIONS.v2}`,
      `commandId=${rollOut!.commandId}`,
      expect.stringMatching(/^recordedAt=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/),
      'recordedBy=jenkins',
      // AND the release it replaced, every host's warm standby now
      `previousArtifactUri=${UPLOAD_LOCATION}${firstRelease.sha256}.jar`,
      `previousSha256=${firstRelease.sha256}`,
      `previousVersion=${VERSIONS.v1}`,
    ]);
    expect(run.stderr).toContain(`recorded ${VERSIONS.v2} in ${RELEASE_PARAMETER}: hosts the Auto Scaling group adds boot it`);
    expect(run.stdout).toMatch(new RegExp(`ec2-bluegreen: deploy done in \\d+\\.\\ds: ${VERSIONS.v2} is live on 3 hosts\\n`));
    // AND once recorded, it asks which hosts carry the tag now: none joined, so nothing more is sent
    expect(run.operations.slice(-3)).toEqual(['GetParameter', 'PutParameter', 'DescribeInstanceInformation']);
  });

  test('the same jar again (a rebuild): the record keeps its previous release', async () => {
    const run = await deployToFleet('v2');
    expect(run.code, run.stderr).toBe(0);
    const record = await recordLines();
    expect(record).toContain(`commandId=${run.commands[0]!.commandId}`);
    expect(record.slice(-3)).toEqual([
      `previousArtifactUri=${UPLOAD_LOCATION}${firstRelease.sha256}.jar`,
      `previousSha256=${firstRelease.sha256}`,
      `previousVersion=${VERSIONS.v1}`,
    ]);
  });

  test('nothing recorded yet (FLEET_RELEASE_UNSET): the record names no previous release', async () => {
    await putRecord(FLEET_RELEASE_UNSET);
    const run = await deployToFleet('v3');
    expect(run.code, run.stderr).toBe(0);
    const record = await recordLines();
    expect(record).toContain(`version=${VERSIONS.v3}`);
    expect(record.slice(-3)).toEqual(['previousArtifactUri=', 'previousSha256=', 'previousVersion=']);
    expect(await servedVersions()).toEqual(Array(3).fill(VERSIONS.v3));
  });

  test('when host 2 fails: names it with its status and output, names the host never reached and the one that took it, records nothing, and exits with its code', async () => {
    // GIVEN host 2 cannot fetch the jar (its agent's S3 endpoint is a closed port)
    const [first, second, third] = fleet.hosts;
    const recordBefore = await recordLines();
    register(second!, `http://127.0.0.1:${PORTS.closed}`);
    let run: PipelineRun;
    try {
      // WHEN
      run = await deployToFleet('v4');
    } finally {
      register(second!);
    }
    figures.push(`deploy failing on host 2: exit ${run.code} in ${run.ms} ms`);

    // THEN the build fails with the exit code of the host that failed
    const [rollOut] = run.commands;
    const failed = ssm.invocations.find((entry) => entry.commandId === rollOut!.commandId && entry.instanceId === second!.instanceId)!;
    expect(failed.responseCode).toBeGreaterThan(0);
    expect(run.code).toBe(failed.responseCode);
    // AND SSM stopped there: the third host never ran it
    expect(progress(run.stdout)).toEqual([
      { instanceId: first!.instanceId, event: 'started' },
      { instanceId: first!.instanceId, event: 'Success' },
      { instanceId: second!.instanceId, event: 'started' },
      { instanceId: second!.instanceId, event: 'Failed' },
      { instanceId: third!.instanceId, event: 'not run' },
    ]);
    expect(run.stdout).toMatch(new RegExp(`^${second!.instanceId}: Failed after \\d+\\.\\ds: the deploy script failed with exit status ${failed.responseCode}`, 'm'));
    // AND the failed host is named with its status and the end of its output
    const lastError = failed.stderr.split('\n').filter((line) => /\berror:/i.test(line)).at(-1)!;
    expect(lastError).toBeTruthy();
    expect(run.stderr).toContain(`${second!.instanceId} | ${lastError}`);
    const summary = run.stderr.split('\n').find((line) => line.includes(`Roll-out of ${VERSIONS.v4} failed`))!;
    expect(summary).toMatch(
      new RegExp(`Roll-out of ${VERSIONS.v4} failed: 1 of 3 hosts failed\\. ${second!.instanceId}: the deploy script failed with exit status ${failed.responseCode}( \\(.*\\))?; host: `),
    );
    expect(summary).toContain(lastError.trim().slice(-40));
    expect(run.stderr).not.toMatch(new RegExp(`${third!.instanceId}: the deploy script failed`));
    expect(run.stderr).toContain(`Not deployed (still on the previous release): ${third!.instanceId}.`);
    expect(run.stderr).toContain(`Full output: CloudWatch log group ${LOG_GROUP}, streams ${rollOut!.commandId}/INSTANCE/*`);
    // AND the host that took it, and what puts the recorded release back on it
    expect(run.stderr).toContain(`Took the new release: ${first!.instanceId}. Nothing was recorded: ${RELEASE_PARAMETER} still names ${VERSIONS.v3}`);
    expect(run.stderr).toMatch(new RegExp(`npx ec2-bluegreen deploy ${UPLOAD_LOCATION}[0-9a-f]{64}\\.jar --sha256 [0-9a-f]{64} --version ${VERSIONS.v3} --fleet-from-env`));
    // AND nothing was recorded: new hosts still boot the previous release
    expect(run.operations).not.toContain('PutParameter');
    expect(await recordLines()).toEqual(recordBefore);
    expect(await servedVersions()).toEqual([VERSIONS.v4, VERSIONS.v3, VERSIONS.v3]);
  });

  describe('a host the Auto Scaling group added while the roll-out ran (SSM picked the targets when it was sent)', () => {
    test('gets the release too: once recorded, one catch-up by instance id, to that host only, with the same parameters, followed to the end; a host not Online is left to its boot', async () => {
      // GIVEN a roll-out to three hosts, during which the group launches a fourth, and a host that is not Online yet joins
      let joined: FleetHost | undefined;
      const before = ssm.commands.length;

      // WHEN
      const run = await deployToFleet('v5', {
        whileRunning: async () => {
          await waitUntil(() => running(before, 0));
          ssm.register(PHANTOM, 'ConnectionLost', { [FLEET_TAG_KEY]: TAG_VALUE });
          joined = await fleet.addHost(boot);
        },
      });
      ssm.deregister(PHANTOM);
      figures.push(`deploy ${VERSIONS.v5} with a 4th host joining and caught up: ${run.ms} ms`);

      // THEN
      expect(run.code, run.stderr).toBe(0);
      const [rollOut, catchUp, ...more] = run.commands;
      expect(more).toEqual([]);
      expect(rollOut!.targetIds).not.toContain(joined!.instanceId);
      // AND the catch-up goes to the host that joined and is Online, by id, not by tag
      expect(catchUp).toMatchObject({
        instanceIds: [joined!.instanceId],
        targets: [],
        comment: `catch-up of ${rollOut!.commandId}: deploy ${VERSIONS.v5} by Jenkins shop #42`,
      });
      for (const field of ['documentName', 'parameters', 'deliveryTimeoutSeconds', 'cloudWatchLogGroupName', 'maxErrors'] as const) {
        expect(catchUp![field], field).toEqual(rollOut![field]);
      }
      expect(catchUp!.parameters).toMatchObject({ action: 'deploy', artifactUri: `${UPLOAD_LOCATION}${run.sha256}.jar`, sha256: run.sha256, version: VERSIONS.v5 });
      // AND the release was recorded before the catch-up was sent, so a host that joins from now on boots it
      const sends = run.operations.flatMap((operation, at) => (operation === 'SendCommand' ? [at] : []));
      expect(run.operations.lastIndexOf('PutParameter')).toBeGreaterThan(sends[0]!);
      expect(run.operations.lastIndexOf('PutParameter')).toBeLessThan(sends[1]!);
      expect(await recordLines()).toContain(`commandId=${rollOut!.commandId}`);
      // AND it is followed as the roll-out is, host by host
      expect(run.stderr).toContain(`${joined!.instanceId} joined the fleet during the roll-out; command ${catchUp!.commandId} deploys the recorded release ${VERSIONS.v5} to it`);
      expect(progress(run.stdout).slice(-2)).toEqual([
        { instanceId: joined!.instanceId, event: 'started' },
        { instanceId: joined!.instanceId, event: 'Success' },
      ]);
      // AND the host that is not Online is left to its boot, with a note
      expect(run.stderr).toContain(`${PHANTOM} joined the fleet during the roll-out but is ConnectionLost: its boot deploys the recorded release ${VERSIONS.v5}`);
      expect(run.stdout).toMatch(new RegExp(`ec2-bluegreen: deploy done in \\d+\\.\\ds: ${VERSIONS.v5} is live on 4 hosts`));
      expect(await servedVersions()).toEqual(Array(4).fill(VERSIONS.v5));
    });

    test('a host that joined but is not Online yet is skipped with a note: no catch-up, its boot reads the recorded release', async () => {
      const before = ssm.commands.length;
      const run = await deployToFleet('v5', {
        whileRunning: async () => {
          await waitUntil(() => ssm.commands.length > before);
          ssm.register(PHANTOM, 'Inactive', { [FLEET_TAG_KEY]: TAG_VALUE });
        },
      });
      ssm.deregister(PHANTOM);
      expect(run.code, run.stderr).toBe(0);
      expect(run.commands).toHaveLength(1);
      expect(run.operations.at(-1)).toBe('DescribeInstanceInformation');
      expect(run.stderr).toContain(`${PHANTOM} joined the fleet during the roll-out but is Inactive: its boot deploys the recorded release ${VERSIONS.v5}`);
    });

    test('a failing catch-up fails the build with the host’s exit code, naming it with its output; the release stays recorded', async () => {
      // GIVEN the fourth host joins (again) during the roll-out, and cannot fetch the jar
      const joining = fleet.hosts[3]!;
      ssm.deregister(joining.instanceId);
      const before = ssm.commands.length;
      let run: PipelineRun;
      try {
        // WHEN
        run = await deployToFleet('v6', {
          whileRunning: async () => {
            await waitUntil(() => running(before, 0));
            register(joining, `http://127.0.0.1:${PORTS.closed}`);
          },
        });
      } finally {
        register(joining);
      }

      // THEN
      const [rollOut, catchUp] = run.commands;
      expect(run.commands).toHaveLength(2);
      expect(catchUp!.instanceIds).toEqual([joining.instanceId]);
      const failed = ssm.invocations.find((entry) => entry.commandId === catchUp!.commandId)!;
      expect(failed.responseCode).toBeGreaterThan(0);
      expect(run.code).toBe(failed.responseCode);
      expect(run.stdout).toMatch(new RegExp(`^${joining.instanceId}: Failed after \\d+\\.\\ds: the deploy script failed with exit status ${failed.responseCode}`, 'm'));
      const lastError = failed.stderr.split('\n').filter((line) => /\berror:/i.test(line)).at(-1)!;
      expect(run.stderr).toContain(`${joining.instanceId} | ${lastError}`);
      const summary = run.stderr.split('\n').find((line) => line.includes(`Catch-up of ${VERSIONS.v6}`))!;
      expect(summary).toMatch(
        new RegExp(
          `Catch-up of ${VERSIONS.v6} to hosts that joined during the roll-out failed: 1 of 1 hosts failed\\. ${joining.instanceId}: the deploy script failed with exit status ${failed.responseCode}( \\(.*\\))?; host: `,
        ),
      );
      expect(summary).toContain(lastError.trim().slice(-40));
      expect(run.stderr).toContain(`Full output: CloudWatch log group ${LOG_GROUP}, streams ${catchUp!.commandId}/INSTANCE/*`);
      expect(run.stderr).toContain(`${VERSIONS.v6} stays recorded: the hosts of the roll-out run it, and hosts the Auto Scaling group adds boot it. Run the same command again`);
      expect(run.stdout).not.toContain('deploy done');
      // AND the release stays recorded: the roll-out's hosts run it
      expect(run.operations.filter((operation) => operation === 'PutParameter')).toHaveLength(1);
      expect(await recordLines()).toEqual(expect.arrayContaining([`version=${VERSIONS.v6}`, `commandId=${rollOut!.commandId}`]));
      expect(await servedVersions()).toEqual([VERSIONS.v6, VERSIONS.v6, VERSIONS.v6, VERSIONS.v5]);
    });

    test('when SSM will not list the fleet, the build fails: the release is recorded, but a host that joined may be behind', async () => {
      const before = ssm.commands.length;
      const run = await deployToFleet('v6', {
        whileRunning: async () => {
          await waitUntil(() => ssm.commands.length > before);
          ssm.failNext('DescribeInstanceInformation', 'AccessDeniedException', 'User is not authorized to perform: ssm:DescribeInstanceInformation');
        },
      });
      expect(run.code).toBe(9);
      expect(run.commands).toHaveLength(1);
      expect(run.operations.filter((operation) => operation === 'PutParameter')).toHaveLength(1);
      expect(run.stderr).toContain('the release is recorded, but asking which hosts joined the fleet meanwhile failed (AccessDeniedException: ');
      expect(run.stderr).toContain('it needs ssm:DescribeInstanceInformation');
      expect(run.stderr).toContain(`run the same command again (a no-op on the others) to bring them to ${VERSIONS.v6}`);
    });

    test('an aborted build stops following the catch-up and says the release is recorded and the catch-up goes on in SSM', async () => {
      // GIVEN the fourth host joins (again) during a roll-out
      const joining = fleet.hosts[3]!;
      ssm.deregister(joining.instanceId);
      const before = ssm.commands.length;
      let killedAt = 0;

      // WHEN Jenkins aborts the build (SIGTERM) while the catch-up runs
      const run = await deployToFleet('v4', {
        whileRunning: async (pid) => {
          await waitUntil(() => running(before, 0));
          register(joining);
          await waitUntil(() => running(before, 1));
          killedAt = Date.now();
          process.kill(pid, 'SIGTERM');
        },
      });
      await ssm.idle();

      // THEN
      expect(run.code).toBe(143);
      expect(Date.now() - killedAt).toBeLessThan(10_000);
      const [rollOut, catchUp] = run.commands;
      expect(catchUp!.instanceIds).toEqual([joining.instanceId]);
      expect(run.stderr).toContain(`stopped following command ${catchUp!.commandId}; it goes on on the hosts.`);
      expect(run.stderr).toContain('Its release is recorded');
      expect(run.operations.filter((operation) => operation === 'PutParameter')).toHaveLength(1);
      expect(await recordLines()).toEqual(expect.arrayContaining([`version=${VERSIONS.v4}`, `commandId=${rollOut!.commandId}`]));
    });
  });

  test('an aborted build stops following the roll-out, says it goes on in SSM, and records nothing', async () => {
    // GIVEN a roll-out that does not end before Jenkins aborts the build (SIGTERM)
    const recordBefore = await recordLines();
    const before = ssm.commands.length;
    let killedAt = 0;

    // WHEN
    const run = await deployToFleet('v3', {
      whileRunning: async (pid) => {
        await waitUntil(() => running(before, 0));
        killedAt = Date.now();
        process.kill(pid, 'SIGTERM');
      },
    });
    const [rollOut] = run.commands;
    const stillRunning = ssm.commandState(rollOut!.commandId).status;
    await ssm.idle();

    // THEN it stops at once, while SSM goes on
    expect(run.code).toBe(143);
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    expect(['Pending', 'InProgress']).toContain(stillRunning);
    expect(run.stderr).toContain(`stopped following command ${rollOut!.commandId}; it goes on on the hosts.`);
    expect(run.stderr).toContain('Its release is not recorded for hosts the Auto Scaling group adds');
    expect(run.operations).not.toContain('PutParameter');
    expect(await recordLines()).toEqual(recordBefore);
  });

  test('a refused SendCommand fails the build before anything is deployed or recorded', async () => {
    ssm.failNext('SendCommand', 'AccessDeniedException', 'User is not authorized to perform: ssm:SendCommand');
    const run = await deployToFleet('v5');
    expect(run.code).toBe(9);
    expect(run.stderr).toContain(
      `Systems Manager refused to run ${DOCUMENT_NAME} on the hosts tagged ${FLEET_TAG_KEY}=${TAG_VALUE} (AccessDeniedException: User is not authorized to perform: ssm:SendCommand). Nothing ran on the hosts.`,
    );
    expect(run.commands).toEqual([]);
    expect(run.operations).toEqual(['DescribeInstanceInformation', 'GetParameter', 'SendCommand']);
  });

  test.each<[string, () => void]>([
    ['answers 500', () => ssm.failNextAfterHandling('SendCommand')],
    ['drops the connection', () => ssm.dropNextAfterHandling('SendCommand')],
  ])('SSM creates the roll-out and then %s: the build finds and follows that one command, never sends a second, and records it', async (_case, loseTheAnswer) => {
    // GIVEN SSM that loses its answer to the next SendCommand after creating the command
    loseTheAnswer();

    // WHEN the build deploys
    const run = await deployToFleet('v5');

    // THEN it succeeds on the one roll-out SSM created: every send created a command, none twice
    expect(run.code, run.stderr).toBe(0);
    const rollOuts = run.commands.filter((command) => command.targets.length > 0);
    expect(rollOuts).toHaveLength(1);
    expect(run.operations.filter((operation) => operation === 'SendCommand')).toHaveLength(run.commands.length);
    expect(run.operations).toContain('ListCommands');
    expect(await recordLines()).toEqual(expect.arrayContaining([`version=${VERSIONS.v5}`, `commandId=${rollOuts[0]!.commandId}`]));
  });

  test('no host carries the fleet’s tag: nothing is uploaded, sent or recorded', async () => {
    const run = await deployToFleet('v5', { settings: { fleetTarget: `tag:${FLEET_TAG_KEY}=Nobody` } });
    expect(run.code).toBe(9);
    expect(run.stderr).toContain(`no host of tag ${FLEET_TAG_KEY}=Nobody (FLEET_TARGET) is Online in Systems Manager (none registered), so nothing was sent`);
    expect(run.operations).toEqual(['DescribeInstanceInformation']);
    expect(run.s3Requests).toEqual([]);
  });

  test.each<[string, PipelineOptions, RegExp]>([
    ['no fleet settings (not the fleet’s Jenkins)', { settings: { deployMode: 'host' } }, /the fleet's settings in .* are not usable: these settings are not a fleet's Jenkins \(no deployMode=fleet\)/],
    ['a target that is not a tag', { settings: { fleetTarget: 'i-0123456789abcdef0' } }, /setting fleetTarget must be tag:KEY=VALUE, not 'i-0123456789abcdef0'/],
    ['a max concurrency SSM would refuse', { settings: { maxConcurrency: '0' } }, /setting maxConcurrency must be a number of hosts \(1-9999\) or a percentage/],
    ['DEPLOY_MODE=host on the fleet’s Jenkins', { env: { DEPLOY_MODE: 'host' } }, /this is the fleet's Jenkins, on an instance without the engine/],
    ['a fleet deploy without the operator command beside it', { env: { BLUEGREEN_FLEET_COMMAND: FLEET_DEPLOY } }, /the fleet deploy runs the operator command .*\/ec2-bluegreen\.mjs, which is missing/],
    ['a version the engine would refuse', { env: { APP_VERSION: 'v 1' } }, /version 'v 1' is not one bluegreen accepts/],
  ])('fails with exit 2 before any AWS call on %s', async (_case, options, message) => {
    const run = await deployToFleet('v5', options);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.operations).toEqual([]);
    expect(run.s3Requests).toEqual([]);
  });
});

describe('through real sudo, as the build agent’s user (which never reaches AWS itself): the sudoers-fleet rule and bluegreen-fleet-deploy', () => {
  /** Stands in for jenkins-agent; the rule is rendered for it. */
  const AGENT_USER = 'bluegreen-test-agent';
  const dropIn = `/etc/sudoers.d/bluegreen-test-fleet-${process.pid}`;
  let createdUser = false;
  let base: string;
  let workspaces: string;
  let fleetCommand: string;
  let pipeline: string;
  let buildEnv: Record<string, string>;
  let userIds: { uid: number; gid: number };

  function must(command: string, args: string[]): string {
    const result = spawnSync(command, args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}${result.stdout}`);
    return result.stdout.trim();
  }

  /** A fresh workspace of the user's, as Jenkins makes one for a job. */
  function workspace(): string {
    const dir = mkdtempSync(join(workspaces, 'shop-'));
    chmodSync(dir, 0o750);
    mkdirSync(join(dir, 'build', 'libs'), { recursive: true });
    must('chown', ['-R', `${AGENT_USER}:`, dir]);
    return dir;
  }

  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error('the real sudo fleet deploy needs root (a user, a sudoers drop-in): run it as root, as CI does.');
    if (spawnSync('id', ['-u', AGENT_USER]).status !== 0) {
      must('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', AGENT_USER]);
      createdUser = true;
    }
    userIds = { uid: Number(must('id', ['-u', AGENT_USER])), gid: Number(must('id', ['-g', AGENT_USER])) };
    // The host's layout: /usr/local/lib and /var/lib open to all, the workspaces the agent's.
    base = mkdtempSync(join(tmpdir(), 'bluegreen-fleet-sudo-'));
    chmodSync(base, 0o755);
    workspaces = join(base, 'workspace');
    mkdirSync(workspaces, { mode: 0o750 });
    chownSync(workspaces, userIds.uid, userIds.gid);
    mkdirSync(join(base, 'bin'));
    chmodSync(join(base, 'bin'), 0o755);
    // The pipeline as installed (root's, readable by all); nothing else of the tools is needed by the build.
    pipeline = join(base, 'bin', 'bluegreen-pipeline');
    copyFileSync(join(toolsDir, 'bluegreen-pipeline'), pipeline);
    chmodSync(pipeline, 0o755);
    // The fleet deploy "installed" for root: on the host it needs nothing from the environment;
    // here root also needs the loopback stand-ins, which a build could never hand it.
    fleetCommand = join(base, 'bin', 'bluegreen-fleet-deploy');
    const env = { ...rootFleetEnvironment(), BLUEGREEN_SUDO_ARTIFACT_ROOT: workspaces, PATH: process.env.PATH! };
    const exports = Object.entries(env).map(([key, value]) => `export ${key}=${JSON.stringify(value)}`);
    writeFileSync(fleetCommand, ['#!/bin/bash', ...exports, `exec ${JSON.stringify(join(toolsDir, 'bluegreen-fleet-deploy'))} "$@"`, ''].join('\n'), { mode: 0o755 });
    // The stack's rule, with this machine's command, workspaces and user in place of the host's.
    const rendered = readFileSync(FLEET_SUDOERS, 'utf8')
      .replaceAll(`${JENKINS_TOOLS_DIR}/bluegreen-fleet-deploy`, fleetCommand)
      .replaceAll(`${AGENT.home}/workspace`, workspaces)
      .replace(/^jenkins-agent(?= ALL=\(root\) NOPASSWD:)/m, AGENT_USER);
    expect(rendered).toContain(`${AGENT_USER} ALL=(root) NOPASSWD: BLUEGREEN_FLEET_FROM_JENKINS`);
    const candidate = join(base, 'sudoers');
    writeFileSync(candidate, rendered, { mode: 0o440 });
    must('visudo', ['-c', '-q', '-f', candidate]);
    copyFileSync(candidate, dropIn);
    chmodSync(dropIn, 0o440);
    must('visudo', ['-c', '-q']);
    // What a build has: Jenkins' variables, a PATH; and here, settings that would point a
    // command that took the caller's environment somewhere else entirely.
    buildEnv = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: workspaces,
      FLEET_TARGET: `tag:${FLEET_TAG_KEY}=Nobody`,
      FLEET_DOCUMENT: 'AWS-RunShellScript',
      AWS_ENDPOINT_URL_SSM: `http://127.0.0.1:${PORTS.closed}`,
      NODE_OPTIONS: '--require /nonexistent.js',
    };
  });

  afterAll(() => {
    rmSync(dropIn, { force: true });
    if (base) rmSync(base, { recursive: true, force: true });
    if (createdUser) spawnSync('userdel', [AGENT_USER]);
  });

  test('a jar in its workspace deploys to the fleet’s tag and is recorded; the build’s own FLEET_*, AWS_* and NODE_OPTIONS never reach root', async () => {
    // GIVEN a build's workspace
    const dir = workspace();

    // WHEN the pipeline runs as the agent's user, deploying through sudo
    const run = await deployToFleet('v2', { asUser: { user: AGENT_USER, workspace: dir, fleetCommand: `sudo -n ${fleetCommand}`, env: buildEnv } });

    // THEN
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain(`bluegreen-pipeline: deploying ${run.jarPath} as ${VERSIONS.v2} to the fleet: sudo -n ${fleetCommand}`);
    expect(run.commands).toHaveLength(1);
    expect(run.commands[0]).toMatchObject({
      documentName: DOCUMENT_NAME,
      targets: [{ Key: `tag:${FLEET_TAG_KEY}`, Values: [TAG_VALUE] }],
      comment: `ec2-bluegreen deploy ${VERSIONS.v2} by Jenkins shop #42`,
      parameters: expect.objectContaining({ artifactUri: `${UPLOAD_LOCATION}${run.sha256}.jar`, sha256: run.sha256 }),
    });
    expect(await recordLines()).toEqual(expect.arrayContaining([`version=${VERSIONS.v2}`, 'recordedBy=jenkins']));
    expect(new Set(await servedVersions())).toEqual(new Set([VERSIONS.v2]));
    // AND the private copy it deployed from is gone
    expect(must('bash', ['-c', 'ls -d /var/tmp/bluegreen-fleet-deploy.* 2>/dev/null || true'])).toBe('');
  });

  test('a jar outside its workspaces: sudo itself refuses, the build fails, nothing is uploaded, sent or recorded', async () => {
    const dir = workspace();
    const recordBefore = await recordLines();
    const run = await deployToFleet('v3', {
      asUser: { user: AGENT_USER, workspace: dir, fleetCommand: `sudo -n ${fleetCommand}`, env: { ...buildEnv, APP_JAR: pipeline } },
    });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(1);
    expect(run.stderr).toContain('a password is required');
    expect(run.operations).toEqual([]);
    expect(run.s3Requests).toEqual([]);
    expect(await recordLines()).toEqual(recordBefore);
  });

  test.each<[string, (dir: string) => string[], number, RegExp]>([
    ["'..' out of its workspaces, which sudo lets through", (dir) => [`${dir}/../../bin/bluegreen-pipeline`, '--version', 'v9'], 2, /is \S+\/bin\/bluegreen-pipeline, outside \S+\/workspace, the only directory a fleet deploy through sudo \(bluegreen-test-agent\) may take a jar from/],
    ['a symlink in its workspace to a root-only file', (dir) => {
      const link = join(dir, 'build', 'libs', 'shadow.jar');
      must('runuser', ['-u', AGENT_USER, '--', 'ln', '-s', '/etc/shadow', link]);
      return [link, '--version', 'v9'];
    }, 2, /is \/etc\/shadow, outside/],
    ['a root-only file inside its workspace (what a hard link could give it)', (dir) => {
      const file = join(dir, 'build', 'libs', 'root-only.jar');
      copyFileSync(jars.v1, file);
      chmodSync(file, 0o600);
      return [file, '--version', 'v9'];
    }, 3, /is not readable by bluegreen-test-agent, who ran this through sudo/],
    ['an option of the operator command it does not take', (dir) => [join(dir, 'build', 'libs', 'app.jar'), '--version', 'v9', '--stack', 'Other'], 2, /unknown argument '--stack'/],
    ['a version the engine would refuse', (dir) => [join(dir, 'build', 'libs', 'app.jar'), '--version', '../x'], 2, /version '\.\.\/x' is not one bluegreen accepts/],
  ])('bluegreen-fleet-deploy refuses %s before any AWS call', (_case, args, code, message) => {
    // GIVEN a workspace with a built jar
    const dir = workspace();
    const jar = join(dir, 'build', 'libs', 'app.jar');
    copyFileSync(jars.v3, jar);
    chownSync(jar, userIds.uid, userIds.gid);
    const before = { operations: ssm.operations.length, s3: s3.requests.length };

    // WHEN the agent's user runs it through sudo itself
    const result = spawnSync('runuser', ['-u', AGENT_USER, '--', 'sudo', '-n', fleetCommand, ...args(dir)], { cwd: dir, encoding: 'utf8', timeout: 60_000 });

    // THEN
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(code);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Nothing was uploaded or deployed');
    expect(ssm.operations.length).toBe(before.operations);
    expect(s3.requests.length).toBe(before.s3);
  });
});
