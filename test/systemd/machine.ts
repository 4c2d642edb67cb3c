/**
 * A Debian 12 machine booted with a real systemd as PID 1 (test/systemd/container.sh), for the
 * tests of the engine's systemd path: `systemctl` of the slot units, Nginx as a service, reboots.
 * It shares the host's network, so the host reaches its Nginx on loopback.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Status } from '../../lib/contract.js';
import { PROJECT_DIR } from '../support/host.js';

export const CONTAINER_SCRIPT = join(PROJECT_DIR, 'test', 'systemd', 'container.sh');
/** The cached root file system, in the git-ignored build folder. */
export const ROOTFS_CACHE = join(PROJECT_DIR, '.build', 'systemd');

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function result(r: SpawnSyncReturns<string>, started: number): CommandResult {
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms: performance.now() - started };
}

function describe(what: string, r: CommandResult): string {
  return `${what} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/**
 * Builds the root file system once (debootstrap; cached under .build/systemd), then returns
 * how long that took: 0-ish when it was cached. Throws with the reason when it cannot.
 */
export async function ensureRootfs(): Promise<{ rootfs: string; ms: number; output: string }> {
  const started = performance.now();
  // Not spawnSync: a cold build takes a minute or more, and a worker blocked that long misses
  // vitest's own RPC deadline (an unhandled "Timeout calling onTaskUpdate" fails the run).
  const child = spawn(CONTAINER_SCRIPT, ['rootfs', ROOTFS_CACHE], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGTERM'), 900_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  }).finally(() => clearTimeout(timer));
  if (code !== 0) throw new Error(`cannot build the container's root file system (exit ${code}): ${stderr}${stdout}`);
  return { rootfs: join(ROOTFS_CACHE, 'rootfs'), ms: performance.now() - started, output: stdout };
}

export interface MachineOptions {
  /** A name for its state directory (under .build/systemd/machines). */
  readonly name: string;
  readonly rootfs: string;
  /** Host paths bound read-only inside: `HOST:INSIDE`. */
  readonly binds: readonly string[];
  /** Variables every command inside gets (LOOPBACK_*, BLUEGREEN_TEST_*). */
  readonly env: Readonly<Record<string, string>>;
}

export class Machine {
  readonly dir: string;

  private constructor(private readonly options: MachineOptions) {
    this.dir = join(ROOTFS_CACHE, 'machines', options.name);
  }

  /** Boots it, and resolves with the time from start to systemd's `running`. */
  static async boot(options: MachineOptions): Promise<{ machine: Machine; ms: number; state: string }> {
    const machine = new Machine(options);
    // A previous run that was killed may have left one behind.
    machine.stop();
    mkdirSync(machine.dir, { recursive: true });
    const started = performance.now();
    const start = spawnSync(CONTAINER_SCRIPT, ['start', machine.dir, options.rootfs, ...options.binds], { encoding: 'utf8' });
    if (start.status !== 0) throw new Error(`the container did not start: ${start.stderr}${start.stdout}`);
    const state = machine.waitBooted();
    return { machine, ms: performance.now() - started, state };
  }

  /** Waits until systemd inside has finished booting; returns its state (`running`). */
  waitBooted(timeoutSeconds = 90): string {
    const r = spawnSync(CONTAINER_SCRIPT, ['wait', this.dir, String(timeoutSeconds)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the container did not boot: ${r.stderr}${r.stdout}\nconsole:\n${this.consoleTail()}`);
    return r.stdout.trim();
  }

  /** The container's PID 1 as the host sees it; undefined while it is not running. */
  pid1(): number | undefined {
    const r = spawnSync(CONTAINER_SCRIPT, ['pid', this.dir], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.trim()) : undefined;
  }

  /** How many times systemd-nspawn has exited (a reboot is one). */
  exits(): string[] {
    const file = join(this.dir, 'exits');
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
  }

  consoleTail(lines = 40): string {
    const file = join(this.dir, 'console.log');
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '(no console log)';
  }

  /** Runs `command` inside as root, to completion. */
  exec(command: readonly string[], input?: string): CommandResult {
    const started = performance.now();
    const r = spawnSync(CONTAINER_SCRIPT, ['exec', this.dir, ...command], {
      encoding: 'utf8',
      input,
      env: { ...process.env, ...this.options.env },
      timeout: 600_000,
    });
    return result(r, started);
  }

  /** Runs `command` inside and fails with its output unless it exits 0; returns its stdout. */
  run(command: readonly string[]): string {
    const r = this.exec(command);
    if (r.code !== 0) throw new Error(describe(command.join(' '), r));
    return r.stdout;
  }

  /** Runs `command` inside without waiting: for a deploy that a reboot interrupts. */
  start(command: readonly string[]): Promise<CommandResult> {
    const started = performance.now();
    const child = spawn(CONTAINER_SCRIPT, ['exec', this.dir, ...command], {
      env: { ...process.env, ...this.options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - started })));
  }

  /** `bluegreen ARGS` inside, as an operator on the host runs it. */
  engine(args: readonly string[]): CommandResult {
    return this.exec(['bluegreen', ...args]);
  }

  status(): Status {
    const r = this.engine(['status', '--json']);
    if (r.code !== 0) throw new Error(describe('bluegreen status', r));
    return JSON.parse(r.stdout) as Status;
  }

  /** `systemctl show -p PROPERTY --value UNIT` inside. */
  unitProperty(unit: string, property: string): string {
    return this.run(['systemctl', 'show', '-p', property, '--value', unit]).trim();
  }

  readFile(path: string): string {
    return this.run(['cat', path]);
  }

  /** Halts it (`systemctl poweroff` would do the same) and removes its layer. */
  stop(): void {
    spawnSync(CONTAINER_SCRIPT, ['stop', this.dir], { encoding: 'utf8' });
  }

  destroy(): void {
    this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
