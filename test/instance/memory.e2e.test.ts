/**
 * The memory budget on a real local host inside a real memory limit: a cgroup v1 memory group
 * of the default instance's 2 GiB holds Nginx, the engine, both slots at their budgeted heap
 * (fully touched), a JVM with Jenkins' heap, and a stand-in for a build that allocates until the
 * kernel kills it, again and again. A deploy under load must lose no request, and the kernel
 * must never pick the live app.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../lib/contract.js';
import { OOM_SCORE_ADJ, budgetFor, engineMemorySettings } from '../../lib/memory-budget.js';
import { formatSummary, startLoad } from '../../scripts/lib/load.js';
import { BLUEGREEN, buildJar, LocalHost, pidAlive, waitFor } from '../support/host.js';

const PORTS = { nginx: 18760, blue: 18761, green: 18762 };
const JENKINS_STAND_IN_PORT = 18763;
const LOAD = { keepAliveConnections: 32, newConnectionWorkers: 4, slowRequestEvery: 40, slowMs: 800, thinkMs: 2 };
const MEMORY_ROOT = '/sys/fs/cgroup/memory';
const MIB = 1024 * 1024;

// The default single host: t3.small.
const budget = budgetFor('single', 't3.small', undefined, 'test');
const slot = budget.slot!;
const jenkins = budget.jenkins!;

/** Fast start flags of the tests, without their own -Xmx: the budget's heap applies, all of it touched. */
const JAVA_OPTS = `-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss512k -Xms${slot.heapMiB}m -XX:+AlwaysPreTouch`;

/** A cgroup v1 memory group with a limit; processes join it by pid and their children follow. */
class MemoryGroup {
  readonly dir: string;
  constructor(name: string, limitBytes: number) {
    if (!existsSync(join(MEMORY_ROOT, 'memory.limit_in_bytes'))) {
      throw new Error(`no cgroup v1 memory controller at ${MEMORY_ROOT}: this test needs it (and root) to put the host in a 2 GiB limit`);
    }
    this.dir = join(MEMORY_ROOT, name);
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(join(this.dir, 'memory.limit_in_bytes'), String(limitBytes));
    // Swap would let the group exceed its memory: the limit covers memory and swap alike.
    if (existsSync(join(this.dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(this.dir, 'memory.memsw.limit_in_bytes'), String(limitBytes));
  }
  read(file: string): string {
    return readFileSync(join(this.dir, file), 'utf8').trim();
  }
  add(pid: number): void {
    writeFileSync(join(this.dir, 'cgroup.procs'), String(pid));
  }
  pids(): number[] {
    return this.read('cgroup.procs').split('\n').filter(Boolean).map(Number);
  }
  oomKills(): number {
    return Number(/^oom_kill (\d+)$/m.exec(this.read('memory.oom_control'))?.[1] ?? 'NaN');
  }
  /** Kills what is left in it, then removes it. */
  remove(): void {
    if (!existsSync(this.dir)) return;
    for (const pid of this.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (let i = 0; i < 100 && this.pids().length > 0; i++) spawnSync('sleep', ['0.05']);
    rmdirSync(this.dir);
  }
}

/** Runs COMMAND inside GROUP with oom_score_adj ADJ (what systemd's OOMScoreAdjust= gives a unit). */
function inGroup(group: MemoryGroup, adj: number, command: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const enter = `echo $$ > ${group.dir}/cgroup.procs && echo ${adj} > /proc/self/oom_score_adj && exec "$@"`;
  return spawn('bash', ['-c', enter, 'bash', ...command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function finished(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/**
 * Lowering an oom_score_adj needs CAP_SYS_RESOURCE; without it (a container) nothing in the group
 * can go below the engine's own 0, and the engine puts the live slot there instead of at -900.
 */
const CAN_LOWER = (BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`) >> 24n) & 1n;
const LIVE_ADJ = CAN_LOWER === 1n ? OOM_SCORE_ADJ.liveSlot : 0;

const oomScoreAdj = (pid: number) => Number(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim());

let host: LocalHost;
let group: MemoryGroup;
const children: ChildProcess[] = [];

beforeAll(() => {
  group = new MemoryGroup(`bluegreen-memory-test-${process.pid}`, budget.instanceMiB * MIB);
  host = new LocalHost(PORTS).up();
  // Nginx (master and workers; workers a reload starts are the master's children) goes in too.
  const master = host.nginxMasterPid();
  for (const pid of [master, ...spawnSync('pgrep', ['-P', String(master)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number)]) {
    group.add(pid);
  }
});

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  host?.destroy();
  group?.remove();
});

describe('a 2 GiB host (t3.small) under memory pressure from a build', () => {
  it('deploys under load with no failed request; the kernel kills the build, never the live app', { timeout: 240_000 }, async () => {
    const env = host.env({
      BLUEGREEN_JAVA_OPTS: JAVA_OPTS,
      ...Object.fromEntries(engineMemorySettings(budget).map((line) => line.split('=') as [string, string])),
    });
    const deploy = async (version: string) => {
      const result = await finished(inGroup(group, 0, [BLUEGREEN, 'deploy', buildJar(version), '--version', version], env));
      expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(EXIT_CODES.ok);
      return result;
    };

    // GIVEN v1 live, with the budget's heap
    await deploy('v1');
    const status = host.status();
    const livePid = Number(status.slots.blue.pid);
    expect(readFileSync(`/proc/${livePid}/cmdline`, 'utf8').split('\0')).toContain(`-Xmx${slot.heapMiB}m`);
    expect(oomScoreAdj(livePid)).toBe(LIVE_ADJ);
    console.log(`[memory] the live slot's oom_score_adj: ${LIVE_ADJ}${CAN_LOWER === 1n ? '' : ' (no CAP_SYS_RESOURCE here: -900 on a host)'}`);

    // AND a JVM with Jenkins' budgeted heap, fully touched, ranked as Jenkins' unit ranks it
    const jenkinsStandIn = inGroup(group, OOM_SCORE_ADJ.jenkins, [
      'java', `-Xmx${jenkins.heapMiB}m`, `-Xms${jenkins.heapMiB}m`, '-XX:+AlwaysPreTouch', '-XX:+UseSerialGC',
      '-jar', buildJar('jenkins-stand-in'), `--server.port=${JENKINS_STAND_IN_PORT}`, '--server.address=127.0.0.1',
    ]);
    children.push(jenkinsStandIn);
    await waitFor(async () => fetch(`http://127.0.0.1:${JENKINS_STAND_IN_PORT}/`).then((r) => r.ok, () => false), 'the Jenkins stand-in', 60_000);

    // AND a build that allocates until the kernel kills it, started again each time, ranked as bluegreen-pipeline ranks it
    let builds = 0;
    let buildsKilled = 0;
    let building = true;
    const buildLoop = (async () => {
      while (building) {
        builds++;
        const hog = inGroup(group, OOM_SCORE_ADJ.build, ['perl', '-e', 'my @a; while (1) { push @a, "x" x (8 << 20); select(undef, undef, undef, 0.01) }']);
        children.push(hog);
        const { signal } = await finished(hog);
        if (signal === 'SIGKILL' && building) buildsKilled++;
      }
    })();
    await waitFor(() => buildsKilled >= 1, 'the first build killed by the kernel', 60_000);

    // WHEN v2 deploys under load while the builds keep pressing
    const load = startLoad({ baseUrl: host.url, ...LOAD });
    await new Promise((r) => setTimeout(r, 1000));
    await deploy('v2');
    await new Promise((r) => setTimeout(r, 2000));
    const report = await load.stop();
    const jenkinsSurvived = jenkinsStandIn.exitCode === null && jenkinsStandIn.signalCode === null;
    building = false;
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await buildLoop;

    // THEN
    const after = host.status();
    const newLivePid = Number(after.slots.green.pid);
    const peakMiB = Number(group.read('memory.max_usage_in_bytes')) / MIB;
    console.log(
      `[memory] limit ${budget.instanceMiB} MiB; high-water mark ${peakMiB.toFixed(0)} MiB; failcnt ${group.read('memory.failcnt')}; ` +
        `OOM kills ${group.oomKills()}; builds started ${builds}, killed by the kernel ${buildsKilled}; ` +
        `budget: reserve ${budget.reserveMiB}, slot ${slot.heapMiB}/${slot.totalMiB}, Jenkins ${jenkins.heapMiB}/${jenkins.totalMiB}, build ${budget.build!.totalMiB} MiB`,
    );
    console.log(`[memory] ${formatSummary(report)}`);
    expect(await host.servedVersion()).toBe('v2');
    expect(report.totals.requests).toBeGreaterThan(200);
    expect(report.failures, JSON.stringify(report.failures, null, 1)).toEqual({});
    expect(report.totals.failed).toBe(0);
    // The pressure was real: the limit was hit and the kernel killed, more than once.
    expect(buildsKilled).toBeGreaterThanOrEqual(2);
    expect(group.oomKills()).toBeGreaterThanOrEqual(buildsKilled);
    // Every kill was a build: the old live app (now the standby), the new one, Nginx and Jenkins all survived.
    expect(jenkinsSurvived).toBe(true);
    expect(pidAlive(livePid)).toBe(true);
    expect(Number(after.slots.blue.pid)).toBe(livePid);
    expect(pidAlive(newLivePid)).toBe(true);
    expect(pidAlive(host.nginxMasterPid())).toBe(true);
    // The switch ranked them: the new live slot last in the kernel's line, the standby before it.
    expect(oomScoreAdj(newLivePid)).toBe(LIVE_ADJ);
    expect(oomScoreAdj(livePid)).toBe(OOM_SCORE_ADJ.idleSlot);
    expect(peakMiB).toBeLessThanOrEqual(budget.instanceMiB);
  });
});
