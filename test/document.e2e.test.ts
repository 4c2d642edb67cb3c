/**
 * The SSM document's script, taken from the synthesized template, run the way SSM Agent runs it
 * (`sh -c <dir>/_script.sh`, parameters as SSM_<name> environment variables) against a real
 * local host from scripts/local-host: Nginx, the bluegreen engine and sample-app JVMs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DOCUMENT_PARAMS, EXIT_CODES, documentParamEnvVar } from '../lib/contract.js';
import { engineTreeHash } from '../lib/engine-bundle.js';
import { projectPath } from '../lib/paths.js';
import { BLUEGREEN, LocalHost, buildJar } from './support/host.js';
import { onlyResource, synthesize } from './constructs/synth.js';

type Parameters = Partial<Record<keyof typeof DOCUMENT_PARAMS, string>>;

const PORTS = { nginx: 18280, blue: 18281, green: 18282 };

// GIVEN the document as synthesized: its parameter defaults and its one step's script.
const content = onlyResource(synthesize().template, 'AWS::SSM::Document').properties.Content as {
  parameters: Record<string, { default: string }>;
  mainSteps: Array<{ inputs: { runCommand: string[] } }>;
};
const work = mkdtempSync(join(tmpdir(), 'bluegreen-document-'));
const scriptPath = join(work, 'orchestration', '_script.sh');
mkdirSync(join(work, 'orchestration'));
writeFileSync(scriptPath, `${content.mainSteps[0]!.inputs.runCommand.join('\n')}\n`);
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
function runDocument(parameters: Parameters, environment: Record<string, string | undefined> = {}) {
  const values = { ...Object.fromEntries(Object.entries(content.parameters).map(([name, p]) => [name, p.default])), ...parameters };
  const ssmEnvironment = Object.fromEntries(
    Object.entries(values).map(([name, value]) => [documentParamEnvVar(name as keyof Parameters), value]),
  );
  const env: Record<string, string | undefined> = {
    ...host.env(),
    PATH: `${binDir}:${process.env.PATH}`,
    ...ssmEnvironment,
    ...environment,
  };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  const result = spawnSync('sh', ['-c', scriptPath], { cwd: join(work, 'orchestration'), env, encoding: 'utf8', timeout: 90_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function cloudInitWaits(): number {
  return existsSync(cloudInitCalls) ? readFileSync(cloudInitCalls, 'utf8').trim().split('\n').length : 0;
}

beforeAll(() => {
  jars.v1 = jar('v1');
  jars.v2 = jar('v2');
  jars.slow = jar('slow', { startDelayMs: 5_000 });
  host = new LocalHost(PORTS).up();
});

afterAll(() => {
  host?.destroy();
});

describe('the document script on a local host', () => {
  test('status before any deploy: the engine answers as JSON, and no cloud-init wait', () => {
    const result = runDocument({ action: 'status' });
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(JSON.parse(result.stdout)).toMatchObject({ live: null });
    expect(cloudInitWaits()).toBe(0);
  });

  test('deploy: waits for cloud-init, checks the sha256, and Nginx serves the new version', async () => {
    const result = runDocument({ action: 'deploy', artifactUri: jars.v1!.path, sha256: jars.v1!.sha256, version: 'v1' });
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(cloudInitWaits()).toBe(1);
    expect(readFileSync(cloudInitCalls, 'utf8')).toBe('status --wait\n');
    expect(await host.servedVersion()).toBe('v1');
  });

  test('a second deploy goes to the other slot', async () => {
    const result = runDocument({ action: 'deploy', artifactUri: jars.v2!.path, sha256: jars.v2!.sha256, version: 'v2' });
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(await host.servedVersion()).toBe('v2');
    expect(host.status()).toMatchObject({ slots: { blue: { version: 'v1', role: 'standby' }, green: { version: 'v2', role: 'live' } } });
  });

  test('rollback makes the standby live again', async () => {
    const result = runDocument({ action: 'rollback' });
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(await host.servedVersion()).toBe('v1');
  });

  test("a jar whose sha256 is not the one given is refused with the engine's exit code, and v1 keeps serving", async () => {
    const result = runDocument({ action: 'deploy', artifactUri: jars.v2!.path, sha256: jars.v1!.sha256, version: 'v2' });
    expect(result.code).toBe(EXIT_CODES.badArtifact);
    expect(await host.servedVersion()).toBe('v1');
  });

  test('healthTimeout reaches the engine: a slot slower than it is stopped, Nginx untouched', async () => {
    const result = runDocument({ action: 'deploy', artifactUri: jars.slow!.path, sha256: jars.slow!.sha256, version: 'slow', healthTimeout: '1' });
    expect(result.code).toBe(EXIT_CODES.unhealthy);
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
    const result = runDocument(parameters);

    // THEN nothing ran, nothing changed
    expect(result.code, result.stderr).toBe(exitCode);
    expect(existsSync(marker)).toBe(false);
    expect(await host.servedVersion()).toBe('v1');
  });

  test('deploy without a sha256 is refused before the engine runs', () => {
    const result = runDocument({ action: 'deploy', artifactUri: jars.v2!.path, sha256: '' });
    expect(result.code).toBe(EXIT_CODES.usage);
    expect(result.stderr).toContain("action 'deploy' needs the parameter 'sha256'");
  });

  test('an agent that does not pass parameters as environment variables is told to update', () => {
    const result = runDocument({}, { [documentParamEnvVar(DOCUMENT_PARAMS.action)]: undefined });
    expect(result.code).toBe(EXIT_CODES.usage);
    expect(result.stderr).toContain('SSM Agent 3.3.2746.0 or later');
  });

  test('a host without the engine fails with a message, not a shell error', () => {
    const result = runDocument({ action: 'status' }, { PATH: '/usr/bin:/bin' });
    expect(result.code).toBe(EXIT_CODES.unexpected);
    expect(result.stderr).toContain('the bluegreen engine is not on PATH');
  });

  test('a failed first boot stops a deploy before it starts', async () => {
    writeFileSync(join(binDir, 'cloud-init'), '#!/bin/sh\nexit 1\n');
    try {
      const result = runDocument({ action: 'deploy', artifactUri: jars.v2!.path, sha256: jars.v2!.sha256, version: 'v2' });
      expect(result.code).toBe(EXIT_CODES.unexpected);
      expect(result.stderr).toContain('cloud-init failed');
      expect(await host.servedVersion()).toBe('v1');
    } finally {
      writeFileSync(join(binDir, 'cloud-init'), `#!/bin/sh\necho "$*" >> '${cloudInitCalls}'\n`);
    }
  });
});

describe('the document keeps the host\'s engine at the stack\'s bundle', () => {
  // GIVEN an engine installed as the first boot installs it (a copy of assets/instance), with
  // `bluegreen` on PATH pointing into it, and bundles zipped as CDK publishes the directory.
  const engineDir = join(work, 'engine');
  const engineBin = join(work, 'engine-bin');
  const engineEnvironment = () => ({ PATH: `${engineBin}:${binDir}:${process.env.PATH}`, BLUEGREEN_ENGINE_DIR: engineDir });
  let installedHash: string;

  function bundle(name: string, change?: (dir: string) => void): { path: string; hash: string } {
    const dir = join(work, `bundle-${name}`);
    cpSync(projectPath('assets', 'instance'), dir, { recursive: true });
    change?.(dir);
    const path = join(work, `bundle-${name}.zip`);
    execFileSync('zip', ['-q', '-r', path, '.'], { cwd: dir });
    return { path, hash: engineTreeHash(dir) };
  }

  beforeAll(() => {
    cpSync(projectPath('assets', 'instance'), engineDir, { recursive: true });
    mkdirSync(engineBin);
    symlinkSync(join(engineDir, 'bin', 'bluegreen'), join(engineBin, 'bluegreen'));
    installedHash = engineTreeHash(engineDir);
  });

  const deployV2 = { action: 'deploy', version: 'v2' };

  test('the same bundle: nothing is reinstalled', () => {
    const same = bundle('same');
    expect(same.hash).toBe(installedHash);
    const v1Again = { action: 'deploy', artifactUri: jars.v1!.path, sha256: jars.v1!.sha256, version: 'v1' };
    const result = runDocument({ ...v1Again, engineUri: same.path, engineHash: same.hash }, engineEnvironment());
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(result.stderr).toContain(`engine ${same.hash.slice(0, 12)} is already installed`);
    expect(result.stderr).not.toContain('updating the engine');
  });

  test('a bundle whose files differ from its hash is refused, and the installed engine stays', async () => {
    const tampered = bundle('tampered', (dir) => writeFileSync(join(dir, 'lib', 'common.sh'), '# not the engine\n', { flag: 'a' }));
    const result = runDocument({ ...deployV2, artifactUri: jars.v2!.path, sha256: jars.v2!.sha256, engineUri: tampered.path, engineHash: installedHash.replace(/^./, (c) => (c === '0' ? '1' : '0')) }, engineEnvironment());
    expect(result.code).toBe(EXIT_CODES.badArtifact);
    expect(result.stderr).toContain(`has content hash ${tampered.hash}`);
    expect(result.stderr).toContain('the installed engine');
    expect(engineTreeHash(engineDir)).toBe(installedHash);
    expect(await host.servedVersion()).toBe('v1');
  });

  test('engineUri without engineHash is refused before anything changes', () => {
    const result = runDocument({ action: 'rollback', engineUri: bundle('alone').path }, engineEnvironment());
    expect(result.code).toBe(EXIT_CODES.usage);
    expect(result.stderr).toContain("'engineUri' needs 'engineHash'");
    expect(engineTreeHash(engineDir)).toBe(installedHash);
  });

  test('a new bundle is installed before the deploy, which then runs on it', async () => {
    const marker = '# engine update test marker';
    const newer = bundle('newer', (dir) => writeFileSync(join(dir, 'lib', 'common.sh'), `${marker}\n`, { flag: 'a' }));
    expect(newer.hash).not.toBe(installedHash);

    const result = runDocument({ ...deployV2, artifactUri: jars.v2!.path, sha256: jars.v2!.sha256, engineUri: newer.path, engineHash: newer.hash }, engineEnvironment());

    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    expect(result.stderr).toContain(`updating the engine from ${installedHash.slice(0, 12)} to ${newer.hash.slice(0, 12)}`);
    expect(engineTreeHash(engineDir)).toBe(newer.hash);
    expect(readFileSync(join(engineDir, 'lib', 'common.sh'), 'utf8')).toContain(marker);
    expect(statSync(join(engineDir, 'bin', 'bluegreen')).mode & 0o111).toBe(0o111);
    expect(existsSync(`${engineDir}.old`) || existsSync(`${engineDir}.new`)).toBe(false);
    expect(await host.servedVersion()).toBe('v2');
  });
});

