/**
 * The live app crashes: Nginx falls back to the warm standby (a `backup` server) until the live
 * slot is back. Real Nginx, real JVMs, a real `kill -9` under real load.
 *
 * On the host systemd restarts the crashed slot (Restart=on-failure); the local host's process
 * runner has no supervisor, so this test restarts the killed JVM itself, with the same command
 * line, after a pause that stands for systemd's RestartSec plus the app's start.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../lib/contract.js';
import { countVersions, formatSummary, samplesBetween, startLoad, type LoadRun } from '../../scripts/lib/load.js';
import { buildJar, LocalHost, waitFor } from '../support/host.js';

const PORTS = { nginx: 19580, blue: 19581, green: 19582 };
/** How long the live slot stays down: systemd's RestartSec=2 plus a small app's start. */
const DOWN_MS = 3000;

let jars: Record<'v1' | 'v2', string>;
let host: LocalHost;
let load: LoadRun | undefined;

beforeAll(() => {
  jars = { v1: buildJar('v1'), v2: buildJar('v2') };
});

beforeEach(async () => {
  host = new LocalHost(PORTS).up();
  for (const v of ['v1', 'v2'] as const) {
    const r = await host.run(['deploy', jars[v], '--version', v]);
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
  }
});

afterEach(async () => {
  await load?.stop();
  load = undefined;
  host.destroy();
});

/** The argv and working directory of a running process, to start it again the same way. */
function commandOf(pid: number): { argv: string[]; cwd: string } {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  return { argv, cwd: readlinkSync(`/proc/${pid}/cwd`) };
}

describe('the live app crashes', () => {
  it('Nginx sends requests to the warm standby until the live slot is back, and only then', async () => {
    expect(host.includeText()).toMatch(new RegExp(`server 127\\.0\\.0\\.1:${PORTS.blue} max_fails=0 backup;`));
    const before = host.status();
    expect(before).toMatchObject({ live: 'green', fallback: null, slots: { blue: { role: 'standby', running: true } } });
    const livePid = before.slots.green.pid!;
    const command = commandOf(livePid);

    load = startLoad({ baseUrl: host.url, keepAliveConnections: 32, newConnectionWorkers: 4, thinkMs: 2, slowRequestEvery: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    const killed = load.mark('kill -9 live');
    process.kill(livePid, 'SIGKILL');
    await waitFor(() => host.status().fallback === 'blue', 'status to show the fallback', 5000);
    const text = host.runSync(['status']);
    expect(text.stdout).toMatch(/^fallback: green is down .*standby blue \(v1\)/m);
    await new Promise((r) => setTimeout(r, Math.max(0, DOWN_MS - (load!.mark('status seen') - killed))));

    // What systemd does on the host: the same command, again.
    const restarted = load.mark('live restarted');
    spawn(command.argv[0]!, command.argv.slice(1), { cwd: command.cwd, detached: true, stdio: 'ignore' }).unref();
    await waitFor(async () => (await host.servedVersion()) === 'v2', 'the live slot to serve again', 30_000);
    const back = load.mark('live serves again');
    expect(host.status().fallback).toBeNull();
    await new Promise((r) => setTimeout(r, 1500));
    const report = await load.stop();
    load = undefined;
    console.log(`[live killed, standby fallback] ${formatSummary(report)}`);

    // While the live slot was up, nobody reached the standby (a request in flight at the kill
    // may have been resent there: only those answered before it count).
    expect(countVersions(report.samples.filter((s) => s.end < killed))).toEqual({ v2: expect.any(Number) });
    // Once it is back, every new request goes to it again.
    expect(Object.keys(countVersions(samplesBetween(report, back + 100)))).toEqual(['v2']);

    const standby = report.samples.filter((s) => s.version === 'v1');
    const served = standby.length > 0 ? Math.max(...standby.map((s) => s.end)) - Math.min(...standby.map((s) => s.start)) : 0;
    const failed = report.samples.filter((s) => !s.ok);
    const byKind = (kind: string) => report.samples.filter((s) => s.kind === kind);
    console.log(
      `kill -9 of the live JVM: ${report.totals.requests} requests, ${failed.length} failed ` +
        `(GET ${failed.filter((s) => s.kind === 'get').length} of ${byKind('get').length}, ` +
        `POST ${failed.filter((s) => s.kind === 'post').length} of ${byKind('post').length}); ` +
        `the standby answered ${standby.length} requests over ${(served / 1000).toFixed(2)} s ` +
        `(live down for ${((back - killed) / 1000).toFixed(2)} s, restarted at +${((restarted - killed) / 1000).toFixed(2)} s)`,
    );
    expect(standby.length).toBeGreaterThan(50);
    // An idempotent request that failed on the live slot is resent to the standby: none fails
    // with a 502, a reset or a timeout. The one exception is an answer the killed app had
    // already begun: Nginx passes an answer's head on as it arrives, so once the client has the
    // head (status 200) nothing can be resent, and a body cut by the kill stays cut. The test's
    // app (JDK HttpServer) writes the head and the body in two writes, so a kill now and then
    // falls between them; those requests were sent before the kill.
    const cut = (s: (typeof failed)[number]) => s.reason === 'incomplete body' && s.status === 200 && s.start < killed + 50;
    expect(failed.filter((s) => s.kind !== 'post' && !cut(s)), JSON.stringify(report.failures)).toEqual([]);
    // A POST is resent only when it never reached the killed app; one that had reached it fails
    // (it might have taken effect), and only those in flight at the kill.
    for (const s of failed) expect(s.start).toBeLessThan(killed + 50);
  });
});
