/**
 * The engine's systemd path, as it runs on AWS (BLUEGREEN_RUNNER=systemd), in a Debian 12
 * container whose PID 1 is a real systemd (test/systemd/container.sh): the first boot from the
 * user data the stack synthesizes, the slot units, Nginx as a service, a crash of the live JVM,
 * Nginx restarted, reboots, and a deploy that a reboot interrupts. One container for all of
 * them, in order, as one host lives through them.
 *
 * The first boot's Amazon Linux steps are Debian's here (test/systemd/debian-platform.sh), and
 * its AWS calls go to the loopback stand-ins; docs/systemd-tests.md lists what this leaves untested.
 * A machine that cannot boot the container fails these tests with the reason: nothing is skipped.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_CODES, HOST_PATHS } from '../../lib/contract.js';
import { countVersions, formatSummary, samplesBetween, startLoad, type LoadReport, type LoadRun } from '../../scripts/lib/load.js';
import { renderValue, resourceById, onlyResource, synthesize, TEST_PSEUDO_PARAMETERS } from '../constructs/synth.js';
import { buildJar, PROJECT_DIR, TEST_JAVA_OPTS, waitFor } from '../support/host.js';
import { LoopbackS3 } from '../support/s3-server.js';
import { LoopbackSsm } from '../support/ssm-server.js';
import { ensureRootfs, Machine, type CommandResult } from './machine.js';

/** The container shares the host's network: ports no other e2e suite uses. */
const PORTS = { nginx: 19780, blue: 19781, green: 19782 };
const SITE = `http://127.0.0.1:${PORTS.nginx}`;
const STACK_NAME = 'Ec2BlueGreen';
/** Modest load: two cores are shared with the JVMs, Nginx and systemd of the container. */
const LOAD = { keepAliveConnections: 8, newConnectionWorkers: 2, slowRequestEvery: 40, slowMs: 500, thinkMs: 5 };
const JARS_INSIDE = '/srv/jars';

let machine: Machine | undefined;
let s3: LoopbackS3 | undefined;
let ssm: LoopbackSsm | undefined;
let load: LoadRun | undefined;
let jars: Record<'v1' | 'v2' | 'v3' | 'v4' | 'v5', string>;
let userData: string;
let signalResource: string;

const inside = (jar: string) => `${JARS_INSIDE}/${jar.split('/').at(-1)}`;

function box(): Machine {
  if (machine === undefined) throw new Error('the container did not boot (see beforeAll)');
  return machine;
}

/** SLOT's recorded release is VERSION and its unit is active: a deploy or a restore started it. */
function slotStarted(slot: 'blue' | 'green', version: string): boolean {
  const m = box();
  return (
    m.exec(['grep', '-qx', `version=${version}`, `/var/lib/bluegreen/state/slot-${slot}.env`]).code === 0 &&
    m.exec(['systemctl', 'is-active', '--quiet', `bluegreen-slot@${slot}.service`]).code === 0
  );
}

function expectOk(what: string, r: CommandResult): void {
  expect(r.code, `${what}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
}

/** `bluegreen ARGS` inside, without blocking the load generator of this process. */
async function engine(args: string[]): Promise<CommandResult> {
  return box().start(['bluegreen', ...args]);
}

async function servedVersion(): Promise<string | undefined> {
  try {
    const res = await fetch(`${SITE}/`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(2000) });
    if (res.status !== 200) return undefined;
    return ((await res.json()) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** The slot Nginx's answering worker names (`X-Bluegreen-Slot` of the engine's own location). */
async function servedSlot(): Promise<string | null> {
  const res = await fetch(`${SITE}/__bluegreen/upstream`, { headers: { connection: 'close' } });
  return res.headers.get('x-bluegreen-slot');
}

async function stopLoad(label: string): Promise<LoadReport> {
  const report = await load!.stop();
  load = undefined;
  console.log(`[systemd: ${label}] ${formatSummary(report)}`);
  return report;
}

function expectNoFailures(report: LoadReport): void {
  expect(report.totals.requests).toBeGreaterThan(100);
  expect(report.failures, JSON.stringify(report.failures, null, 1)).toEqual({});
  expect(report.totals.failed).toBe(0);
  expect(report.totals.resentOk).toBe(report.totals.rawResets);
}

/** The versions that answered requests started between two marks. */
function versionsBetween(report: LoadReport, from: number, to: number): string[] {
  return Object.keys(countVersions(samplesBetween(report, from, to))).sort();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits as waitFor does; when it gives up, the error carries the container's console: what a
 * reboot that went wrong printed (a unit that would not stop, a process the shutdown waited for).
 * Each wait of a reboot test is bounded well inside the test's own timeout, so that a failure
 * says which step hung, not only that the test ran out of time.
 */
async function waitInBox(m: Machine, predicate: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  try {
    await waitFor(predicate, what, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nconsole:\n${m.consoleTail(60)}`);
  }
}

/** The result of a command that a reboot cut off, or an error with the console after `timeoutMs`. */
async function endedWithin(m: Machine, run: Promise<CommandResult>, what: string, timeoutMs: number): Promise<CommandResult> {
  let ended: CommandResult | undefined;
  void run.then((r) => (ended = r));
  await waitInBox(m, () => ended !== undefined, what, timeoutMs);
  return ended!;
}

/** The user data as CloudFormation hands it to the instance: references resolved by name. */
function resolveReferences(text: string, names: Readonly<Record<string, string>>): string {
  return text.replace(/<([A-Za-z0-9:]+)>/g, (match, name: string) => names[name] ?? match);
}

beforeAll(async () => {
  // GIVEN the root file system (built once, cached in .build/systemd) ...
  const rootfs = await ensureRootfs();
  console.log(`[systemd] root file system: ${rootfs.output.trim()} (${(rootfs.ms / 1000).toFixed(1)}s)`);
  jars = {
    v1: buildJar('v1'),
    v2: buildJar('v2'),
    v3: buildJar('v3'),
    // Slow to become healthy: a reboot lands while its deploy waits for it.
    v4: buildJar('v4', { startDelayMs: 30_000 }),
    v5: buildJar('v5'),
  };

  // ... the user data and first release of a stack whose first artifact is v1 ...
  const { template } = synthesize({ artifact: jars.v1, artifactVersion: 'v1' });
  const instance = onlyResource(template, 'AWS::EC2::Instance');
  signalResource = instance.logicalId;
  const firstRelease = resourceById(template, 'AWS::SSM::Parameter', 'HostFirstRelease');
  const names: Record<string, string> = {
    ...TEST_PSEUDO_PARAMETERS,
    'AWS::StackName': STACK_NAME,
    [firstRelease.logicalId]: `${STACK_NAME}-${firstRelease.logicalId}`,
  };
  userData = resolveReferences(renderValue(instance.properties.UserData), names);
  const manifest = resolveReferences(renderValue(firstRelease.properties.Value), names);
  const uri = (key: string) => /^[^=]+=s3:\/\/([^/]+)\/(.+)$/.exec(manifest.split('\n').find((line) => line.startsWith(`${key}=`))!)!;
  const [, bucket, engineKey] = uri('engineUri');
  const [, , artifactKey] = uri('artifactUri');

  // ... S3 holding the engine bundle (assets/instance, zipped as CDK zips a directory asset)
  // and the jar, and SSM the first-release parameter, both on loopback ...
  const work = mkdtempSync(join(tmpdir(), 'bluegreen-systemd-'));
  const bundle = join(work, 'engine.zip');
  const zip = spawnSync('zip', ['-q', '-r', bundle, '.'], { cwd: join(PROJECT_DIR, 'assets', 'instance'), encoding: 'utf8' });
  expect(zip.status, zip.stderr).toBe(0);
  s3 = await LoopbackS3.start({ buckets: [bucket!] });
  const authorization = `AWS4-HMAC-SHA256 Credential=TEST/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0`;
  for (const [key, file] of [
    [engineKey!, bundle],
    [artifactKey!, jars.v1],
  ] as const) {
    const put = await fetch(`${s3.url}/${bucket}/${key}`, { method: 'PUT', body: readFileSync(file), headers: { authorization } });
    expect(put.status).toBe(200);
  }
  ssm = await LoopbackSsm.start({ documents: {}, environment: {}, parameters: { [names[firstRelease.logicalId]!]: manifest } });

  // ... and what the test changes: the site's port (the container shares the host's network,
  // where 80 is not ours) and, in the operator's configuration that the first boot keeps, the
  // ports, small JVMs and no bake (the bake has its own tests).
  const bootDir = join(work, 'boot');
  mkdirSync(bootDir);
  writeFileSync(join(bootDir, 'user-data.sh'), userData.replace("readonly SITE_PORT='80'", `readonly SITE_PORT='${PORTS.nginx}'`));
  writeFileSync(
    join(bootDir, 'bluegreen.conf'),
    readFileSync(join(PROJECT_DIR, 'assets', 'instance', 'etc', 'bluegreen.conf'), 'utf8') +
      [
        '# test/systemd: ports of the shared network, small JVMs, no bake',
        `BLUEGREEN_NGINX_LISTEN=${PORTS.nginx}`,
        `BLUEGREEN_BLUE_PORT=${PORTS.blue}`,
        `BLUEGREEN_GREEN_PORT=${PORTS.green}`,
        `BLUEGREEN_JAVA_OPTS=-XX:+ExitOnOutOfMemoryError ${TEST_JAVA_OPTS}`,
        'BLUEGREEN_BAKE_SECONDS=0',
        '',
      ].join('\n'),
  );

  // WHEN the container boots
  const booted = await Machine.boot({
    name: 'systemd-e2e',
    rootfs: rootfs.rootfs,
    binds: [
      `${join(PROJECT_DIR, 'test', 'systemd')}:/opt/bluegreen-test`,
      `${join(PROJECT_DIR, 'test', 'support', 'bin', 'aws')}:/usr/local/bin/aws`,
      `${bootDir}:/opt/bluegreen-boot`,
      `${join(PROJECT_DIR, '.build', 'jars')}:${JARS_INSIDE}`,
    ],
    env: { LOOPBACK_S3_URL: s3.url, LOOPBACK_SSM_URL: ssm.url },
  });
  machine = booted.machine;
  console.log(`[systemd] container booted to '${booted.state}' in ${(booted.ms / 1000).toFixed(2)}s`);
  expect(booted.state).toBe('running');

  // ... with a service that takes 1.5 s to stop, as an instance's agents and daemons do: this
  // container has none, and shuts down in 0.2 s, sooner than a deploy can see that its slot was
  // stopped and say so before systemd-shutdown sends SIGTERM to what is left.
  machine.run([
    'sh',
    '-c',
    "printf '[Unit]\\nDescription=test: a service slow to stop\\n[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\nExecStop=/bin/sleep 1.5\\n[Install]\\nWantedBy=multi-user.target\\n' >/etc/systemd/system/slow-stop.service && systemctl enable --now --quiet slow-stop.service",
  ]);
}, 900_000);

afterAll(async () => {
  await load?.stop();
  machine?.destroy();
  await s3?.close();
  await ssm?.close();
});

describe('a host with systemd as PID 1', () => {
  test('the first boot, from the user data the stack synthesized, installs the engine, its unit and Nginx, deploys the first release, checks the site and signals success', async () => {
    const m = box();
    m.run(['install', '-D', '-m', '0644', '/opt/bluegreen-boot/bluegreen.conf', HOST_PATHS.configFile]);

    // WHEN every step of main runs, the Amazon Linux ones as Debian's (not blocking this
    // process, whose stand-ins answer its AWS calls)
    const boot = await m.start([
      'bash',
      '-c',
      'source /opt/bluegreen-boot/user-data.sh && source /opt/bluegreen-test/debian-platform.sh && main',
    ]);

    // THEN it signalled success after the site check through the container's Nginx
    expectOk('first boot', boot);
    console.log(`[systemd] first boot took ${(boot.ms / 1000).toFixed(1)}s`);
    expect(boot.stdout).toContain(`Nginx on port ${PORTS.nginx} serves the app (HTTP 200)`);
    expect(m.readFile('/var/log/cfn-signal.log').trim().split('\n')).toEqual([
      [
        '--exit-code', '0',
        '--reason', 'serving version v1 through Nginx; Jenkins configured as code',
        '--stack', STACK_NAME,
        '--resource', signalResource,
        '--region', 'us-east-1',
      ].join('\t'),
    ]);
    expect(s3!.requests.filter((r) => r.startsWith('GET ')).length).toBe(2);
    expect(ssm!.operations).toContain('GetParameter');

    // AND systemd runs the slot as its unprivileged user, and Nginx, both enabled for the next boot
    expect(m.run(['systemctl', 'is-enabled', 'nginx.service', 'bluegreen-slot@blue.service']).trim().split('\n')).toEqual(['enabled', 'enabled']);
    const pid = m.unitProperty('bluegreen-slot@blue.service', 'MainPID');
    expect(m.run(['ps', '-o', 'user:20=,args=', '-p', pid])).toMatch(/^bluegreen +java .* -jar \/var\/lib\/bluegreen\/releases\/.*--server\.port=19781 /);
    const status = m.status();
    expect(status.live).toBe('blue');
    expect(status.slots.blue).toMatchObject({ version: 'v1', running: true, healthy: true, pid: Number(pid) });
  });

  test('deploy, rollback and deploy again under load through the container\'s Nginx: no request fails, each answered by the slot just made live', async () => {
    const m = box();
    expect(await servedVersion()).toBe('v1');
    load = startLoad({ baseUrl: SITE, ...LOAD });
    await sleep(1500);
    const steps: Array<[string, string[], string]> = [
      ['deploy v2', ['deploy', inside(jars.v2), '--version', 'v2'], 'v2'],
      ['rollback', ['rollback'], 'v1'],
      ['deploy v3', ['deploy', inside(jars.v3), '--version', 'v3'], 'v3'],
    ];
    const windows: Array<[string, number, number]> = [];
    for (const [label, args, version] of steps) {
      const result = await engine(args);
      expectOk(label, result);
      const done = load.mark(`${label} done`);
      await sleep(2000);
      windows.push([version, done, load.mark(`${label} window end`)]);
    }
    const report = await stopLoad('deploy, rollback, deploy');

    expectNoFailures(report);
    for (const [version, from, to] of windows) expect(versionsBetween(report, from, to)).toEqual([version]);

    // The slots are units: v3 live on green, v1 the warm standby on blue, both enabled.
    const status = m.status();
    expect(status.live).toBe('green');
    expect(status.slots.green).toMatchObject({ version: 'v3', role: 'live', running: true, healthy: true });
    expect(status.slots.blue).toMatchObject({ version: 'v1', role: 'standby', running: true, healthy: true });
    expect(m.run(['systemctl', 'is-enabled', 'bluegreen-slot@blue.service', 'bluegreen-slot@green.service']).trim().split('\n')).toEqual(['enabled', 'enabled']);
  });

  test('kill -9 of the live slot\'s JVM: systemd starts it again, and status shows the new process live and healthy', async () => {
    const m = box();
    const unit = 'bluegreen-slot@green.service';
    const before = Number(m.unitProperty(unit, 'MainPID'));
    expect(before).toBeGreaterThan(0);

    m.run(['kill', '-KILL', String(before)]);

    const started = performance.now();
    await waitFor(
      () => {
        const pid = Number(m.unitProperty(unit, 'MainPID'));
        return pid > 0 && pid !== before && m.status().slots.green.healthy;
      },
      'systemd to restart the killed slot and the app to be healthy again',
      60_000,
    );
    console.log(`[systemd] live JVM killed: healthy again after ${((performance.now() - started) / 1000).toFixed(1)}s`);
    expect(m.unitProperty(unit, 'NRestarts')).toBe('1');
    const status = m.status();
    expect(status.live).toBe('green');
    expect(status.slots.green).toMatchObject({ version: 'v3', role: 'live', running: true, healthy: true });
    expect(status.slots.green.pid).not.toBe(before);
    expect(status.slots.green.pid).toBe(Number(m.unitProperty(unit, 'MainPID')));
    expect(await servedVersion()).toBe('v3');
  });

  test('Nginx restarted by systemd (not reloaded) under load: the new Nginx reads the live include and serves only the live slot', async () => {
    const m = box();
    const masterBefore = m.unitProperty('nginx.service', 'MainPID');
    load = startLoad({ baseUrl: SITE, ...LOAD });
    await sleep(1500);

    m.run(['systemctl', 'restart', 'nginx.service']);
    const restarted = load.mark('nginx restarted');
    await sleep(2500);
    const report = await stopLoad('nginx restart');

    expect(m.unitProperty('nginx.service', 'MainPID')).not.toBe(masterBefore);
    expect(m.readFile('/etc/nginx/bluegreen/live-upstream.conf')).toContain('# live=green\n');
    expect(await servedSlot()).toBe('green');
    const after = samplesBetween(report, restarted, Number.POSITIVE_INFINITY);
    expect(after.length).toBeGreaterThan(50);
    expect(Object.keys(countVersions(after))).toEqual(['v3']);
    expect(after.every((sample) => sample.ok)).toBe(true);
  });

  test('a reboot: Nginx serves the same live slot and version without any command, the warm standby comes back, both units enabled', async () => {
    const m = box();
    const before = m.status();
    expect(before.live).toBe('green');
    const exits = m.exits().length;

    // WHEN the host reboots
    const rebootAt = performance.now();
    m.run(['systemctl', '--no-block', 'reboot']);
    let bootAt = 0;
    let firstVersion: string | undefined;
    await waitFor(
      async () => {
        if (bootAt === 0 && m.exits().length > exits) bootAt = performance.now();
        if (bootAt === 0) return false;
        firstVersion = await servedVersion();
        return firstVersion !== undefined;
      },
      'the site to answer after the reboot',
      120_000,
    );
    const servedAt = performance.now();
    console.log(
      `[systemd] reboot: first successful request ${((servedAt - bootAt) / 1000).toFixed(2)}s after the new boot began ` +
        `(${((servedAt - rebootAt) / 1000).toFixed(2)}s after 'systemctl reboot')`,
    );

    // THEN the live version answers with no command run since the boot. Both units start at
    // once; until the live JVM listens, Nginx may send a request to the warm standby (its
    // `backup` server, the same rule that covers a crashed live app), so the first answer is the
    // live version or the standby's, and once the live one answers, only it does.
    expect(m.exits().slice(exits)).toEqual(['133']);
    expect(['v3', 'v1']).toContain(firstVersion);
    let liveAt = 0;
    await waitFor(async () => (await servedVersion()) === 'v3' && (liveAt = performance.now()) > 0, 'the live version to answer after the reboot', 60_000);
    console.log(
      `[systemd] reboot: first answer ${firstVersion}; the live version v3 answered ${((liveAt - bootAt) / 1000).toFixed(2)}s after the new boot began`,
    );
    const afterLive: Array<string | undefined> = [];
    for (let i = 0; i < 20; i++) afterLive.push(await servedVersion());
    expect(afterLive).toEqual(Array(20).fill('v3'));
    expect(await servedSlot()).toBe('green');
    expect(m.waitBooted()).toBe('running');
    await waitFor(() => m.status().slots.blue.healthy, 'the warm standby to be healthy again', 60_000);
    const after = m.status();
    expect(after.live).toBe(before.live);
    expect(after.slots.green).toMatchObject({ version: 'v3', role: 'live', running: true, healthy: true });
    expect(after.slots.blue).toMatchObject({ version: 'v1', role: 'standby', running: true, healthy: true });
    expect(m.run(['systemctl', 'is-enabled', 'nginx.service', 'bluegreen-slot@blue.service', 'bluegreen-slot@green.service']).trim().split('\n')).toEqual([
      'enabled',
      'enabled',
      'enabled',
    ]);
  });

  test('a deploy interrupted by a reboot: after the boot the site serves the previous release, and the next deploy works', async () => {
    const m = box();
    const exits = m.exits().length;

    // GIVEN a deploy of v4, which takes 30 s to become healthy, waiting for it on blue
    const deploy = engine(['deploy', inside(jars.v4), '--version', 'v4']);
    await waitInBox(m, () => slotStarted('blue', 'v4'), 'the deploy of v4 to start blue', 30_000);

    // WHEN the host reboots under it
    m.run(['systemctl', '--no-block', 'reboot']);
    const interrupted = await endedWithin(m, deploy, 'the deploy to end after the reboot began', 30_000);
    console.log(`[systemd] the deploy the reboot interrupted (exit ${interrupted.code}):\n${interrupted.stdout}${interrupted.stderr}`);
    expect(interrupted.stdout).toContain('waiting up to 120s for /actuator/health');
    expect(interrupted.stdout).not.toContain('pointing Nginx at');
    // It tells what happened: the reboot stopped the new release, which was not found broken.
    expect(interrupted.code, interrupted.stderr).toBe(EXIT_CODES.unexpected);
    expect(interrupted.stderr).toContain('the host began to shut down while blue started, and systemd stopped it: the release was not judged');
    expect(interrupted.stderr).not.toContain('fix the app');
    // Putting the standby back would start a unit during the shutdown: that waits for the boot.
    expect(interrupted.stderr).toContain('the warm standby on blue is not put back now');
    await waitInBox(m, () => m.exits().length > exits, 'the container to reboot', 30_000);
    let firstVersion: string | undefined;
    await waitInBox(m, async () => (firstVersion = await servedVersion()) !== undefined, 'the site to answer after the reboot', 30_000);

    // THEN it serves the previous release
    expect(firstVersion).toBe('v3');
    expect(m.waitBooted()).toBe('running');
    expect(m.status().live).toBe('green');

    // AND the next deploy works, and is served
    const next = await engine(['deploy', inside(jars.v5), '--version', 'v5']);
    expectOk('the deploy after the reboot', next);
    expect(next.stdout).toContain('putting blue back as it was before the deploy: v1, running');
    const status = m.status();
    expect(status.live).toBe('blue');
    expect(status.slots.blue).toMatchObject({ version: 'v5', role: 'live', running: true, healthy: true });
    expect(status.slots.green).toMatchObject({ version: 'v3', role: 'standby', running: true, healthy: true });
    expect(await servedVersion()).toBe('v5');
    const history = JSON.parse(m.run(['bluegreen', 'history', '--json'])) as Array<{ action: string; version: string; result: string; message: string }>;
    const v4 = history.filter((entry) => entry.action === 'deploy' && entry.version === 'v4').map((entry) => `${entry.result}: ${entry.message}`);
    expect(v4).toEqual([expect.stringMatching(/^failed: the host began to shut down while blue started/)]);
  });

  test("the slots' logs: the unit's log writer runs as the slot user beside the app, logrotate rotates with the installed configuration and the right owner, and a stop keeps the app's last line", async () => {
    const m = box();
    const unit = 'bluegreen-slot@green.service';
    const log = '/var/log/bluegreen/green.log';
    const conf = '/etc/bluegreen/logrotate.conf';

    // The app is the unit's main process; its only child is the writer, the slot user's too,
    // holding its pipe, the journal and the log file, nothing of the engine's.
    const app = m.unitProperty(unit, 'MainPID');
    const children = m.run(['ps', '-o', 'pid=,user:20=,args=', '--ppid', app]).trim().split('\n');
    expect(children).toHaveLength(1);
    expect(children[0]).toMatch(/^\d+ bluegreen +\/usr\/bin\/python3 -I -S \/usr\/local\/lib\/bluegreen\/lib\/log-writer\.py \/var\/log\/bluegreen\/green\.log$/);
    const writer = children[0]!.split(' ')[0]!;
    const fds = m.run(['bash', '-c', `for f in /proc/${writer}/fd/*; do printf '%s %s\\n' "\${f##*/}" "$(readlink "$f")"; done`]).trim().split('\n');
    expect(fds.map((l) => l.replace(/\[\d+\]$/, ''))).toEqual(['0 pipe:', '1 socket:', '2 socket:', `3 ${log}`]);

    // The directory stays root's, and the slot user may only enter it; the files are that user's.
    expect(m.run(['stat', '-c', '%U:%G %a', '/var/log/bluegreen', log, conf]).trim().split('\n')).toEqual(['root:bluegreen 750', 'bluegreen:bluegreen 600', 'root:root 644']);
    expect(m.run(['systemctl', 'is-enabled', 'bluegreen-logrotate.timer']).trim()).toBe('enabled');
    expect(m.run(['systemctl', 'is-active', 'bluegreen-logrotate.timer']).trim()).toBe('active');
    // logrotate accepts the directory and the configuration as they are (a dry run says why not).
    const dry = m.exec(['logrotate', '-d', '--state', '/tmp/dry-run.status', conf]);
    expectOk('logrotate -d', dry);
    expect(`${dry.stdout}${dry.stderr}`).not.toMatch(/error|skipping|insecure/i);
    // The timer's service runs (nothing is due yet: the files are young and small).
    expectOk('the rotation service', m.exec(['systemctl', 'start', 'bluegreen-logrotate.service']));

    // WHEN logrotate rotates with the installed configuration (forced: nothing is due yet)
    const before = m.readFile(log);
    expectOk('logrotate -f', m.exec(['logrotate', '-f', '--state', '/var/lib/bluegreen-logrotate/status', conf]));
    expect(m.run(['stat', '-c', '%U:%G %a', log]).trim()).toBe('bluegreen:bluegreen 600');
    expect(m.readFile(`${log}.1`)).toBe(before);
    expect(m.readFile(log)).toBe('');

    // AND the slot is stopped: its shutdown lines reach the new file, the last one included
    m.run(['systemctl', 'stop', unit]);
    expect(m.exec(['kill', '-0', writer]).code).not.toBe(0);
    const after = m.readFile(log);
    expect(after).toContain(' : Stopping SampleApp: waiting for ');
    expect(after).toMatch(/ : Stopped SampleApp\n$/);
    expect(m.readFile(`${log}.1`)).toBe(before);
    console.log(`[systemd] log writer ${writer}: rotated, then the stop's lines in the new file:\n${after}`);

    // The standby again, as the engine had it.
    m.run(['systemctl', 'start', unit]);
    await waitFor(() => m.status().slots.green.healthy, 'the standby to be healthy again', 60_000);
  });

  test('a reboot while the next deploy puts the warm standby back: the deploy stops there and says so, systemd starts the standby at the boot, and the deploy after that works', async () => {
    const m = box();
    expect(m.status()).toMatchObject({ live: 'blue', slots: { green: { version: 'v3', role: 'standby', healthy: true } } });

    // GIVEN a deploy that a reboot interrupted, which left green's warm standby (v3) to put back
    let exits = m.exits().length;
    const first = engine(['deploy', inside(jars.v4), '--version', 'v4']);
    await waitInBox(m, () => slotStarted('green', 'v4'), 'the deploy of v4 to start green', 30_000);
    m.run(['systemctl', '--no-block', 'reboot']);
    const cut = await endedWithin(m, first, 'the first deploy to end after the reboot began', 30_000);
    expect(cut.code, cut.stderr).toBe(EXIT_CODES.unexpected);
    expect(cut.stderr).toContain('the warm standby on green is not put back now');
    await waitInBox(m, () => m.exits().length > exits, 'the container to reboot', 30_000);
    await waitInBox(m, async () => (await servedVersion()) === 'v5', 'the site to answer after the reboot', 30_000);
    m.waitBooted();
    expect(m.exec(['test', '-f', '/var/lib/bluegreen/state/slot-green.standby']).code).toBe(0);

    // ... and apps that answer DOWN for 20 s after they start, so that the next deploy is still
    // waiting for the standby it puts back when the host reboots again
    const conf = '/etc/bluegreen/bluegreen.conf';
    m.run(['sh', '-c', `cp -p ${conf} ${conf}.before && echo BLUEGREEN_APP_ARGS=--bluegreen.ready-delay-ms=20000 >>${conf}`]);
    exits = m.exits().length;
    const next = engine(['deploy', inside(jars.v2), '--version', 'v2']);
    // (until the app itself runs with that argument, the unit may not have read the file yet)
    const slowStandby = () =>
      slotStarted('green', 'v3') &&
      m.exec(['sh', '-c', 'tr "\\0" " " </proc/$(systemctl show -p MainPID --value bluegreen-slot@green.service)/cmdline | grep -q -- --bluegreen.ready-delay-ms=20000']).code === 0;
    await waitInBox(m, slowStandby, 'the next deploy to start the standby v3 on green, slow to be ready', 30_000);
    m.run(['mv', `${conf}.before`, conf]);

    // WHEN the host reboots while that deploy waits for the standby to be healthy
    m.run(['systemctl', '--no-block', 'reboot']);
    const stopped = await endedWithin(m, next, 'the next deploy to end after the reboot began', 30_000);
    console.log(`[systemd] the deploy whose standby the reboot interrupted (exit ${stopped.code}):\n${stopped.stdout}${stopped.stderr}`);

    // THEN that deploy stopped there, and said why and what the boot does
    expect(stopped.code, stopped.stderr).toBe(EXIT_CODES.unexpected);
    expect(stopped.stdout).toContain('putting green back as it was before the deploy: v3, running');
    expect(stopped.stdout).not.toContain('artifact');
    expect(stopped.stderr).toContain('The host began to shut down while the warm standby green (v3) started, and systemd stopped it: systemd starts it again at the boot');
    expect(stopped.stderr).toContain('Nothing else was changed: blue (v5) keeps serving, after the boot too. Run the deploy again once the host is back up.');

    // AND after the boot the live release serves, and systemd has started the standby
    await waitInBox(m, () => m.exits().length > exits, 'the container to reboot', 30_000);
    await waitInBox(m, async () => (await servedVersion()) === 'v5', 'the site to answer after the reboot', 30_000);
    expect(m.waitBooted()).toBe('running');
    await waitInBox(m, () => m.status().slots.green.healthy, 'systemd to start the standby at the boot', 30_000);
    expect(m.status().slots.green).toMatchObject({ version: 'v3', role: 'standby', running: true, healthy: true });

    // AND the deploy after that checks the standby, replaces it and goes live
    const again = await engine(['deploy', inside(jars.v2), '--version', 'v2']);
    expectOk('the deploy after the second reboot', again);
    expect(again.stdout).toContain('standby  green still holds v3 as before.');
    expect(again.stdout).not.toContain('putting green back');
    expect(m.exec(['test', '-e', '/var/lib/bluegreen/state/slot-green.standby']).code).not.toBe(0);
    expect(m.status()).toMatchObject({ live: 'green', slots: { green: { version: 'v2', role: 'live' }, blue: { version: 'v5', role: 'standby', healthy: true } } });
    expect(await servedVersion()).toBe('v2');
    const history = JSON.parse(m.run(['bluegreen', 'history', '--json'])) as Array<{ action: string; version: string; result: string; message: string }>;
    expect(history.slice(-3).map((entry) => `${entry.version} ${entry.result}: ${entry.message}`)).toEqual([
      expect.stringMatching(/^v4 failed: the host began to shut down while green started, and systemd stopped it/),
      expect.stringMatching(/^v2 failed: The host began to shut down while the warm standby green \(v3\) started/),
      expect.stringMatching(/^v2 ok: v2 is live on green/),
    ]);
  });
});
