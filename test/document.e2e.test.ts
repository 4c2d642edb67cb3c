/**
 * The SSM document's script, taken from the synthesized template, run the way SSM Agent runs it
 * (`sh -c <dir>/_script.sh`, parameters as SSM_<name> environment variables) against a real
 * local host from scripts/local-host: Nginx, the bluegreen engine and sample-app JVMs. The
 * stack's engine bundle comes from the S3 stand-in (test/support/s3-server.ts) through the
 * stand-in `aws` command (test/support/bin/aws), at the location the stack wrote into the script.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DOCUMENT_PARAMS, EXIT_CODES, documentParamEnvVar } from '../lib/contract.js';
import { engineTreeHash } from '../lib/engine-bundle.js';
import { projectPath } from '../lib/paths.js';
import { DOCUMENT_LOCK_WAIT_SECONDS } from '../lib/deploy/timeouts.js';
import { BLUEGREEN, LocalHost, buildJar, waitFor } from './support/host.js';
import { LoopbackS3 } from './support/s3-server.js';
import { documentContent, resolvePseudo, synthesize } from './constructs/synth.js';

/** Document parameters by name; `engineHash` too, as callers passed it before the document carried the hash. */
type Parameters = Partial<Record<keyof typeof DOCUMENT_PARAMS | 'engineHash', string>>;

const PORTS = { nginx: 18280, blue: 18281, green: 18282 };

// GIVEN the document as synthesized: its parameter defaults and its one step's script.
const synthesized = synthesize();
const content = documentContent(synthesized.template) as {
  parameters: Record<string, { default: string }>;
  mainSteps: Array<{ inputs: { runCommand: string[] } }>;
};
const script = `${content.mainSteps[0]!.inputs.runCommand.join('\n')}\n`;
const work = mkdtempSync(join(tmpdir(), 'bluegreen-document-'));
const scriptPath = join(work, 'orchestration', '_script.sh');
mkdirSync(join(work, 'orchestration'));
writeFileSync(scriptPath, script);
chmodSync(scriptPath, 0o700);

// `bluegreen` on PATH as on the host, and a cloud-init that records each wait.
const binDir = join(work, 'bin');
const cloudInitCalls = join(work, 'cloud-init-calls');
mkdirSync(binDir);
symlinkSync(BLUEGREEN, join(binDir, 'bluegreen'));
writeFileSync(join(binDir, 'cloud-init'), `#!/bin/sh\necho "$*" >> '${cloudInitCalls}'\n`);
chmodSync(join(binDir, 'cloud-init'), 0o755);

let host: LocalHost;
const jars: Record<string, { path: string; sha256: string }> = {};

function jar(version: string, options: { startDelayMs?: number } = {}) {
  const path = buildJar(version, options);
  return { path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
}

/** Runs the document with `parameters` over its defaults, as SSM Agent would. */
async function runDocument(parameters: Parameters, environment: Record<string, string | undefined> = {}) {
  const values = { ...Object.fromEntries(Object.entries(content.parameters).map(([name, p]) => [name, p.default])), ...parameters };
  const ssmEnvironment = Object.fromEntries(
    Object.entries(values).map(([name, value]) => [documentParamEnvVar(name as keyof typeof DOCUMENT_PARAMS), value]),
  );
  const env: Record<string, string | undefined> = {
    ...host.env(),
    PATH: `${binDir}:${process.env.PATH}`,
    ...ssmEnvironment,
    ...environment,
  };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  // Not spawnSync: the S3 stand-in answers from this process while the script runs.
  const child = spawn('sh', ['-c', scriptPath], { cwd: join(work, 'orchestration'), env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 90_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString('utf8')));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString('utf8')));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  return { code, stdout, stderr };
}

function cloudInitWaits(): number {
  return existsSync(cloudInitCalls) ? readFileSync(cloudInitCalls, 'utf8').trim().split('\n').length : 0;
}

beforeAll(() => {
  jars.v1 = jar('v1');
  jars.v2 = jar('v2');
  jars.v3 = jar('v3');
  jars.slow = jar('slow', { startDelayMs: 5_000 });
  host = new LocalHost(PORTS).up();
});

afterAll(() => {
  host?.destroy();
});

describe('the document script on a local host', () => {
  test('status before any deploy: the engine answers as JSON, and no cloud-init wait', async () => {
    const result = await runDocument({ action: 'status' });
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(JSON.parse(result.stdout)).toMatchObject({ live: null });
    expect(cloudInitWaits()).toBe(0);
  });

  test('deploy: waits for cloud-init, checks the sha256, and Nginx serves the new version', async () => {
    const result = await runDocument({ action: 'deploy', artifactUri: jars.v1!.path, sha256: jars.v1!.sha256, version: 'v1' });
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(cloudInitWaits()).toBe(1);
    expect(readFileSync(cloudInitCalls, 'utf8')).toBe('status --wait\n');
    expect(await host.servedVersion()).toBe('v1');
  });

  test('a second deploy goes to the other slot', async () => {
    const result = await runDocument({ action: 'deploy', artifactUri: jars.v2!.path, sha256: jars.v2!.sha256, version: 'v2' });
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(await host.servedVersion()).toBe('v2');
    expect(host.status()).toMatchObject({ slots: { blue: { version: 'v1', role: 'standby' }, green: { version: 'v2', role: 'live' } } });
  });

  test('rollback makes the standby live again', async () => {
    const result = await runDocument({ action: 'rollback' });
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(await host.servedVersion()).toBe('v1');
  });

  test("a jar whose sha256 is not the one given is refused with the engine's exit code, and v1 keeps serving", async () => {
    const result = await runDocument({ action: 'deploy', artifactUri: jars.v2!.path, sha256: jars.v1!.sha256, version: 'v2' });
    expect(result.code).toBe(EXIT_CODES.badArtifact);
    expect(await host.servedVersion()).toBe('v1');
  });

  test('healthTimeout reaches the engine: a slot slower than it is stopped, Nginx untouched', async () => {
    const result = await runDocument({ action: 'deploy', artifactUri: jars.slow!.path, sha256: jars.slow!.sha256, version: 'slow', healthTimeout: '1' });
    expect(result.code).toBe(EXIT_CODES.unhealthy);
    expect(await host.servedVersion()).toBe('v1');
  });

  test('a deploy that meets another one holding the lock waits for it, and says that it waited and for whom', async () => {
    // A deploy from a terminal (as Jenkins runs it) whose app takes 3 s to start holds the lock.
    // A release neither slot runs, so that it starts a JVM (v2 is the standby: it would switch back).
    const other = host.spawn(['deploy', jars.v3!.path, '--version', 'v3'], { BLUEGREEN_APP_ARGS: '--bluegreen.start-delay-ms=3000' });
    let otherOut = '';
    other.stdout!.on('data', (d: Buffer) => (otherOut += d.toString()));
    const otherDone = new Promise<number | null>((r) => other.on('close', r));
    await waitFor(() => otherOut.includes('] start '), 'the other deploy to start its slot', 20_000).catch((error) => {
      throw new Error(`${error.message}; it printed: ${otherOut}`);
    });
    // As a stack rollback re-sends the previous release while a Jenkins deploy runs.
    const result = await runDocument({ action: 'deploy', artifactUri: jars.v1!.path, sha256: jars.v1!.sha256, version: 'v1' });
    expect(await otherDone).toBe(EXIT_CODES.ok);
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    const holder = `another deploy holds the deploy lock since \\S+ \\(pid ${other.pid}\\) for v3, started by .+`;
    expect(result.stdout).toMatch(new RegExp(`\\] lock +${holder}; waiting up to ${DOCUMENT_LOCK_WAIT_SECONDS}s for it to finish`));
    expect(result.stdout).toMatch(new RegExp(`\\] lock +waited [\\d.]+s for the deploy \\(pid ${other.pid}\\) for v3, started by `));
    // The other deploy made v3 live; the document's, once it had the lock, made v1 live again.
    expect(otherOut).toMatch(/v3 is live on green/);
    expect(result.stdout).toMatch(/v1 is live on blue \(was the warm standby\)/);
    expect(await host.servedVersion()).toBe('v1');
  });
});

describe('hostile and missing parameters change nothing', () => {
  const marker = join(work, 'pwned');

  test.each<[string, Parameters, number]>([
    ['an artifact URI with a command after ;', { artifactUri: `x; touch ${marker}` }, EXIT_CODES.badArtifact],
    ['an artifact URI with $(...)', { artifactUri: `$(touch ${marker})` }, EXIT_CODES.badArtifact],
    ['an artifact URI with backquotes', { artifactUri: `\`touch ${marker}\`` }, EXIT_CODES.badArtifact],
    ['a version with $(...)', { version: `$(touch ${marker})` }, EXIT_CODES.usage],
    ['a sha256 with $(...)', { sha256: `$(touch ${marker})` }, EXIT_CODES.usage],
    ['a health timeout with $(...)', { healthTimeout: `$(touch ${marker})` }, EXIT_CODES.usage],
    ['an action with ; and a command', { action: `deploy; touch ${marker}` }, EXIT_CODES.usage],
  ])('%s', async (_case, hostile, exitCode) => {
    // GIVEN otherwise valid deploy parameters
    const parameters: Parameters = { action: 'deploy', artifactUri: jars.v2!.path, sha256: jars.v2!.sha256, version: 'v2', ...hostile };

    // WHEN
    const result = await runDocument(parameters);

    // THEN nothing ran, nothing changed
    expect(result.code, result.stderr).toBe(exitCode);
    expect(existsSync(marker)).toBe(false);
    expect(await host.servedVersion()).toBe('v1');
  });

  test('deploy without a sha256 is refused before the engine runs', async () => {
    const result = await runDocument({ action: 'deploy', artifactUri: jars.v2!.path, sha256: '' });
    expect(result.code).toBe(EXIT_CODES.usage);
    expect(result.stderr).toContain("action 'deploy' needs the parameter 'sha256'");
  });

  test('an agent that does not pass parameters as environment variables is told to update', async () => {
    const result = await runDocument({}, { [documentParamEnvVar(DOCUMENT_PARAMS.action)]: undefined });
    expect(result.code).toBe(EXIT_CODES.usage);
    expect(result.stderr).toContain('SSM Agent 3.3.2746.0 or later');
  });

  test('a host without the engine fails with a message, not a shell error', async () => {
    const result = await runDocument({ action: 'status' }, { PATH: '/usr/bin:/bin' });
    expect(result.code).toBe(EXIT_CODES.unexpected);
    expect(result.stderr).toContain('the bluegreen engine is not on PATH');
  });

  test('a failed first boot stops a deploy before it starts', async () => {
    writeFileSync(join(binDir, 'cloud-init'), '#!/bin/sh\nexit 1\n');
    try {
      const result = await runDocument({ action: 'deploy', artifactUri: jars.v2!.path, sha256: jars.v2!.sha256, version: 'v2' });
      expect(result.code).toBe(EXIT_CODES.unexpected);
      expect(result.stderr).toContain('cloud-init failed');
      expect(await host.servedVersion()).toBe('v1');
    } finally {
      writeFileSync(join(binDir, 'cloud-init'), `#!/bin/sh\necho "$*" >> '${cloudInitCalls}'\n`);
    }
  });
});

/** A value the stack wrote into the script (`readonly NAME='value'`). */
function scriptValue(name: string): string {
  const value = new RegExp(`^readonly ${name}='([^']*)'$`, 'm').exec(script)?.[1];
  if (value === undefined) throw new Error(`the document's script sets no ${name}`);
  return value;
}

describe("the document installs the stack's engine bundle, and no other", () => {
  // GIVEN the stack's engine bundle: its asset's location (the stack's asset bucket, played by
  // the S3 stand-in) and the content hash of the directory it zips.
  const stack = synthesized.stack;
  const stackEngine = { uri: resolvePseudo(stack.resolve(stack.host!.engineAsset.s3ObjectUrl)) as string, hash: stack.host!.engineHash };
  const [, stackBucket = '', stackKey = ''] = /^s3:\/\/([^/]+)\/(.+)$/.exec(stackEngine.uri) ?? [];
  const foreignBucket = 'someone-elses-bucket';
  // AND a host that runs an older engine (a copy of assets/instance with one file changed), with
  // `bluegreen` on PATH pointing into it, as the first boot installs it.
  const engineDir = join(work, 'engine');
  const engineBin = join(work, 'engine-bin');
  const pwned = join(work, 'pwned-by-engine');
  let s3: LoopbackS3;
  let s3Client: S3Client;
  let olderHash: string;

  const engineEnvironment = () => ({
    PATH: `${engineBin}:${projectPath('test', 'support', 'bin')}:${binDir}:${process.env.PATH}`,
    BLUEGREEN_ENGINE_DIR: engineDir,
    LOOPBACK_S3_URL: s3.url,
    AWS_REGION: 'us-east-1',
  });

  /** assets/instance, changed by `change`, zipped as CDK publishes a directory (symbolic links kept as links). */
  function bundle(name: string, change?: (dir: string) => void): string {
    const dir = join(work, `bundle-${name}`);
    cpSync(projectPath('assets', 'instance'), dir, { recursive: true });
    change?.(dir);
    const path = join(work, `bundle-${name}.zip`);
    execFileSync('zip', ['-q', '-r', '-y', path, '.'], { cwd: dir });
    return path;
  }

  /** What a bundle does when the engine runs it: leaves a mark, as any code of a caller's choosing could. */
  const leavesAMark = (dir: string) => appendFileSync(join(dir, 'lib', 'common.sh'), `\ntouch '${pwned}'\n`);

  async function publish(bucket: string, key: string, zip: string): Promise<void> {
    await s3Client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(zip) }));
  }

  /** Nothing changed: the older engine is installed, nothing it did not come with ran, and v1 serves. */
  async function expectUnchanged(): Promise<void> {
    expect(engineTreeHash(engineDir)).toBe(olderHash);
    expect(existsSync(pwned)).toBe(false);
    expect(existsSync(`${engineDir}.new`) || existsSync(`${engineDir}.old`)).toBe(false);
    expect(await host.servedVersion()).toBe('v1');
  }

  beforeAll(async () => {
    cpSync(projectPath('assets', 'instance'), engineDir, { recursive: true });
    appendFileSync(join(engineDir, 'lib', 'common.sh'), '# an older engine\n');
    mkdirSync(engineBin);
    symlinkSync(join(engineDir, 'bin', 'bluegreen'), join(engineBin, 'bluegreen'));
    olderHash = engineTreeHash(engineDir);
    s3 = await LoopbackS3.start({ buckets: [stackBucket, foreignBucket] });
    s3Client = new S3Client({ region: 'us-east-1', endpoint: s3.url, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    // AND v1 serves (so that these tests also run alone, with -t)
    const v1 = await runDocument({ action: 'deploy', artifactUri: jars.v1!.path, sha256: jars.v1!.sha256, version: 'v1' });
    expect(v1.code, v1.stderr).toBe(EXIT_CODES.ok);
  });

  afterAll(async () => {
    await s3?.close();
  });

  const deployV2Parameters = (): Parameters => ({ action: 'deploy', artifactUri: jars.v2!.path, sha256: jars.v2!.sha256, version: 'v2' });

  test("the script carries the stack's bundle: its asset location and the content hash of assets/instance", () => {
    expect(stackEngine.uri).toMatch(/^s3:\/\/cdk-[a-z0-9]+-assets-111111111111-us-east-1\/[0-9a-f]{64}\.zip$/);
    expect(stackEngine.hash).toBe(engineTreeHash(projectPath('assets', 'instance')));
    expect(scriptValue('ENGINE_URI')).toBe(stackEngine.uri);
    expect(scriptValue('ENGINE_HASH')).toBe(stackEngine.hash);
    expect(olderHash).not.toBe(stackEngine.hash);
  });

  test.each<[string, (zip: string) => Promise<string>]>([
    ['a path on the host', async (zip) => zip],
    ['another key in the stack\'s bucket', async (zip) => (await publish(stackBucket, 'callers-engine.zip', zip), `s3://${stackBucket}/callers-engine.zip`)],
    ['another bucket', async (zip) => (await publish(foreignBucket, stackKey, zip), `s3://${foreignBucket}/${stackKey}`)],
  ])("a caller's own bundle with its own matching hash, from %s, is refused before anything changes", async (_where, place) => {
    // GIVEN a bundle of the caller's choosing and its correct content hash
    const callers = bundle('callers', leavesAMark);
    const callersHash = engineTreeHash(join(work, 'bundle-callers'));
    const engineUri = await place(callers);

    // WHEN a caller names it
    const result = await runDocument({ ...deployV2Parameters(), engineUri, engineHash: callersHash }, engineEnvironment());

    // THEN the document refuses it, saying which bundle it takes, and nothing changed
    expect(result.code, result.stderr).toBe(EXIT_CODES.usage);
    expect(result.stderr).toContain(`may only name this stack's engine bundle, ${stackEngine.uri}`);
    expect(result.stderr).toContain('nothing was changed');
    await expectUnchanged();
  });

  test("a symbolic link in a bundle whose files match the stack's hash is refused, and nothing follows it", async () => {
    // GIVEN a file outside the tree, and the stack's bundle with a link to it added: the same
    // regular files, so the same content hash
    const outside = join(work, 'outside-the-engine');
    writeFileSync(outside, 'not the engine\n', { mode: 0o600 });
    const linked = bundle('linked', (dir) => symlinkSync(outside, join(dir, 'bin', 'zz')));
    await publish(stackBucket, stackKey, linked);

    // WHEN a deploy asks for the stack's engine
    const result = await runDocument({ ...deployV2Parameters(), engineUri: stackEngine.uri, engineHash: stackEngine.hash }, engineEnvironment());

    // THEN the bundle is refused before anything changed, and the file outside keeps its mode
    expect(result.code, result.stderr).toBe(EXIT_CODES.badArtifact);
    expect(result.stderr).toContain('holds bin/zz, a symbolic link');
    expect(result.stderr).toContain('is unchanged');
    expect(statSync(outside).mode & 0o777).toBe(0o600);
    await expectUnchanged();
  });

  test("a bundle at the stack's location whose files differ from the stack's hash is refused", async () => {
    const tampered = bundle('tampered', leavesAMark);
    await publish(stackBucket, stackKey, tampered);
    const result = await runDocument({ ...deployV2Parameters(), engineUri: stackEngine.uri }, engineEnvironment());
    expect(result.code, result.stderr).toBe(EXIT_CODES.badArtifact);
    expect(result.stderr).toContain(`has content hash ${engineTreeHash(join(work, 'bundle-tampered'))}, not the ${stackEngine.hash}`);
    await expectUnchanged();
  });

  test('without engineUri the engine is left as it is', async () => {
    const result = await runDocument({ action: 'status' }, engineEnvironment());
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(result.stderr).not.toContain('engine');
    await expectUnchanged();
  });

  test("the stack's own bundle is installed before the deploy, which then runs on it", async () => {
    // GIVEN the bundle the stack published, at its location
    await publish(stackBucket, stackKey, bundle('stack'));

    // WHEN a deploy asks for the stack's engine
    const result = await runDocument({ ...deployV2Parameters(), engineUri: stackEngine.uri }, engineEnvironment());

    // THEN it is installed, then the deploy runs on it
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(result.stderr).toContain(`updating the engine from ${olderHash.slice(0, 12)} to ${stackEngine.hash.slice(0, 12)}`);
    expect(engineTreeHash(engineDir)).toBe(stackEngine.hash);
    expect(statSync(join(engineDir, 'bin', 'bluegreen')).mode & 0o111).toBe(0o111);
    expect(existsSync(`${engineDir}.old`) || existsSync(`${engineDir}.new`)).toBe(false);
    expect(existsSync(pwned)).toBe(false);
    expect(await host.servedVersion()).toBe('v2');
  });

  test('the same bundle again: nothing is reinstalled', async () => {
    const result = await runDocument({ action: 'rollback', engineUri: stackEngine.uri }, engineEnvironment());
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(result.stderr).toContain(`engine ${stackEngine.hash.slice(0, 12)} is already installed`);
    expect(result.stderr).not.toContain('updating the engine');
  });
});
