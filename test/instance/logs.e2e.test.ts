/**
 * Issue 14, "logs grow without bound": the slots' output goes through the log writer
 * (assets/instance/lib/log-writer.py), which follows its file when logrotate renames it. Real
 * Nginx, real JVMs logging one numbered line per request (the sample app's
 * --bluegreen.log-requests=true), real load, the real logrotate binary with the configuration the
 * engine ships (its paths those of this local host), a real tmpfs that fills up, a real kill -9.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../lib/contract.js';
import { formatSummary, startLoad, type LoadReport } from '../../scripts/lib/load.js';
import { buildJar, LocalHost, pidAlive, PROJECT_DIR, waitFor } from '../support/host.js';

const PORTS = { nginx: 19880, blue: 19881, green: 19882 };
const LOAD = { keepAliveConnections: 8, newConnectionWorkers: 2, slowRequestEvery: 50, slowMs: 200, thinkMs: 2 };
const APP_ARGS = { BLUEGREEN_APP_ARGS: '--bluegreen.log-requests=true' };
const ROTATIONS = 4;
/** One numbered line of the sample app, whole: its timestamp to its path. */
const REQUEST_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(?:Z|[+-]\d\d:\d\d) {2}INFO (\d+) --- \[.{15}\] bluegreen\.sample\.SampleApp : Request (\d+) (GET|POST|HEAD) \/\S*$/;
const LOSS_LINE = /^\S+ bluegreen log writer: (\d+) bytes of the app's output were lost: .* could not be written \((.+)\)$/;

let dir: string;
let logs: string;
let host: LocalHost;
let live: 'blue' | 'green';
let appPid: number;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout + r.stderr;
}

/** The app's log writer: the child of the JVM that runs log-writer.py. */
function writerOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  const writers = children.filter((c) => existsSync(`/proc/${c}`) && readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('log-writer.py'));
  expect(writers, `children of ${pid}: ${children.join(' ')}`).toHaveLength(1);
  return writers[0]!;
}

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** Every file of the live slot's log, oldest first: name.N(.gz) from the highest N, then name. */
function logFiles(): string[] {
  const base = `${live}.log`;
  const rank = (name: string) => (name === base ? 0 : Number(name.slice(base.length + 1).replace(/\.gz$/, '')));
  return readdirSync(logs)
    .filter((n) => n === base || new RegExp(`^${base}\\.\\d+(\\.gz)?$`).test(n))
    .sort((a, b) => rank(b) - rank(a));
}

function fileText(name: string): string {
  const bytes = readFileSync(join(logs, name));
  return (name.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8');
}

/** The numbered request lines of the app with PID in TEXT, in file order, and any other lines of it. */
function requestNumbers(text: string, pid: number): { numbers: number[]; broken: string[] } {
  const numbers: number[] = [];
  const broken: string[] = [];
  for (const line of text.split('\n')) {
    const m = REQUEST_LINE.exec(line);
    if (m && Number(m[1]) === pid) numbers.push(Number(m[2]));
    else if (line.includes(' Request ') || (line.includes(`${pid} --- `) && !line.includes(' : '))) broken.push(line);
  }
  return { numbers, broken };
}

/** A logrotate configuration from the shipped one, with this host's directory and user. */
function logrotateConf(): string {
  const shipped = readFileSync(join(PROJECT_DIR, 'assets', 'instance', 'logrotate', 'bluegreen'), 'utf8');
  const conf = join(dir, 'logrotate.conf');
  writeFileSync(conf, shipped.replaceAll('@@LOG_DIR@@', logs).replaceAll('@@SLOT_USER@@', 'root'), { mode: 0o644 });
  return conf;
}

function summary(what: string, report: LoadReport): string {
  return `${what}: ${formatSummary(report)}`;
}

beforeAll(async () => {
  const jar = buildJar('v1');
  dir = mkdtempSync(join(tmpdir(), 'bluegreen-logs-'));
  logs = join(dir, 'logs');
  // The slots' log directory on a small file system of its own, for the full disk below.
  mkdirSync(logs);
  sh('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0755', 'bluegreen-logs', logs]);
  host = new LocalHost(PORTS, dir).up();
  const r = await host.run(['deploy', jar, '--version', 'v1'], APP_ARGS);
  expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
  const status = host.status();
  live = status.live as 'blue' | 'green';
  appPid = status.slots[live].pid!;
});

afterAll(() => {
  host?.down();
  if (logs) spawnSync('umount', [logs]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the slots' logs", () => {
  it('logrotate -f with the shipped configuration, several times under load: every line in exactly one file, in order, none lost or split, no restart, no failed request', async () => {
    const conf = logrotateConf();
    const state = join(dir, 'logrotate.status');
    const writer = writerOf(appPid);
    const load = startLoad({ baseUrl: host.url, ...LOAD });
    for (let i = 0; i < ROTATIONS; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      sh('logrotate', ['-f', '--state', state, conf]);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const report = await load.stop();
    // One more request after the load: its line is the last, and shows the writer is in the newest file.
    await fetch(`${host.url}/`);
    await waitFor(() => fileText(`${live}.log`).includes(' GET /\n'), 'the last request line in the current file', 5000);
    console.log(summary(`${ROTATIONS} rotations under load`, report));

    const files = logFiles();
    // delaycompress: the newest rotated file stays plain until the next rotation.
    expect(files).toEqual([
      ...Array.from({ length: ROTATIONS - 1 }, (_, i) => `${live}.log.${ROTATIONS - i}.gz`),
      `${live}.log.1`,
      `${live}.log`,
    ]);
    const all: number[] = [];
    for (const name of files) {
      const { numbers, broken } = requestNumbers(fileText(name), appPid);
      expect(broken, `${name} holds lines that are not whole`).toEqual([]);
      expect(numbers.length, `${name} holds no request line`).toBeGreaterThan(0);
      all.push(...numbers);
    }
    // 1, 2, 3 ... N across the files in order: none lost, none twice, none out of order.
    const expected = Array.from({ length: all.length }, (_, i) => i + 1);
    expect(all.length).toBeGreaterThanOrEqual(report.totals.requests);
    expect(all).toEqual(expected);
    expect(report.totals.failed, JSON.stringify(report.failures)).toBe(0);
    expect(report.totals.requests).toBeGreaterThan(500);
    expect(host.status().slots[live].pid).toBe(appPid);
    expect(writerOf(appPid)).toBe(writer);
    console.log(`lines logged ${all.length} in ${files.length} files, ${ROTATIONS} rotations, 0 lost; log writer pid ${writer} RSS ${rssKiB(writer)} KiB`);
  });

  it('a full disk for the log: the app keeps serving, the writer stays alive, and once there is space the lines go on after one that says how many bytes were lost', async () => {
    const writer = writerOf(appPid);
    const filler = join(logs, 'zz-filler');
    const before = fileText(`${live}.log`);
    const load = startLoad({ baseUrl: host.url, ...LOAD });
    await new Promise((r) => setTimeout(r, 300));
    try {
      const stat = statfsSync(logs);
      writeFileSync(filler, Buffer.alloc(stat.bavail * stat.bsize, 1));
    } catch (e) {
      // The writer took a few pages meanwhile: what did not fit is full anyway.
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    }
    const full = readFileSync(join(logs, `${live}.log`)).length;
    await new Promise((r) => setTimeout(r, 2000));
    // The disk is full: the file grew at most by the page it had begun.
    expect(readFileSync(join(logs, `${live}.log`)).length - full).toBeLessThanOrEqual(4096);
    expect(statfsSync(logs).bavail).toBe(0);
    expect(pidAlive(writer)).toBe(true);
    rmSync(filler);
    await waitFor(() => LOSS_LINE.test(fileText(`${live}.log`).split('\n').find((l) => l.includes('bluegreen log writer:')) ?? ''), 'the line that says how many bytes were lost', 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const report = await load.stop();
    console.log(summary('log on a full disk', report));
    expect(report.totals.failed, JSON.stringify(report.failures)).toBe(0);
    expect(host.status().slots[live].pid).toBe(appPid);
    expect(writerOf(appPid)).toBe(writer);

    const lines = fileText(`${live}.log`).slice(before.length).split('\n');
    const at = lines.findIndex((l) => LOSS_LINE.test(l));
    const [, lostText, reason] = LOSS_LINE.exec(lines[at]!)!;
    const lost = Number(lostText);
    expect(reason).toBe('No space left on device');
    const beforeLoss = requestNumbers(lines.slice(0, at - 1).join('\n'), appPid);
    const afterLoss = requestNumbers(lines.slice(at + 1).join('\n'), appPid);
    // The line the disk cut (if any) is the one just before the note; every other line is whole.
    expect(beforeLoss.broken).toEqual([]);
    expect(afterLoss.broken).toEqual([]);
    expect(afterLoss.numbers.length).toBeGreaterThan(0);
    const first = beforeLoss.numbers.at(-1)!;
    const resumed = afterLoss.numbers[0]!;
    const missing = resumed - first - 1;
    expect(missing).toBeGreaterThan(0);
    // What was lost is the missing lines (and the end of the one the disk cut): about their size.
    const sizes = [...before.split('\n'), ...lines].filter((l) => REQUEST_LINE.test(l)).map((l) => l.length + 1);
    expect(lost).toBeGreaterThanOrEqual((missing - 1) * Math.min(...sizes));
    expect(lost).toBeLessThanOrEqual((missing + 1) * Math.max(...sizes));
    expect(afterLoss.numbers).toEqual(Array.from({ length: afterLoss.numbers.length }, (_, i) => resumed + i));
    console.log(`full disk: ${missing} lines (${lost} bytes) lost and said so; log writer RSS ${rssKiB(writer)} KiB`);
  });

  it('the writer ignores SIGTERM; killed with kill -9, the app keeps serving (the JVM ignores SIGPIPE, its writes fail with EPIPE) and its output is lost until its next start', async () => {
    const writer = writerOf(appPid);
    process.kill(writer, 'SIGTERM');
    await fetch(`${host.url}/`);
    await new Promise((r) => setTimeout(r, 300));
    expect(pidAlive(writer)).toBe(true);
    const size = readFileSync(join(logs, `${live}.log`)).length;
    process.kill(writer, 'SIGKILL');
    await waitFor(() => !pidAlive(writer), 'the log writer to die', 5000);
    const load = startLoad({ baseUrl: host.url, ...LOAD });
    await new Promise((r) => setTimeout(r, 2000));
    const report = await load.stop();
    console.log(summary('after kill -9 of the log writer', report));
    expect(report.totals.failed, JSON.stringify(report.failures)).toBe(0);
    expect(report.totals.requests).toBeGreaterThan(100);
    expect(host.status().slots[live].pid).toBe(appPid);
    expect(pidAlive(appPid)).toBe(true);
    expect(readFileSync(join(logs, `${live}.log`)).length).toBe(size);
    // Its next start has a writer again: a deploy starts the other slot, whose lines arrive.
    const r = await host.run(['deploy', buildJar('v2'), '--version', 'v2'], APP_ARGS);
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
    const next = host.status();
    const newPid = next.slots[next.live as 'blue' | 'green'].pid!;
    expect(newPid).not.toBe(appPid);
    await fetch(`${host.url}/`);
    await waitFor(() => requestNumbers(readFileSync(join(logs, `${next.live}.log`), 'utf8'), newPid).numbers.length > 0, 'a request line of the new release', 5000);
  });
});
