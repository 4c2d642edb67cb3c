/**
 * Issue 14: a full disk during a deploy. The engine's state (BLUEGREEN_HOME) and the directory
 * of Nginx's live include each live on a small tmpfs of their own. Before each deploy one of them
 * is filled to leave exactly K free pages (or, for the state, K free inodes: every new file takes
 * one), K = 0, 1, 2, ... until the deploy succeeds: each K makes a later write of the deploy the
 * first one that finds the disk full. Each time, under load: the engine
 * exits with a named exit status and says the disk is full, the live include is byte-identical
 * to before, Nginx keeps serving the live version, and once space is freed the next deploy works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_CODES } from '../../lib/contract.js';
import { formatSummary, startLoad, type LoadRun } from '../../scripts/lib/load.js';
import { buildJar, describeRun, LocalHost, waitFor, type RunResult } from '../support/host.js';

const PORTS = { nginx: 18380, blue: 18381, green: 18382 };
const LOAD = { keepAliveConnections: 16, newConnectionWorkers: 2, slowRequestEvery: 40, slowMs: 500, thinkMs: 5 };
const PAGE = 4096;
const INCLUDE = 'live-upstream.conf';
const FILLER = 'zz-filler';

let dir: string;
let mounts: { home: string; include: string };
let host: LocalHost;
let load: LoadRun | undefined;
let jars: { v1: string; v2: string; v3: string };

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
}

beforeAll(async () => {
  jars = { v1: buildJar('v1'), v2: buildJar('v2'), v3: buildJar('v3') };
  dir = mkdtempSync(join(tmpdir(), 'bluegreen-full-disk-'));
  mounts = { home: join(dir, 'home'), include: join(dir, 'nginx', 'bluegreen') };
  // A real file system that runs out of space: a tmpfs per directory (we are root). A host where
  // mount is refused fails here, with mount's reason.
  mkdirSync(mounts.home, { recursive: true });
  mkdirSync(mounts.include, { recursive: true });
  sh('mount', ['-t', 'tmpfs', '-o', 'size=8m,nr_inodes=400,mode=0755', 'bluegreen-full-disk-home', mounts.home]);
  sh('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'bluegreen-full-disk-include', mounts.include]);
  host = new LocalHost(PORTS, dir).up();
  const first = await host.run(['deploy', jars.v1, '--version', 'v1']);
  expect(first.code, first.stderr).toBe(EXIT_CODES.ok);
});

afterAll(async () => {
  await load?.stop();
  host?.down();
  for (const m of [mounts?.include, mounts?.home]) if (m) spawnSync('umount', [m]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Fills MOUNT so that exactly FREE pages are left. */
function fill(mount: string, free: number, exact = true): void {
  rmSync(join(mount, FILLER), { force: true });
  const stat = statfsSync(mount);
  const bytes = stat.bavail * stat.bsize - free * PAGE;
  try {
    writeFileSync(join(mount, FILLER), Buffer.alloc(Math.max(0, bytes), 1));
  } catch (e) {
    // While a deploy runs, it takes pages too: what did not fit is full anyway.
    if (exact || (e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  }
  if (!exact) return;
  const left = statfsSync(mount);
  expect(left.bavail * left.bsize).toBe(Math.min(free * PAGE, stat.bavail * stat.bsize));
}

/** Fills MOUNT with empty files so that exactly FREE inodes are left. */
function fillInodes(mount: string, free: number, exact = true): void {
  rmSync(join(mount, FILLER), { recursive: true, force: true });
  mkdirSync(join(mount, FILLER));
  const before = statfsSync(mount).ffree;
  // While a deploy runs, it creates and removes files too: then fill until none is left.
  for (let i = 0; exact ? i < before - free : true; i++) {
    try {
      closeSync(openSync(join(mount, FILLER, String(i)), 'w'));
    } catch (e) {
      if (exact || (e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      break;
    }
  }
  if (exact) expect(statfsSync(mount).ffree).toBe(Math.min(free, before));
}

function unfill(mount: string): void {
  rmSync(join(mount, FILLER), { recursive: true, force: true });
}

/** The first error line, with paths, numbers and pids taken out: which write point failed. */
function writePoint(stderr: string): string {
  const line = /^bluegreen: error: (.*)$/m.exec(stderr)?.[1] ?? stderr;
  return line
    .replace(/\(the file system of .*$/, '')
    .replace(/\/\S+/g, 'PATH')
    .replace(/\d+/g, 'N')
    .slice(0, 160);
}

describe('a disk that fills up at each write of a deploy', () => {
  it('never empties or half-writes the live include, keeps Nginx serving, and deploys once there is space', async () => {
    load = startLoad({ baseUrl: host.url, ...LOAD });
    const points = new Set<string>();
    // The release that is not the standby now, so that every deploy starts a JVM; the standby.
    let next: 'v2' | 'v3' = 'v2';
    let standby: string | null = null;

    /** One deploy on a full disk (RUN), checked, then the same deploy with space, and back to v1. */
    async function attempt(which: string, run: () => Promise<RunResult>, mount: string): Promise<boolean> {
      const includeBefore = readFileSync(join(mounts.include, INCLUDE));
      expect(includeBefore.toString()).toMatch(/# live=blue/);
      const result = await run();
      unfill(mount);
      let deployed = false;
      if (result.code === EXIT_CODES.ok) {
        deployed = true;
        // The new include went in only whole and accepted by nginx -t.
        expect(readFileSync(join(mounts.include, INCLUDE)).toString()).toMatch(/# live=green/);
        expect(await host.servedVersion()).toBe(next);
        console.log(`[${which}] the deploy succeeded`);
      } else {
        const context = `${which}: ${describeRun(result)}\nrecorded: ${JSON.stringify(host.history().at(-1))}`;
        expect([EXIT_CODES.unexpected, EXIT_CODES.nginxRejected], context).toContain(result.code);
        expect(result.stderr, context).toMatch(/No space left on device|is full: \d+ (bytes|inodes) free/);
        expect(readFileSync(join(mounts.include, INCLUDE)).equals(includeBefore), context).toBe(true);
        // No temporary or backup include is left for a later command to trust.
        expect(readdirSync(mounts.include).sort(), context).toEqual([INCLUDE]);
        expect(await host.servedVersion(), context).toBe('v1');
        const status = host.status();
        expect(status.live, context).toBe('blue');
        // The standby is what it was, or the message says it could not be put back yet.
        if (!/The warm standby could not be put back|is on record again but/.test(result.stderr)) {
          expect(status.slots.green.version, context).toBe(standby);
          if (standby) expect(status.slots.green, context).toMatchObject({ running: true, healthy: true, role: 'standby' });
        }
        points.add(`${which}: ${writePoint(result.stderr)}`);
        console.log(`[${which}] exit ${result.code}: ${writePoint(result.stderr)}`);
        // With the space back, the same deploy works (putting back first a standby it could not).
        const again = await host.run(['deploy', jars[next], '--version', next]);
        expect(again.code, describeRun(again)).toBe(EXIT_CODES.ok);
        expect(await host.servedVersion()).toBe(next);
      }
      // Back to v1 live for the next round; `next` is the standby now.
      const back = await host.run(['rollback']);
      expect(back.code, describeRun(back)).toBe(EXIT_CODES.ok);
      expect(await host.servedVersion()).toBe('v1');
      standby = next;
      next = next === 'v2' ? 'v3' : 'v2';
      return deployed;
    }

    const rounds = [
      { which: 'include pages', mount: mounts.include, fill },
      { which: 'home pages', mount: mounts.home, fill },
      { which: 'home inodes', mount: mounts.home, fill: fillInodes },
    ];
    for (const { which, mount, fill: fillUp } of rounds) {
      let deployed = false;
      for (let free = 0; free <= 64 && !deployed; free++) {
        deployed = await attempt(`${which}, ${free} free`, () => {
          fillUp(mount, free);
          return host.run(['deploy', jars[next], '--version', next]);
        }, mount);
      }
      expect(deployed, `no deploy succeeded on the ${which} tmpfs`).toBe(true);
    }
    // The disk also fills up during a deploy, while it waits for the old standby to stop: the
    // writes after that (the new release's record, its pid file, the history) find a full disk
    // unless the deploy freed space first (it removes the stopped standby's pid file and replaces
    // the record by a rename, so they may well fit). Whichever way it goes, the same promises hold.
    for (const [which, fillUp] of [['home pages at stop', fill], ['home inodes at stop', fillInodes]] as const) {
      await attempt(which, async () => {
        const child = host.spawn(['deploy', jars[next], '--version', next]);
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
        await waitFor(() => /\] stop /.test(stdout), 'the deploy to stop the standby', 30_000);
        fillUp(mounts.home, 0, false);
        return { code: await closed, stdout, stderr, ms: 0 };
      }, mounts.home);
    }
    console.log(`${points.size} write points failed:\n${[...points].join('\n')}`);
    // The switch's own two writes, each caught before it could touch the live include.
    expect([...points].some((p) => /^include pages.*: could not back up the live include/.test(p))).toBe(true);
    expect([...points].some((p) => /^include pages.*: could not write the new include/.test(p))).toBe(true);
    // The standby's record, written before the standby is stopped.
    expect([...points].some((p) => /could not record the warm standby before replacing it/.test(p))).toBe(true);
    expect([...points].filter((p) => p.startsWith('home')).length).toBeGreaterThanOrEqual(5);
    const report = await load.stop();
    load = undefined;
    console.log(`[full disk] ${formatSummary(report)}`);
    expect(report.totals.failed).toBe(0);
    expect(report.failures).toEqual({});
  }, 900_000);

  it("restores the include by a rename when nginx -t refuses the switch on a full disk", async () => {
    const includeBefore = readFileSync(join(mounts.include, INCLUDE));
    const broken = join(dir, 'nginx', 'conf.d', 'zz-broken.conf');
    writeFileSync(broken, 'this_is_not_a_directive on;\n');
    // Exactly the backup and the new include fit: putting the old one back must need no space.
    fill(mounts.include, 2);
    const result = await host.run(['deploy', jars.v2, '--version', 'v2-again']);
    unfill(mounts.include);
    rmSync(broken);
    expect(result.code, describeRun(result)).toBe(EXIT_CODES.nginxRejected);
    expect(result.stderr).toMatch(/the previous include is back in place \(read back and checked\)/);
    expect(readFileSync(join(mounts.include, INCLUDE)).equals(includeBefore)).toBe(true);
    expect(readdirSync(mounts.include)).toEqual([INCLUDE]);
    expect(await host.servedVersion()).toBe('v1');
  });
});
