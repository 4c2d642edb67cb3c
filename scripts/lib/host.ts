/**
 * A real local host (for tests, the demo and the benchmark): Nginx from PATH started by `scripts/local-host`, the real
 * `bluegreen` engine, real JVMs running sample-app jars built by `assets/sample-app/build`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { HistoryEntry, Status } from '../../lib/contract.js';

export const PROJECT_DIR = resolve(import.meta.dirname, '..', '..');
export const BLUEGREEN = join(PROJECT_DIR, 'assets', 'instance', 'bin', 'bluegreen');
export const LOCAL_HOST = join(PROJECT_DIR, 'scripts', 'local-host');
const SAMPLE_BUILD = join(PROJECT_DIR, 'assets', 'sample-app', 'build');

/** JVM flags that make the small sample app start fast and stay small on a 2-core machine. */
export const TEST_JAVA_OPTS = '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx64m -Xss512k';

export interface JarOptions {
  /** Baked-in behaviour of the sample app, e.g. `never-healthy`, `exit-at-once`. @default normal */
  readonly behaviour?: string;
  /** Baked-in delay before the app listens. @default 0 */
  readonly startDelayMs?: number;
  /** Baked-in time health stays DOWN after the app listens. @default 0 */
  readonly readyDelayMs?: number;
}

const jarCache = new Map<string, string>();
let jarDir: string | undefined;

/** Builds (once per process) a sample-app jar with the given version and behaviour. */
export function buildJar(version: string, opts: JarOptions = {}): string {
  const behaviour = opts.behaviour ?? 'normal';
  const delay = opts.startDelayMs ?? 0;
  const ready = opts.readyDelayMs ?? 0;
  const key = `${version}|${behaviour}|${delay}|${ready}`;
  const cached = jarCache.get(key);
  if (cached) return cached;
  // One place in the (git-ignored) build directory: each process rebuilds what it uses, and the
  // build script renames a finished jar into place, so processes never see half a jar.
  jarDir ??= join(PROJECT_DIR, '.build', 'jars');
  mkdirSync(jarDir, { recursive: true });
  const out = join(jarDir, `${version}-${behaviour.replace(/[^a-z0-9.-]/gi, '_')}-${delay}${ready ? `-ready${ready}` : ''}.jar`);
  const result = spawnSync(
    'bash',
    [SAMPLE_BUILD, '--version', version, '--out', out, '--behaviour', behaviour, '--start-delay-ms', String(delay), '--ready-delay-ms', String(ready)],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`sample app build failed: ${result.stderr}${result.stdout}`);
  jarCache.set(key, out);
  return out;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface HostPorts {
  readonly nginx: number;
  readonly blue: number;
  readonly green: number;
}

/** A local host in its own directory. */
export class LocalHost {
  readonly dir: string;
  readonly conf: string;
  readonly url: string;

  /**
   * @param bakeSeconds how long the engine watches a new release after a switch. Most tests
   *   exercise the swap itself, so the local host turns the bake off unless asked.
   * @param keepaliveTimeout Nginx's client keep-alive (BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT); `0`
   *   for a host behind a load balancer. @default - Nginx's own
   */
  constructor(
    readonly ports: HostPorts,
    dir?: string,
    readonly bakeSeconds = 0,
    readonly keepaliveTimeout?: string,
  ) {
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'bluegreen-host-'));
    this.conf = join(this.dir, 'bluegreen.conf');
    this.url = `http://127.0.0.1:${ports.nginx}`;
  }

  up(): this {
    mkdirSync(this.dir, { recursive: true });
    const args = [
      'up', this.dir,
      '--port', String(this.ports.nginx),
      '--blue-port', String(this.ports.blue),
      '--green-port', String(this.ports.green),
      '--bake-seconds', String(this.bakeSeconds),
      ...(this.keepaliveTimeout === undefined ? [] : ['--keepalive-timeout', this.keepaliveTimeout]),
    ];
    const result = spawnSync(LOCAL_HOST, args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`local-host up failed: ${result.stderr}${result.stdout}`);
    return this;
  }

  down(): void {
    spawnSync(LOCAL_HOST, ['down', this.dir], { encoding: 'utf8' });
  }

  /** Removes the host directory too (after down). */
  destroy(): void {
    this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, BLUEGREEN_CONF: this.conf, BLUEGREEN_JAVA_OPTS: TEST_JAVA_OPTS, ...extra };
  }

  /** Runs `bluegreen ARGS` to completion. */
  async run(args: string[], extra: Record<string, string> = {}): Promise<RunResult> {
    const started = performance.now();
    const child = this.spawn(args, extra);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    return { code, stdout, stderr, ms: performance.now() - started };
  }

  /** Starts `bluegreen ARGS` and returns the child (for tests that kill it). */
  spawn(args: string[], extra: Record<string, string> = {}): ChildProcess {
    return spawn(BLUEGREEN, args, { env: this.env(extra), stdio: ['ignore', 'pipe', 'pipe'] });
  }

  runSync(args: string[], extra: Record<string, string> = {}): RunResult {
    const started = performance.now();
    const r = spawnSync(BLUEGREEN, args, { env: this.env(extra), encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - started };
  }

  status(): Status {
    const r = this.runSync(['status', '--json']);
    if (r.code !== 0) throw new Error(`status failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Status;
  }

  history(): HistoryEntry[] {
    const r = this.runSync(['history', '--json']);
    if (r.code !== 0) throw new Error(`history failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as HistoryEntry[];
  }

  includeText(): string {
    return readFileSync(join(this.dir, 'nginx', 'bluegreen', 'live-upstream.conf'), 'utf8');
  }

  nginxMasterPid(): number {
    return Number(readFileSync(join(this.dir, 'nginx', 'nginx.pid'), 'utf8').trim());
  }

  releasesExist(): boolean {
    return existsSync(join(this.dir, 'home', 'releases'));
  }

  /** The version the site answers with right now, through Nginx, on a new connection. */
  async servedVersion(): Promise<string> {
    const res = await fetch(`${this.url}/`, { headers: { connection: 'close' } });
    const body = (await res.json()) as { version: string };
    return body.version;
  }
}

/** Waits until `predicate` holds, polling; throws with `what` after the timeout. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
