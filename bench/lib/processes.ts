/**
 * Processes the benchmark starts, and stopping every one of them: on success, on an error and on
 * Ctrl-C. Only processes this run started are touched, each by its pid.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Steps that undo what the run started, run last-in first-out. */
export class Cleanup {
  private readonly steps: { readonly what: string; readonly run: () => void | Promise<void> }[] = [];
  private running: Promise<void> | undefined;

  /** Registers a step; `what` completes "could not ..." if it fails. */
  add(what: string, run: () => void | Promise<void>): void {
    this.steps.push({ what, run });
  }

  /** Runs every registered step; an error in one is printed and the others still run. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length) await runStep(this.steps.pop()!);
    })();
    return this.running;
  }
}

async function runStep(step: { what: string; run: () => void | Promise<void> }): Promise<void> {
  try {
    await step.run();
  } catch (err) {
    console.error(`bench: warning: could not ${step.what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Children started with {@link spawnTracked} that have not exited yet. */
const liveChildren = new Set<ChildProcess>();
let refusing = false;

/** `spawn`, remembering the child until it exits so that {@link stopTrackedChildren} can stop it. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  // After Ctrl-C the run loop may still be between two steps: a deploy started now would start
  // an app after the clean-up had stopped everything.
  throwIfStopping(command);
  const child = spawn(command, args, options);
  liveChildren.add(child);
  child.on('exit', () => liveChildren.delete(child));
  child.on('error', () => liveChildren.delete(child));
  return child;
}

/** Throws once the run is being stopped: call it before starting anything that is not tracked. */
export function throwIfStopping(what: string): void {
  if (refusing) throw new Error(`not starting ${what}: the run is being stopped`);
}

/** Stops every tracked child, and refuses to start new ones from now on. */
export async function stopTrackedChildren(): Promise<void> {
  refusing = true;
  await Promise.all([...liveChildren].map((child) => (child.pid ? stopPid(child.pid) : undefined)));
}

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Runs a command to completion without blocking the event loop (a blocked loop would add its
 * pause to the latency of every request the load generator has in flight). `onLine` sees each
 * stdout line as it arrives.
 */
export function runTracked(
  command: string,
  args: readonly string[],
  options: SpawnOptions & { readonly onLine?: (line: string) => void; readonly timeoutMs?: number } = {},
): Promise<Finished> {
  const started = performance.now();
  const { onLine, timeoutMs, ...spawnOptions } = options;
  const child = spawnTracked(command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (d: Buffer) => {
    const text = d.toString();
    stdout += text;
    if (!onLine) return;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) onLine(line);
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = timeoutMs
    ? setTimeout(() => {
        stderr += `\nbench: stopped after ${timeoutMs} ms`;
        if (child.pid) void stopPid(child.pid);
      }, timeoutMs)
    : undefined;
  return new Promise((resolve) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}${err.message}`, ms: performance.now() - started });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (pending && onLine) onLine(pending);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** The process state letter from /proc/PID/stat (`R`, `S`, `Z`, ...), or undefined when it is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/**
 * Alive and not a zombie. A zombie has stopped: where PID 1 reaps orphans slowly (containers, CI),
 * a stopped JVM stayed a zombie for 1.95 s while `kill -0` kept succeeding.
 */
export function pidAlive(pid: number): boolean {
  const state = procState(pid);
  return state !== undefined && state !== 'Z';
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone or a zombie. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
    }
    await sleep(20);
  }
}

function numericDirs(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** Live processes whose working directory is `dir` or below it. */
export function processesWithCwdUnder(dir: string): number[] {
  return numericDirs().filter((pid) => {
    if (pid === process.pid || !pidAlive(pid)) return false;
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      return cwd === dir || cwd.startsWith(`${dir}/`);
    } catch {
      return false;
    }
  });
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}

function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Nginx workers of a master that accept connections (not those shutting down after a reload). */
export function acceptingWorkers(masterPid: number): number[] {
  return numericDirs().filter(
    (pid) => parentPid(pid) === masterPid && pidAlive(pid) && /worker process$/.test(cmdline(pid)),
  );
}
