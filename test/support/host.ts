import { readFileSync } from 'node:fs';
import type { RunResult } from '../../scripts/lib/host.js';

// The local host lives with the scripts (the demo and the benchmark use it too).
export * from '../../scripts/lib/host.js';

/** A run's exit code and both streams, for an assertion's message. */
export function describeRun(r: RunResult): string {
  return `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/** Whether PID runs: it has a /proc entry and is not a zombie (a parent may reap it late). */
export function pidAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
