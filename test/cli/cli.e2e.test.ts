/**
 * `ec2-bluegreen` end to end, run as a user runs it: `node bin/ec2-bluegreen.mjs ...` (and once
 * `npx ec2-bluegreen`) as a child process with dummy credentials, the real AWS SDK on the wire,
 * against loopback stand-ins for CloudFormation, S3, SSM and CloudWatch Logs. The SSM stand-in
 * runs the deploy document's script, taken from the synthesized stack, on a real local host
 * (Nginx, JVMs, the bluegreen engine), and streams its output to the Logs stand-in as SSM Agent
 * does.
 *
 * The S3 bridge: the command uploads to s3://BUCKET/... and hands the document that s3:// URI,
 * exactly as in production. The engine fetches s3:// URIs with `aws s3 cp`; on this machine
 * the agent's PATH has test/support/bin/aws, which fetches the object from the S3 stand-in.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { STACK_OUTPUTS } from '../../cli/stack.js';
import { EXIT_CODES } from '../../lib/contract.js';
import { documentContent, synthesize } from '../constructs/synth.js';
import { LoopbackCloudFormation } from '../support/cloudformation-server.js';
import { buildJar, LocalHost, PROJECT_DIR, TEST_JAVA_OPTS } from '../support/host.js';
import { LoopbackLogs } from '../support/logs-server.js';
import { LoopbackS3 } from '../support/s3-server.js';
import { LoopbackSsm, type CommandDocumentContent } from '../support/ssm-server.js';
import { loopbackAwsEnvironment } from '../support/loopback.js';

const PORTS = { nginx: 18700, blue: 18701, green: 18702, ssm: 18703, cloudFormation: 18704, s3: 18705, logs: 18706 };
const STACK = 'Ec2BlueGreen';
const INSTANCE_ID = 'i-0123456789abcdef0';
const DOCUMENT_NAME = 'Ec2BlueGreen-DeployDocument-Loopback';
const LOG_GROUP = 'Ec2BlueGreen-DeployDocumentOutputLogGroup-Loopback';
const BUCKET = 'ec2bluegreen-artifacts-loopback';
const UPLOAD_PREFIX = 'cli-releases/';

let host: LocalHost;
let ssm: LoopbackSsm;
let logs: LoopbackLogs;
let s3: LoopbackS3;
let cloudFormation: LoopbackCloudFormation;
let jars: Record<'v1' | 'v2' | 'broken', string>;
const figures: string[] = [];

beforeAll(async () => {
  const { template } = synthesize();
  const content = documentContent(template) as CommandDocumentContent;

  jars = {
    v1: buildJar('v1', { startDelayMs: 2500 }),
    v2: buildJar('v2'),
    broken: buildJar('v3-broken', { behaviour: 'never-healthy' }),
  };
  host = new LocalHost({ nginx: PORTS.nginx, blue: PORTS.blue, green: PORTS.green }).up();
  logs = await LoopbackLogs.start({ port: PORTS.logs, logGroups: [LOG_GROUP] });
  s3 = await LoopbackS3.start({ port: PORTS.s3, buckets: [BUCKET] });
  ssm = await LoopbackSsm.start({
    port: PORTS.ssm,
    documents: { [DOCUMENT_NAME]: content },
    instances: { [INSTANCE_ID]: 'Online' },
    invocationLagMs: 300,
    cloudWatchOutput: logs,
    environment: {
      PATH: `${join(PROJECT_DIR, 'test', 'support', 'bin')}:${join(PROJECT_DIR, 'assets', 'instance', 'bin')}:${process.env.PATH}`,
      HOME: process.env.HOME ?? '/root',
      BLUEGREEN_CONF: host.conf,
      BLUEGREEN_JAVA_OPTS: TEST_JAVA_OPTS,
      LOOPBACK_S3_URL: s3.url,
      // The instance's region, which the document would otherwise ask the instance metadata for.
      AWS_REGION: 'us-east-1',
    },
  });
  cloudFormation = await LoopbackCloudFormation.start({
    port: PORTS.cloudFormation,
    stacks: {
      [STACK]: {
        outputs: {
          [STACK_OUTPUTS.instanceId]: INSTANCE_ID,
          [STACK_OUTPUTS.documentName]: DOCUMENT_NAME,
          [STACK_OUTPUTS.outputLogGroup]: LOG_GROUP,
          [STACK_OUTPUTS.artifactUploadLocation]: `s3://${BUCKET}/${UPLOAD_PREFIX}`,
          [STACK_OUTPUTS.siteUrl]: `${host.url}/`,
          JenkinsAccess: 'http://jenkins.invalid:8080/',
        },
      },
      SomeOtherStack: { outputs: { BucketName: 'someone-elses-bucket' } },
    },
  });
});

afterAll(async () => {
  await Promise.all([ssm?.close(), logs?.close(), s3?.close(), cloudFormation?.close()]);
  host?.destroy();
  if (figures.length > 0) console.log(`[ec2-bluegreen CLI e2e]\n  ${figures.join('\n  ')}`);
});

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** When (epoch ms) each stdout line arrived. */
  readonly stdoutLines: ReadonlyArray<{ readonly line: string; readonly at: number }>;
  readonly exitedAt: number;
  readonly ms: number;
}

/** The environment a user's shell would have: dummy credentials, no profile, the loopback endpoints. */
function userEnvironment(): NodeJS.ProcessEnv {
  return loopbackAwsEnvironment({ CLOUDFORMATION: cloudFormation.url, SSM: ssm.url, S3: s3.url, CLOUDWATCH_LOGS: logs.url });
}

async function cli(args: string[], command: string[] = ['node', join(PROJECT_DIR, 'bin', 'ec2-bluegreen.mjs')]): Promise<CliRun> {
  const started = Date.now();
  const child = spawn(command[0]!, [...command.slice(1), ...args], { cwd: PROJECT_DIR, env: userEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let partial = '';
  const stdoutLines: Array<{ line: string; at: number }> = [];
  child.stdout!.on('data', (data: Buffer) => {
    stdout += data.toString();
    const lines = (partial + data.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) stdoutLines.push({ line, at: Date.now() });
  });
  child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const exitedAt = Date.now();
  if (code === null || process.env.CLI_E2E_VERBOSE === '1') console.log(`$ ec2-bluegreen ${args.join(' ')}\n${stdout}${stderr}`);
  return { code, stdout, stderr, stdoutLines, exitedAt, ms: exitedAt - started };
}

function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function puts(): string[] {
  return s3.requests.filter((request) => request.startsWith('PUT '));
}

describe('ec2-bluegreen against a loopback AWS and a real local host', () => {
  test('an unknown stack is a clear error naming it; nothing reaches SSM', async () => {
    const before = ssm.operations.length;
    const run = await cli(['status', '--stack', 'NoSuchStack']);
    expect(run.code).toBe(9);
    expect(run.stderr).toMatch(/^ec2-bluegreen: stack NoSuchStack does not exist in us-east-1 \(for this account's credentials\)\. Nothing was sent\. Check the name/);
    expect(run.stdout).toBe('');
    expect(ssm.operations.length).toBe(before);
    figures.push(`unknown stack: exit ${run.code} in ${run.ms} ms`);
  });

  test('a stack that is not an ec2-bluegreen stack is named with the outputs it lacks', async () => {
    const run = await cli(['rollback', '--stack', 'SomeOtherStack']);
    expect(run.code).toBe(9);
    expect(run.stderr).toMatch(/stack SomeOtherStack has no output InstanceId or DeployDocumentName, so it is not an ec2-bluegreen stack \(its outputs: BucketName\)/);
  });

  test('bad arguments exit 2 before any AWS call', async () => {
    const before = cloudFormation.operations.length;
    const run = await cli(['deploy', '--stack', STACK, '--version', 'not a label', jars.v2]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--version "not a label" is not a release label/);
    expect(cloudFormation.operations.length).toBe(before);
  });

  test('deploy of a local jar uploads it and prints the engine\'s phase lines while the deploy runs', async () => {
    const run = await cli(['deploy', jars.v1, '--stack', STACK, '--version', 'v1']);
    expect(run.code, run.stderr).toBe(0);

    const key = `${UPLOAD_PREFIX}${sha256Of(jars.v1)}.jar`;
    expect(s3.object(BUCKET, key)?.body.equals(readFileSync(jars.v1))).toBe(true);
    const invocation = ssm.invocations.at(-1)!;
    expect(invocation.parameters).toMatchObject({ action: 'deploy', artifactUri: `s3://${BUCKET}/${key}`, sha256: sha256Of(jars.v1), version: 'v1' });
    expect(invocation.cloudWatchLogGroupName).toBe(LOG_GROUP);

    expect(run.stderr).toMatch(/ec2-bluegreen: uploading .*v1-normal-2500\.jar \(\d+\.\d KiB\) to s3:\/\/ec2bluegreen-artifacts-loopback\/cli-releases\/[0-9a-f]{64}\.jar/);
    expect(run.stderr).toMatch(/ec2-bluegreen: command [0-9a-f-]{36} sent to i-0123456789abcdef0; following it/);
    const phases = run.stdoutLines.filter(({ line }) => line.startsWith('bluegreen ['));
    expect(phases.map(({ line }) => line.split(/\s+/)[3])).toEqual(expect.arrayContaining(['lock', 'check', 'release', 'start', 'health', 'switch', 'verify', 'done']));
    // The app takes 2.5 s to start: the start line was on the user's screen well before the
    // command ended on the host, not printed in one go at the end. (The output is polled every
    // second; 2.5 s leaves room for that on a loaded machine, where 1.5 s once fell short.)
    const startLine = phases.find(({ line }) => /\]\s+start\s/.test(line))!;
    expect(invocation.endedAt!.getTime() - startLine.at).toBeGreaterThan(1000);
    expect(run.exitedAt - startLine.at).toBeGreaterThan(1000);
    expect(run.stdout).not.toMatch(/\{"live"/);
    expect(run.stdout).toMatch(/ec2-bluegreen: deploy done in \d+\.\ds: v1 is live on blue\n/);
    expect(run.stdout).toContain(`ec2-bluegreen: site: ${host.url}/`);
    expect(await host.servedVersion()).toBe('v1');
    figures.push(`deploy v1 (1.5 s app start): exit 0 in ${run.ms} ms; 'start' line shown ${invocation.endedAt!.getTime() - startLine.at} ms before the command ended`);
  });

  test('deploy of a second jar switches to it; the same jar again is not uploaded again and is a no-op', async () => {
    const first = await cli(['deploy', jars.v2, '--stack', STACK, '--version', 'v2']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/deploy done in .*: v2 is live on green; blue \(v1\) is the warm standby/);
    expect(await host.servedVersion()).toBe('v2');

    const putsBefore = puts().length;
    const again = await cli(['deploy', jars.v2, '--stack', STACK, '--version', 'v2']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/already holds this jar; not uploading it again/);
    expect(puts().length).toBe(putsBefore);
    expect(again.stdout).toMatch(/v2 is already live on green; nothing to do/);
    figures.push(`deploy v2: ${first.ms} ms; the same again (no upload, no-op): ${again.ms} ms`);
  });

  test('status prints the slots as a table, or the host\'s JSON with --json', async () => {
    const run = await cli(['status', '--stack', STACK]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^${STACK} \\(${INSTANCE_ID}\\): v2 is live on green at ${host.url}/\\n`));
    expect(run.stdout).toMatch(/\nblue +18701 +standby +v1 +yes +yes +\S+/);
    expect(run.stdout).toMatch(/\ngreen +18702 +live +v2 +yes +yes +\S+/);
    expect(run.stdout).toMatch(/'ec2-bluegreen rollback' switches back to blue \(v1\), the warm standby\./);
    expect(run.stdout).toMatch(/\nlast: \S+ {2}deploy {2}v2 {2}green->green {2}noop/);

    const json = await cli(['status', '--stack', STACK, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ live: 'green', slots: { blue: { version: 'v1', role: 'standby' }, green: { version: 'v2', role: 'live' } } });
    figures.push(`status: ${run.ms} ms`);
  });

  test('history lists the deploys, oldest first', async () => {
    const run = await cli(['history', '--stack', STACK]);
    expect(run.code, run.stderr).toBe(0);
    const rows = run.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^WHEN +ACTION +VERSION +FROM-TO +RESULT +TIME +MESSAGE$/);
    expect(rows.slice(1).map((row) => row.split(/\s+/).slice(1, 5))).toEqual([
      ['deploy', 'v1', '-->blue', 'ok'],
      ['deploy', 'v2', 'blue->green', 'ok'],
      ['deploy', 'v2', 'green->green', 'noop'],
    ]);
    const limited = await cli(['history', '--stack', STACK, '--limit', '1', '--json']);
    expect(JSON.parse(limited.stdout)).toEqual([expect.objectContaining({ version: 'v2', result: 'noop' })]);
  });

  test('rollback switches back to the warm standby', async () => {
    const run = await cli(['rollback', '--stack', STACK]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/bluegreen \[ *[\d.]+s\] switch /);
    expect(run.stdout).toMatch(/ec2-bluegreen: rollback done in .*: v1 is live on blue; green \(v2\) is the warm standby/);
    expect(await host.servedVersion()).toBe('v1');
    figures.push(`rollback: exit 0 in ${run.ms} ms`);
  });

  test('a broken jar fails with the engine\'s exit code and a readable reason, while the site keeps serving', async () => {
    const run = await cli(['deploy', jars.broken, '--stack', STACK, '--version', 'v3-broken', '--health-timeout', '3']);
    expect(run.code).toBe(EXIT_CODES.unhealthy);
    // The host's own error line, live, then the reason the custom resource would give.
    expect(run.stderr).toMatch(/\nbluegreen: error: .*did not answer HTTP 200 .* within 3s/);
    expect(run.stderr).toMatch(
      /\nec2-bluegreen: Deploy of v3-broken to i-0123456789abcdef0 failed: the deploy script failed with exit status 5 \(the new release did not become healthy\)\. Host: bluegreen: error: .*Nginx was not touched: blue \(v1\) keeps serving\./,
    );
    expect(run.stderr).toMatch(/Full output: CloudWatch log group Ec2BlueGreen-DeployDocumentOutputLogGroup-Loopback, streams [0-9a-f-]{36}\/i-0123456789abcdef0\/\*\.\n$/);
    expect(run.stdout).toMatch(/\] start +started green \(v3-broken\)/);
    expect(await host.servedVersion()).toBe('v1');
    figures.push(`broken jar: exit ${run.code} in ${run.ms} ms; reason: ${run.stderr.trimEnd().split('\n').at(-1)}`);
  });

  test('deploy of an s3:// URI without --sha256 reads the object to hash it, and deploys it', async () => {
    const uri = `s3://${BUCKET}/${UPLOAD_PREFIX}${sha256Of(jars.v2)}.jar`;
    const run = await cli(['deploy', uri, '--stack', STACK, '--version', 'v2']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/reading s3:\/\/.* to compute its sha256 \(give --sha256 to skip this\)/);
    expect(ssm.invocations.at(-1)!.parameters).toMatchObject({ artifactUri: uri, sha256: sha256Of(jars.v2) });
    // The broken deploy took green's slot, so v2 starts afresh there.
    expect(run.stdout).toMatch(/deploy done in .*: v2 is live on green; blue \(v1\) is the warm standby/);
    expect(await host.servedVersion()).toBe('v2');
  });

  test('`npx ec2-bluegreen` runs the command from this checkout', async () => {
    const run = await cli(['status', '--stack', STACK], ['npx', 'ec2-bluegreen']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/v2 is live on green/);
    figures.push(`npx ec2-bluegreen status: ${run.ms} ms`);
  });
});
