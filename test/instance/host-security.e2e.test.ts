/**
 * Security boundaries on the host: nobody below root gets root through the engine, or reads or
 * blocks what it keeps. Each attack runs for real against a local host (real Nginx, real JVMs,
 * the real engine as root): through real sudo, with a drop-in rendered from the stack's own
 * assets/jenkins/sudoers, and as `nobody` through setpriv. The systemd runner's slots start
 * through a systemctl stand-in (test/support/systemd/systemctl) that runs the unit's ExecStart as
 * the unit's own unprivileged user, so that the app is shown to still read its release.
 *
 * Needs root (it creates users and a sudoers drop-in); skipped otherwise.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
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
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_CODES, HOST_PATHS, type Status } from '../../lib/contract.js';
import { BLUEGREEN, buildJar, LocalHost, PROJECT_DIR, TEST_JAVA_OPTS, type RunResult } from '../support/host.js';

const isRoot = process.getuid?.() === 0;

// Real sudo, other users and file owners need root (CI runs as root). Elsewhere these tests fail
// with this reason instead of passing unseen.
beforeAll(() => {
  if (!isRoot) throw new Error('the host-security tests need root (real sudo, other local users, file owners): run npm test as root, as CI does.');
});
/**
 * Each describe's local host. Made in its beforeAll, not when the file is collected: a LocalHost
 * makes its directory at once, and a describe that a filter leaves out runs no afterAll.
 */
const PORTS = {
  sudo: { nginx: 18930, blue: 18931, green: 18932 },
  lock: { nginx: 18940, blue: 18941, green: 18942 },
  systemd: { nginx: 18950, blue: 18951, green: 18952 },
};
const SUDOERS = join(PROJECT_DIR, 'assets', 'jenkins', 'sudoers');
const SLOT_UNIT = join(PROJECT_DIR, 'assets', 'instance', 'systemd', 'bluegreen-slot@.service');
const SYSTEMCTL_STAND_IN_DIR = join(PROJECT_DIR, 'test', 'support', 'systemd');
/** The unprivileged user the sudoers rule is for (Jenkins' on the host). */
const CALLER = 'bluegreen-test-jenkins';
/** The user the slot unit runs the app as. */
const SLOT_USER = /^User=(\S+)$/m.exec(readFileSync(SLOT_UNIT, 'utf8'))![1]!;
const SLOT_GROUP = /^Group=(\S+)$/m.exec(readFileSync(SLOT_UNIT, 'utf8'))![1]!;

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, ...options });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function must(command: string, args: string[]): string {
  const result = run(command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}${result.stdout}`);
  return result.stdout.trim();
}

/** `args` run as `nobody`, with no supplementary groups. */
function asNobody(args: string[]) {
  return run('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', ...args]);
}

/** `args` run as the slot unit's user and group, with its groups, as systemd starts the app. */
function asSlotUser(args: string[]) {
  return run('setpriv', [`--reuid=${SLOT_USER}`, `--regid=${SLOT_GROUP}`, '--init-groups', '--', ...args]);
}

function userExists(name: string): boolean {
  return run('id', ['-u', name]).code === 0;
}

function modeOf(path: string): string {
  return (statSync(path).mode & 0o7777).toString(8).padStart(4, '0');
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

/** The release jar and directory a slot runs, from the engine's status. */
function liveRelease(status: Status): { jar: string; dir: string } {
  const jar = status.slots[status.live!].release!;
  return { jar, dir: jar.slice(0, jar.lastIndexOf('/')) };
}

function procStatusField(pid: number, field: string): string {
  return new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
}

describe('the workspace root of the sudoers rule', () => {
  test("is the engine's default BLUEGREEN_SUDO_ARTIFACT_ROOT and the documented one (docs/engine.md), one path in all three", () => {
    const root = sudoersWorkspaceRoot();
    expect(root).toMatch(/^\/[^*?[\]]+[^/]$/);
    expect(engineDefault('BLUEGREEN_SUDO_ARTIFACT_ROOT')).toBe(root);
    const page = readFileSync(join(PROJECT_DIR, 'docs', 'engine.md'), 'utf8');
    const row = page.split('\n').find((line) => line.startsWith('| `BLUEGREEN_SUDO_ARTIFACT_ROOT` |'));
    expect(row, 'docs/engine.md configuration table row for BLUEGREEN_SUDO_ARTIFACT_ROOT').toBeDefined();
    expect(row!.split('|')[2]!.trim()).toBe(`\`${root}\``);
  });
});

describe('deploy through the real sudo rule, as the unprivileged user it is for', () => {
  let host: LocalHost;
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
    host = new LocalHost(PORTS.sudo).up();
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
      .replace(/^[a-z_][a-z0-9_-]*(?= ALL=\(root\) NOPASSWD:)/m, CALLER);
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
    host?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
    if (createdCaller) {
      const removed = run('userdel', [CALLER]);
      if (removed.code !== 0) console.warn(`the test's ${CALLER} user is left behind: ${removed.stderr}`);
    }
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

describe('the deploy lock and the files the engine keeps, against any other local user', () => {
  let host: LocalHost;
  let jars: Record<'v1' | 'v2' | 'v3', string>;
  let paths: ReturnType<typeof hostPaths>;

  beforeAll(async () => {
    jars = { v1: buildJar('v1'), v2: buildJar('v2'), v3: buildJar('v3') };
    host = new LocalHost(PORTS.lock).up();
    // As /var/lib on the host: open to all, so that only the engine's own modes keep others out.
    chmodSync(host.dir, 0o755);
    paths = hostPaths(host);
    expectDeployed(await host.run(['deploy', jars.v1, '--version', 'v1']));
  });

  afterAll(() => host?.destroy());

  function expectPrivate(): void {
    const { jar, dir } = liveRelease(host.status());
    expect({
      home: modeOf(paths.home),
      releases: modeOf(paths.releases),
      release: modeOf(dir),
      jar: modeOf(jar),
      state: modeOf(paths.state),
      lock: modeOf(paths.lock),
      slotRecord: modeOf(paths.slotRecord),
      incoming: modeOf(paths.incoming),
      history: modeOf(paths.history),
      logs: modeOf(paths.logs),
    }).toEqual({
      home: '0750',
      releases: '0750',
      release: '0750',
      jar: '0640',
      state: '0710',
      lock: '0600',
      slotRecord: '0640',
      incoming: '0700',
      history: '0600',
      logs: '0750',
    });
    // A slot's log is created 0640 by the start that first writes it, and closed to 0600 by the
    // next operation: either way, for root (and root's group) alone.
    for (const log of readdirSync(paths.logs)) expect(statSync(join(paths.logs, log)).mode & 0o007, log).toBe(0);
  }

  test('nobody cannot open the deploy lock, so cannot hold it against a deploy; the deploy goes through', async () => {
    // GIVEN: the attack as reproduced on a host, in its own process group to be sure to end it.
    const holder = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', 'flock', paths.lock, 'sleep', '600'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let holderStderr = '';
    holder.stderr!.on('data', (d: Buffer) => (holderStderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => holder.on('exit', (code) => resolve(code)));
    try {
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 1000))]);

      // WHEN
      const deploy = await host.run(['deploy', jars.v2, '--version', 'v2']);

      // THEN
      expectDeployed(deploy);
      expect(await host.servedVersion()).toBe('v2');
      expect(await exited).not.toBe(0);
      expect(holderStderr).toContain('Permission denied');
    } finally {
      try {
        process.kill(-holder.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  test('nobody can neither list nor read the state, the history, the releases or the slot logs', () => {
    const { jar } = liveRelease(host.status());
    const attempts = {
      'ls state': asNobody(['ls', paths.state]),
      'ls home': asNobody(['ls', paths.home]),
      'ls releases': asNobody(['ls', paths.releases]),
      'ls logs': asNobody(['ls', paths.logs]),
      'read history': asNobody(['head', '-c', '1', paths.history]),
      'read slot record': asNobody(['head', '-c', '1', paths.slotRecord]),
      'read release jar': asNobody(['head', '-c', '1', jar]),
      'read slot log': asNobody(['head', '-c', '1', join(paths.logs, 'blue.log')]),
      'flock the lock': asNobody(['flock', '-n', paths.lock, 'true']),
    };
    for (const [attempt, result] of Object.entries(attempts)) {
      expect({ attempt, code: result.code === 0 ? 0 : 'failed', stdout: result.stdout }).toEqual({ attempt, code: 'failed', stdout: '' });
      expect(result.stderr, attempt).toContain('Permission denied');
    }
  });

  test('nobody asking for the status or the history is told to ask as root, not that nothing is deployed', () => {
    for (const command of ['status', 'history']) {
      const result = asNobody(['env', `BLUEGREEN_CONF=${host.conf}`, BLUEGREEN, command]);
      expect(result.code, command).toBe(EXIT_CODES.usage);
      expect(result.stderr, command).toContain(`bluegreen: error: 'bluegreen ${command}' reads the engine's files in ${paths.home}, which only their owner may read, and nobody is not it.`);
      expect(result.stderr, command).toContain(`Run it as root: 'sudo bluegreen ${command}'.`);
      expect(result.stdout, command).toBe('');
    }
  });

  test('the modes: the home 0750, the state 0710 with its lock 0600, the history 0600, releases 0750 with jars 0640, incoming 0700', () => {
    expectPrivate();
  });

  test('a host whose files an earlier engine left open is closed by its next deploy', async () => {
    // GIVEN: the modes an engine without a umask of its own left behind (the log directory,
    // which may be shared, is left as it is: only the slots' logs in it are the engine's).
    for (const dir of [paths.home, paths.releases, paths.state, paths.incoming]) chmodSync(dir, 0o755);
    const logs = readdirSync(paths.logs).map((log) => join(paths.logs, log));
    for (const file of [paths.lock, paths.history, paths.slotRecord, ...logs]) chmodSync(file, 0o644);

    // WHEN
    expectDeployed(await host.run(['deploy', jars.v3, '--version', 'v3']));

    // THEN
    expectPrivate();
    expect(asNobody(['flock', '-n', paths.lock, 'true']).code).not.toBe(0);
    chmodSync(paths.logs, 0o755);
    for (const log of logs) expect(asNobody(['head', '-c', '1', log]).stderr, log).toContain('Permission denied');
    chmodSync(paths.logs, 0o750);
    expect(await host.servedVersion()).toBe('v3');
  });

  test("the app keeps the usual umask 0022, not the engine's", () => {
    const status = host.status();
    const pid = status.slots[status.live!].pid!;
    expect(procStatusField(pid, 'Umask')).toBe('0022');
  });
});

describe('the systemd runner: the app, as the unprivileged slot user, still reads its release', () => {
  let host: LocalHost;
  let createdSlotUser = false;
  let paths: ReturnType<typeof hostPaths>;
  let env: Record<string, string>;

  beforeAll(async () => {
    createdSlotUser = !userExists(SLOT_USER);
    host = new LocalHost(PORTS.systemd).up();
    chmodSync(host.dir, 0o755);
    paths = hostPaths(host);
    // As on the host: exec-slot reads its configuration from the file, as the slot user.
    appendFileSync(host.conf, `BLUEGREEN_RUNNER=systemd\nBLUEGREEN_JAVA_OPTS=${TEST_JAVA_OPTS}\nBLUEGREEN_SYSTEMD_DIR=${join(host.dir, 'units')}\n`);
    env = { PATH: `${SYSTEMCTL_STAND_IN_DIR}:${process.env.PATH}`, SYSTEMCTL_STAND_IN_DIR: join(host.dir, 'systemd') };
    const init = await host.run(['init'], env);
    expectDeployed(init);
    expect(userExists(SLOT_USER)).toBe(true);
  });

  /** The engine's status, asking the systemctl stand-in. */
  function status(): Status {
    const result = host.runSync(['status', '--json'], env);
    expect(result.code, result.stderr).toBe(EXIT_CODES.ok);
    return JSON.parse(result.stdout) as Status;
  }

  afterAll(() => {
    host?.destroy();
    if (createdSlotUser) {
      const removed = run('userdel', [SLOT_USER]);
      if (removed.code !== 0) console.warn(`the test's ${SLOT_USER} user is left behind: ${removed.stderr}`);
    }
  });

  test('deploys, deploys again and rolls back, each release run as the slot user', async () => {
    const slotUid = must('id', ['-u', SLOT_USER]);
    for (const [args, served] of [
      [['deploy', buildJar('v1'), '--version', 'v1'], 'v1'],
      [['deploy', buildJar('v2'), '--version', 'v2'], 'v2'],
      [['rollback'], 'v1'],
    ] as const) {
      const result = await host.run([...args], env);
      expectDeployed(result);
      expect(await host.servedVersion()).toBe(served);
      const now = status();
      expect(now.slots[now.live!]).toMatchObject({ running: true, healthy: true, version: served });
      expect(procStatusField(now.slots[now.live!].pid!, 'Uid').split(/\s+/)[0]).toBe(slotUid);
    }
  });

  test('the slot user reads its release and slot record, but cannot list the state, read the history or take the lock', () => {
    const { jar } = liveRelease(status());
    expect(asSlotUser(['head', '-c', '1', jar]).code).toBe(0);
    expect(asSlotUser(['head', '-c', '1', paths.slotRecord]).code).toBe(0);
    for (const attempt of [
      ['ls', paths.state],
      ['head', '-c', '1', paths.history],
      ['flock', '-n', paths.lock, 'true'],
      ['ls', paths.incoming],
    ]) {
      const result = asSlotUser(attempt);
      expect(result.code, attempt.join(' ')).not.toBe(0);
      expect(result.stderr, attempt.join(' ')).toContain('Permission denied');
    }
  });

  test('nobody reads none of it: not the release, not the slot record', () => {
    const { jar } = liveRelease(status());
    for (const path of [jar, paths.slotRecord, paths.history]) {
      const result = asNobody(['head', '-c', '1', path]);
      expect(result.code, path).not.toBe(0);
      expect(result.stderr, path).toContain('Permission denied');
    }
  });
});
