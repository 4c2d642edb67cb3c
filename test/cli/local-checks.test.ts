/**
 * `ec2-bluegreen deploy` checks what this machine can check (the jar, the options) before the
 * SDK asks for a region or credentials and before any AWS call. In process, with the SDK clients
 * mocked to count calls; test/cli/local-checks.e2e.test.ts runs the same as a user's process.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { CLI_EXIT_CODES } from '../../cli/errors.js';
import { runCli, type Terminal } from '../../cli/main.js';
import { fakeJar } from '../constructs/synth.js';

const scratch = mkdtempSync(join(tmpdir(), 'cli-local-checks-'));
const missingJar = join(scratch, 'missing.jar');
const textJar = join(scratch, 'notes.jar');
writeFileSync(textJar, 'not a zip');

const cloudFormation = mockClient(CloudFormationClient);
const ssm = mockClient(SSMClient);
const s3 = mockClient(S3Client);
const awsCalls = () => cloudFormation.calls().length + ssm.calls().length + s3.calls().length;
// The unit files share one module graph: a mock left in place would answer another file's real clients.
afterAll(() => {
  cloudFormation.restore();
  ssm.restore();
  s3.restore();
});

/** No region and no credentials from anywhere: no variables, no config or credentials file. */
function noAwsEnvironment(): void {
  for (const name of Object.keys(process.env).filter((variable) => variable.startsWith('AWS_'))) vi.stubEnv(name, undefined);
  vi.stubEnv('AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED', 'true');
  vi.stubEnv('AWS_CONFIG_FILE', join(scratch, 'no-config'));
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(scratch, 'no-credentials'));
}

async function run(argv: string[]): Promise<{ code: number; stderr: string }> {
  const lines: string[] = [];
  const terminal: Terminal = { out: (line) => lines.push(line), err: (line) => lines.push(line) };
  const code = await runCli(argv, terminal);
  return { code, stderr: lines.join('\n') };
}

beforeEach(() => {
  noAwsEnvironment();
  cloudFormation.reset();
  ssm.reset();
  s3.reset();
});
afterEach(() => vi.unstubAllEnvs());

describe('with no region and no credentials', () => {
  test('control: a command that needs AWS says that no region is set', async () => {
    const result = await run(['status', '--stack', 'Ec2BlueGreen']);
    expect(result).toMatchObject({ code: CLI_EXIT_CODES.usage, stderr: expect.stringMatching(/no AWS region is set/) });
  });

  test.each([
    ['a jar that does not exist', [missingJar], /missing\.jar does not exist\. Build the jar first .*Nothing was uploaded or deployed\.$/],
    ['a file that is not a jar', [textJar], /notes\.jar is not a jar: it does not start with a zip header/],
    ['a jar whose sha256 is not the one given', [fakeJar(), '--sha256', 'f'.repeat(64)], /not the f{64} given with --sha256/],
  ])('deploy of %s fails about the jar, with no AWS call', async (_case, args, message) => {
    const result = await run(['deploy', ...args, '--stack', 'Ec2BlueGreen']);
    expect(result.code).toBe(CLI_EXIT_CODES.badArtifact);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/region|credential/i);
    expect(awsCalls()).toBe(0);
  });

  test('a fleet deploy from the FLEET_* variables checks them, then the jar, with no AWS call', async () => {
    const unset = await run(['deploy', missingJar, '--fleet-from-env']);
    expect(unset).toMatchObject({ code: CLI_EXIT_CODES.usage, stderr: expect.stringMatching(/--fleet-from-env needs FLEET_DOCUMENT/) });
    vi.stubEnv('FLEET_DOCUMENT', 'Ec2BlueGreen-DeployDocument-abc');
    vi.stubEnv('FLEET_TARGET', 'tag:BlueGreenFleet=Ec2BlueGreen/Fleet');
    vi.stubEnv('FLEET_RELEASE_PARAMETER', '/Ec2BlueGreen/fleet-release');
    vi.stubEnv('FLEET_UPLOAD_LOCATION', 's3://artifacts/cli-releases/');
    vi.stubEnv('FLEET_REGION', 'us-east-1');
    const result = await run(['deploy', missingJar, '--fleet-from-env']);
    expect(result).toMatchObject({ code: CLI_EXIT_CODES.badArtifact, stderr: expect.stringMatching(/missing\.jar does not exist/) });
    expect(awsCalls()).toBe(0);
  });
});

describe('with a region and credentials', () => {
  beforeEach(() => {
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  });

  test('deploy of a missing jar still makes no AWS call', async () => {
    const result = await run(['deploy', missingJar, '--stack', 'Ec2BlueGreen']);
    expect(result).toMatchObject({ code: CLI_EXIT_CODES.badArtifact, stderr: expect.stringMatching(/missing\.jar does not exist/) });
    expect(awsCalls()).toBe(0);
  });

  test('control: deploy of a good jar goes on to ask CloudFormation for the stack', async () => {
    cloudFormation.on(DescribeStacksCommand).rejects(Object.assign(new Error('Stack with id Ec2BlueGreen does not exist'), { name: 'ValidationError' }));
    const result = await run(['deploy', fakeJar(), '--stack', 'Ec2BlueGreen']);
    expect(result.code).toBe(CLI_EXIT_CODES.aws);
    expect(cloudFormation.commandCalls(DescribeStacksCommand)).toHaveLength(1);
  });
});
