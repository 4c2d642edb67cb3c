/**
 * `npx ec2-bluegreen deploy missing.jar --stack X` as a user runs it, with no AWS region and no
 * credentials in the environment: the error is about the jar, and nothing goes over the network.
 * Every AWS endpoint the command could use (CloudFormation, SSM, S3, Logs, and the instance
 * metadata service the SDK asks for credentials when it finds none) points at a loopback
 * stand-in that counts its requests.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLI_EXIT_CODES } from '../../cli/errors.js';
import { PROJECT_DIR } from '../../lib/paths.js';
import { fakeJar } from '../constructs/synth.js';
import { LoopbackCloudFormation } from '../support/cloudformation-server.js';
import { LoopbackLogs } from '../support/logs-server.js';
import { LoopbackS3 } from '../support/s3-server.js';
import { LoopbackSsm } from '../support/ssm-server.js';

const scratch = mkdtempSync(join(tmpdir(), 'cli-local-checks-e2e-'));
const textJar = join(scratch, 'notes.jar');
writeFileSync(textJar, 'not a zip');

let cloudFormation: LoopbackCloudFormation;
let ssm: LoopbackSsm;
let s3: LoopbackS3;
let logs: LoopbackLogs;
let metadata: Server;
const metadataRequests: string[] = [];

beforeAll(async () => {
  cloudFormation = await LoopbackCloudFormation.start({ stacks: {} });
  ssm = await LoopbackSsm.start({ documents: {}, environment: {} });
  s3 = await LoopbackS3.start({ buckets: [] });
  logs = await LoopbackLogs.start({ logGroups: [] });
  metadata = createServer((request, response) => {
    metadataRequests.push(`${request.method} ${request.url}`);
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => metadata.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await Promise.all([cloudFormation?.close(), ssm?.close(), s3?.close(), logs?.close()]);
  await new Promise<void>((resolve) => (metadata ? metadata.close(() => resolve()) : resolve()));
});

const requestsSeen = () => cloudFormation.operations.length + ssm.operations.length + s3.requests.length + logs.operations.length + metadataRequests.length;

/** A shell with no AWS settings at all, and every endpoint the SDK might reach pointing at a stand-in. */
function environment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_') && !name.startsWith('VITEST') && name !== 'NODE_OPTIONS'),
  );
  return {
    ...inherited,
    HOME: scratch,
    AWS_CONFIG_FILE: join(scratch, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(scratch, 'no-credentials'),
    AWS_ENDPOINT_URL_CLOUDFORMATION: cloudFormation.url,
    AWS_ENDPOINT_URL_SSM: ssm.url,
    AWS_ENDPOINT_URL_S3: s3.url,
    AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: logs.url,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://127.0.0.1:${(metadata.address() as AddressInfo).port}`,
    ...extra,
  };
}

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(PROJECT_DIR, 'bin', 'ec2-bluegreen.mjs'), ...args], { cwd: scratch, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stderr };
}

test.each([
  ['a jar that does not exist', 'missing.jar', /^ec2-bluegreen: .*\/missing\.jar does not exist\. Build the jar first .*Nothing was uploaded or deployed\.$/],
  ['a file that is not a jar', textJar, /notes\.jar is not a jar: it does not start with a zip header/],
])('deploy of %s with no region and no credentials: the error is about the jar, and no request is made', async (_case, jar, message) => {
  const before = requestsSeen();
  const run = await cli(['deploy', jar, '--stack', 'X'], environment());
  expect(run.code).toBe(CLI_EXIT_CODES.badArtifact);
  expect(run.stderr.trim()).toMatch(message);
  expect(run.stderr).not.toMatch(/region|credential/i);
  expect(requestsSeen()).toBe(before);
});

test('with a region and credentials set, a missing jar still makes no request', async () => {
  const before = requestsSeen();
  const run = await cli(['deploy', 'missing.jar', '--stack', 'X'], environment({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' }));
  expect(run.code).toBe(CLI_EXIT_CODES.badArtifact);
  expect(requestsSeen()).toBe(before);
});

test('control: the same environment with a region sends a good jar\'s deploy to the stand-ins', async () => {
  const before = cloudFormation.operations.length;
  const run = await cli(['deploy', fakeJar(), '--stack', 'X'], environment({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' }));
  expect(run.code).toBe(CLI_EXIT_CODES.aws);
  expect(run.stderr).toMatch(/stack X does not exist in us-east-1/);
  expect(cloudFormation.operations.slice(before)).toEqual(['DescribeStacks']);
});

test('control: with no region, a command that needs AWS says so', async () => {
  const run = await cli(['status', '--stack', 'X'], environment());
  expect(run.code).toBe(CLI_EXIT_CODES.usage);
  expect(run.stderr).toMatch(/no AWS region is set/);
});
