/**
 * Security boundaries on the host: nobody below root gets root through the engine. Each attack
 * runs for real against a local host (real Nginx, real JVMs, the real engine as root): through
 * real sudo, with a drop-in rendered from the stack's own assets/jenkins/sudoers.
 *
 * Needs root (it creates users and a sudoers drop-in); skipped otherwise.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_CODES, HOST_PATHS } from '../../lib/contract.js';
import { BLUEGREEN, buildJar, LocalHost, PROJECT_DIR, TEST_JAVA_OPTS, type RunResult } from '../support/host.js';

const isRoot = process.getuid?.() === 0;
const SUDOERS = join(PROJECT_DIR, 'assets', 'jenkins', 'sudoers');
/** The unprivileged user the sudoers rule is for (Jenkins' on the host). */
const CALLER = 'bluegreen-test-jenkins';

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, ...options });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function must(command: string, args: string[]): string {
  const result = run(command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}${result.stdout}`);
  return result.stdout.trim();
}

function userExists(name: string): boolean {
  return run('id', ['-u', name]).code === 0;
}

function expectDeployed(result: RunResult | ReturnType<typeof run>): void {
  expect(result.code, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(EXIT_CODES.ok);
}

/** The Jenkins workspace root the sudoers rule lets the caller deploy from. */
function sudoersWorkspaceRoot(): string {
  const match = /\sdeploy (\/\S+)\/\*/.exec(readFileSync(SUDOERS, 'utf8'));
  if (!match) throw new Error(`${SUDOERS} has no 'deploy /DIR/*' rule`);
  return match[1]!;
}

/** The engine's default for a configuration key, from its own CONFIG_DEFAULTS. */
function engineDefault(key: string): string | undefined {
  const defaults = must('bash', ['-c', `source '${BLUEGREEN}'; config_defaults`]);
  return defaults
    .split('\n')
    .find((line) => line.startsWith(`${key}=`))
    ?.slice(key.length + 1);
}

/** The paths of a local host's engine files (its configuration as scripts/local-host writes it). */
function hostPaths(host: LocalHost) {
  const home = join(host.dir, 'home');
  const state = join(home, 'state');
  return {
    home,
    state,
    lock: join(state, 'deploy.lock'),
    slotRecord: join(state, 'slot-blue.env'),
    history: join(home, 'history.jsonl'),
    releases: join(home, 'releases'),
    incoming: join(home, 'incoming'),
    logs: join(host.dir, 'logs'),
  };
}

describe('the workspace root of the sudoers rule', () => {
  test("is the engine's default BLUEGREEN_SUDO_ARTIFACT_ROOT and the README's, one path in all three", () => {
    const root = sudoersWorkspaceRoot();
    expect(root).toMatch(/^\/[^*?[\]]+[^/]$/);
    expect(engineDefault('BLUEGREEN_SUDO_ARTIFACT_ROOT')).toBe(root);
    const readme = readFileSync(join(PROJECT_DIR, 'README.md'), 'utf8');
    const row = readme.split('\n').find((line) => line.startsWith('| `BLUEGREEN_SUDO_ARTIFACT_ROOT` |'));
    expect(row, 'README configuration table row for BLUEGREEN_SUDO_ARTIFACT_ROOT').toBeDefined();
    expect(row!.split('|')[2]!.trim()).toBe(`\`${root}\``);
  });
});

describe.skipIf(!isRoot)('deploy through the real sudo rule, as the unprivileged user it is for', () => {
  const host = new LocalHost({ nginx: 18930, blue: 18931, green: 18932 });
  const dropIn = `/etc/sudoers.d/bluegreen-test-${process.pid}`;
  let createdCaller = false;
  let base: string;
  let workspace: string;
  let libs: string;
  let rootOnly: string;
  let engine: string;
  let callerIds: { uid: number; gid: number };

  /** A jar of the sample app with VERSION, owned by the caller, in the workspace's build output. */
  function workspaceJar(version: string): string {
    const path = join(libs, `app-${version}.jar`);
    copyFileSync(buildJar(version), path);
    chownSync(path, callerIds.uid, callerIds.gid);
    return path;
  }

  /** `sudo -n ENGINE deploy ARTIFACT [--version V]` as the caller, as the Jenkins pipeline runs it. */
  function sudoDeploy(artifact: string, version?: string) {
    const args = ['-u', CALLER, '--', 'sudo', '-n', engine, 'deploy', artifact, ...(version ? ['--version', version] : [])];
    return run('runuser', args, { cwd: workspace });
  }

  /** What a refused deploy must leave exactly as it was. */
  function snapshot() {
    const status = host.status();
    return {
      live: status.live,
      slots: Object.fromEntries(Object.entries(status.slots).map(([slot, s]) => [slot, [s.version, s.sha256, s.release, s.running, s.pid]])),
      releases: readdirSync(hostPaths(host).releases).sort(),
    };
  }

  beforeAll(() => {
    if (!userExists(CALLER)) {
      must('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', CALLER]);
      createdCaller = true;
    }
    callerIds = { uid: Number(must('id', ['-u', CALLER])), gid: Number(must('id', ['-g', CALLER])) };

    // The layout of the host: /var/lib is open to all, the workspace belongs to the caller,
    // root's files are root's.
    base = mkdtempSync(join(tmpdir(), 'bluegreen-sudo-'));
    chmodSync(base, 0o755);
    workspace = join(base, 'workspace');
    libs = join(workspace, 'app', 'build', 'libs');
    mkdirSync(libs, { recursive: true });
    must('chown', ['-R', `${CALLER}:`, workspace]);
    rootOnly = join(base, 'root-only');
    mkdirSync(rootOnly, { mode: 0o700 });
    copyFileSync(buildJar('root-only'), join(rootOnly, 'secret.jar'));
    chmodSync(join(rootOnly, 'secret.jar'), 0o600);

    // The engine "installed" for root: this host's configuration, which sudo's env_reset would
    // otherwise drop. The workspace root goes in the environment, not the configuration file,
    // so that an engine that does not know the key still runs (and shows what it lets through).
    host.up();
    mkdirSync(join(base, 'bin'));
    engine = join(base, 'bin', 'bluegreen');
    const env = {
      BLUEGREEN_CONF: host.conf,
      BLUEGREEN_JAVA_OPTS: TEST_JAVA_OPTS,
      BLUEGREEN_SUDO_ARTIFACT_ROOT: workspace,
      PATH: process.env.PATH!,
    };
    const exports = Object.entries(env).map(([key, value]) => `export ${key}=${JSON.stringify(value)}`);
    writeFileSync(engine, ['#!/bin/bash', ...exports, `exec ${JSON.stringify(BLUEGREEN)} "$@"`, ''].join('\n'), { mode: 0o755 });

    // The stack's sudoers rule, with this host's engine, workspace and caller in place of the
    // EC2 host's.
    const rendered = readFileSync(SUDOERS, 'utf8')
      .replaceAll(HOST_PATHS.command, engine)
      .replaceAll(sudoersWorkspaceRoot(), workspace)
      .replace(/^jenkins /m, `${CALLER} `);
    expect(rendered).toContain(`${CALLER} ALL=(root) NOPASSWD:`);
    const candidate = join(base, 'sudoers');
    writeFileSync(candidate, rendered, { mode: 0o440 });
    must('visudo', ['-c', '-q', '-f', candidate]);
    copyFileSync(candidate, dropIn);
    chmodSync(dropIn, 0o440);
    must('visudo', ['-c', '-q']);

    const first = sudoDeploy(workspaceJar('v1'), 'v1');
    expectDeployed(first);
  });

  afterAll(() => {
    rmSync(dropIn, { force: true });
    host.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
    if (createdCaller) run('userdel', [CALLER]);
  });

  test('sudo itself refuses a jar outside the workspace (the drop-in is the real rule, in force)', async () => {
    const result = sudoDeploy(join(rootOnly, 'secret.jar'));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('a password is required');
    expect(await host.servedVersion()).toBe('v1');
  });

  test.each([
    ["'..' out of the workspace", () => `${workspace}/../root-only/secret.jar`],
    ['a symlink in the workspace to a file outside it', () => {
      const link = join(libs, 'escape.jar');
      if (!existsSync(link)) symlinkSync(join(rootOnly, 'secret.jar'), link);
      return link;
    }],
    ['a path through a symlinked directory in the workspace', () => {
      const link = join(workspace, 'app', 'out');
      if (!existsSync(link)) symlinkSync(rootOnly, link);
      return join(link, 'secret.jar');
    }],
  ])('%s, which sudo lets through, is refused by the engine: usage, nothing changed, the live slot serves', async (_name, artifact) => {
    // GIVEN
    const path = artifact();
    const before = snapshot();
    const historyBefore = host.history().length;

    // WHEN
    const result = sudoDeploy(path, 'stolen');

    // THEN
    expect(result.code, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(EXIT_CODES.usage);
    expect(result.stderr).toContain(`bluegreen: error: artifact ${path} is ${join(rootOnly, 'secret.jar')}, outside ${workspace}`);
    expect(result.stderr).toContain('Nothing was changed');
    expect(result.stdout).toBe('');
    expect(snapshot()).toEqual(before);
    expect(host.history()).toHaveLength(historyBefore);
    expect(await host.servedVersion()).toBe('v1');
  });

  test("a file in the workspace that the caller cannot read itself (root's file, hard-linked in) is refused: bad artifact, the live slot serves", async () => {
    // GIVEN: what a host without protected hard links would let the caller make.
    const link = join(libs, 'hard-link.jar');
    linkSync(join(rootOnly, 'secret.jar'), link);
    const before = snapshot();

    // WHEN
    const result = sudoDeploy(link, 'stolen');

    // THEN
    expect(result.code, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(EXIT_CODES.badArtifact);
    expect(result.stderr).toContain(`bluegreen: error: artifact ${link} is not readable by ${CALLER}, who ran this through sudo`);
    expect(result.stderr).toContain('Nothing was changed');
    expect(snapshot()).toEqual(before);
    expect(host.history().at(-1)).toMatchObject({ action: 'deploy', result: 'failed' });
    expect(await host.servedVersion()).toBe('v1');
  });

  test('a jar really in the workspace deploys', async () => {
    const result = sudoDeploy(workspaceJar('v2'), 'v2');
    expectDeployed(result);
    expect(await host.servedVersion()).toBe('v2');
    expect(host.status().slots.green).toMatchObject({ version: 'v2', role: 'live' });
  });

  test('a symlink that stays inside the workspace is followed, and deploys', async () => {
    const link = join(workspace, 'app', 'latest.jar');
    symlinkSync(workspaceJar('v3'), link);
    const result = sudoDeploy(link, 'v3');
    expectDeployed(result);
    expect(await host.servedVersion()).toBe('v3');
  });

  test('root without sudo (the SSM document, the first boot) still deploys a jar from anywhere', async () => {
    const env = { ...process.env };
    for (const key of ['SUDO_USER', 'SUDO_UID', 'SUDO_GID', 'SUDO_COMMAND']) delete env[key];
    const result = run(engine, ['deploy', join(rootOnly, 'secret.jar'), '--version', 'root-only'], { env });
    expectDeployed(result);
    expect(await host.servedVersion()).toBe('root-only');
  });
});
