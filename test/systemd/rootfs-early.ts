/**
 * Global setup of the `systemd` test project (vitest.config.ts): starts building the container's
 * root file system as the test run begins, so that debootstrap (a minute or more on a clean
 * checkout) runs while the other files do, instead of before the systemd tests. It runs at the
 * lowest CPU priority (SCHED_IDLE: only on a core nothing else wants), so that it cannot take
 * time from the health checks and load of the timing-sensitive tests; the engine writes no file
 * with fsync, so the build's disk writes do not stall it either. container.sh takes a lock: the
 * tests' own ensureRootfs() waits for this build, and builds again if this one failed, with the
 * reason. Vitest runs a project's global setup only when the run includes its files.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { CONTAINER_SCRIPT, ROOTFS_CACHE } from './machine.js';

export default function setup(): () => void {
  mkdirSync(ROOTFS_CACHE, { recursive: true });
  const log = openSync(join(ROOTFS_CACHE, 'early-build.log'), 'w');
  // Its own process group, so that the teardown can end debootstrap and its children too.
  const child = spawn('chrt', ['--idle', '0', CONTAINER_SCRIPT, 'rootfs', ROOTFS_CACHE], { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  // Without chrt the tests build it themselves, as before.
  child.on('error', () => undefined);
  return () => {
    // Still running only if no systemd test asked for it (a run filtered by test name).
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // It ended in the meantime.
      }
    }
  };
}
