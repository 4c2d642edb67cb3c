/**
 * The sample app (`assets/sample-app/`): builds real jars with the build script and runs them
 * with `java -jar` on loopback ports 18900-18999 (reserved for this suite).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = join(ROOT, 'assets/sample-app/build');
const VERSION = '1.2.3-test';
const HOST = '127.0.0.1';
const FIRST_PORT = 18900;
const LAST_PORT = 18999;
/** Less JIT work per JVM: several of them start during this suite on a small machine. */
const JVM_OPTS = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];
const STARTED = /Started SampleApp in (\d+\.\d{3}) seconds \(process running for (\d+\.\d{3})\)/;
const READY = /^(\S+) .*Application availability state ReadinessState changed to ACCEPTING_TRAFFIC$/m;
const ISO_PREFIX = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2}) /;

let workDir = '';
const apps: App[] = [];

// ------------------------------------------------------------------------------------------
// Helpers

interface BuildResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function buildSync(args: string[]): BuildResult {
  // In the work dir: a relative --out never lands in the repository.
  const r = spawnSync(BUILD, args, { cwd: workDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the build script without blocking, so that several jars build at once. */
function build(args: string[]): Promise<BuildResult> {
  return new Promise((resolveBuild, reject) => {
    const proc = spawn(BUILD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('error', reject);
    proc.on('close', (status) => resolveBuild({ status, stdout, stderr }));
  });
}

async function buildJar(name: string, extra: string[] = []): Promise<string> {
  const out = join(workDir, `${name}.jar`);
  const r = await build(['--version', VERSION, '--out', out, ...extra]);
  if (r.status !== 0) throw new Error(`build of ${name} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return out;
}

let nextPort = FIRST_PORT;

/** A port of the reserved range that is free now; never hands out the same port twice. */
async function freePort(): Promise<number> {
  while (nextPort <= LAST_PORT) {
    const port = nextPort++;
    const free = await new Promise<boolean>((res) => {
      const srv = net.createServer();
      srv.once('error', () => res(false));
      srv.listen(port, HOST, () => srv.close(() => res(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port in ${FIRST_PORT}-${LAST_PORT}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = net.connect(port, HOST);
    socket.once('connect', () => {
      socket.destroy();
      res(true);
    });
    socket.once('error', () => res(false));
  });
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() when the process ended. */
  at: number;
}

interface App {
  proc: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<Exit>;
  exit: Exit | null;
}

function startApp(jar: string, port: number, args: string[] = []): App {
  const proc = spawn(
    'java',
    [...JVM_OPTS, '-jar', jar, `--server.port=${port}`, `--server.address=${HOST}`, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const app: App = {
    proc,
    port,
    output: () => output,
    exit: null,
    exited: new Promise<Exit>((res) => {
      proc.on('exit', (code, signal) => {
        app.exit = { code, signal, at: performance.now() };
        res(app.exit);
      });
    }),
  };
  apps.push(app);
  return app;
}

async function waitFor<T>(what: string, app: App, check: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (app.exit) throw new Error(`app exited (${app.exit.code}) before ${what}:\n${app.output()}`);
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${app.output()}`);
    await sleep(5);
  }
}

function waitForLine(app: App, pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> {
  return waitFor(`a line matching ${pattern}`, app, () => app.output().match(pattern) ?? undefined, timeoutMs);
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/** Waits for the exit with a deadline, so that a hung JVM fails the test instead of the suite. */
async function exitWithin(app: App, ms: number): Promise<Exit> {
  const timeout = sleep(ms).then(() => null);
  const exit = await Promise.race([app.exited, timeout]);
  if (!exit) throw new Error(`app did not exit within ${ms} ms:\n${app.output()}`);
  return exit;
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

function request(
  port: number,
  path: string,
  opts: { method?: string; body?: Buffer; agent?: http.Agent } = {},
): Promise<Response> {
  return new Promise((res, reject) => {
    const req = http.request(
      { host: HOST, port, path, method: opts.method ?? 'GET', agent: opts.agent ?? false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () =>
          res({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            reusedSocket: req.reusedSocket,
          }),
        );
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

// ------------------------------------------------------------------------------------------

const jars = { normal: '', neverHealthy: '', exitAtOnce: '', errorRate: '', dieAfter: '', readyDelay: '' };

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'sample-app-test-'));
  // One javac per jar; building them side by side halves the wait on two cores.
  [jars.normal, jars.neverHealthy, jars.exitAtOnce, jars.errorRate, jars.dieAfter, jars.readyDelay] = await Promise.all([
    buildJar('normal'),
    buildJar('never-healthy', ['--behaviour', 'never-healthy']),
    buildJar('exit-at-once', ['--behaviour=exit-at-once']),
    buildJar('error-rate', ['--behaviour', 'error-rate:0.25']),
    buildJar('die-after', ['--behaviour', 'die-after-ms:300', '--start-delay-ms', '200']),
    buildJar('ready-delay', ['--ready-delay-ms', '700']),
  ]);
});

afterAll(() => {
  for (const app of apps) {
    if (!app.exit) app.proc.kill('SIGKILL');
  }
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('sample app, normal build', () => {
  let app: App;
  let listeningDuringDelay: boolean;

  beforeAll(async () => {
    const port = await freePort();
    // The runtime argument overrides the baked start delay (0 in this jar).
    app = startApp(jars.normal, port, ['--spring.profiles.active=blue', '--bluegreen.start-delay-ms=400', '--unknown.option=x']);
    await waitForLine(app, /Starting SampleApp/);
    listeningDuringDelay = await canConnect(port);
    await waitForLine(app, STARTED);
  });

  it('serves / with version, profile, port and pid', async () => {
    const r = await request(app.port, '/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
    expect(JSON.parse(r.body)).toEqual({
      app: 'bluegreen-sample',
      version: VERSION,
      profile: 'blue',
      port: app.port,
      pid: app.proc.pid,
    });
  });

  it('serves /profile as plain text and /actuator/health as UP', async () => {
    const profile = await request(app.port, '/profile');
    expect(profile.status).toBe(200);
    expect(profile.headers['content-type']).toMatch(/^text\/plain/);
    expect(profile.body).toBe('blue');

    const health = await request(app.port, '/actuator/health');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'UP' });
  });

  it('answers 404 to unknown paths and 405 to wrong methods, as JSON', async () => {
    const notFound = await request(app.port, '/nope');
    expect(notFound.status).toBe(404);
    expect(JSON.parse(notFound.body)).toMatchObject({ status: 404, path: '/nope' });

    const wrongMethod = await request(app.port, '/echo');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('POST');
  });

  it('keeps connections alive', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await request(app.port, '/', { agent });
      const second = await request(app.port, '/actuator/health', { agent });
      expect([first.status, second.status]).toEqual([200, 200]);
      expect(second.reusedSocket).toBe(true);
      // Without TCP_NODELAY each keep-alive response waits ~40 ms for a delayed ACK (2.3 s here).
      const t0 = performance.now();
      for (let i = 0; i < 50; i++) expect((await request(app.port, '/', { agent })).status).toBe(200);
      expect(performance.now() - t0).toBeLessThan(1200);
    } finally {
      agent.destroy();
    }
  });

  it('serves slow requests concurrently', async () => {
    const t0 = performance.now();
    const [a, b] = await Promise.all([request(app.port, '/slow?ms=1000'), request(app.port, '/slow?ms=1000')]);
    const elapsed = performance.now() - t0;
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(JSON.parse(a.body)).toMatchObject({ version: VERSION, sleptMs: 1000 });
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(1800);
  });

  it('hashes the body it is sent on /echo', async () => {
    const body = randomBytes(300_000);
    const r = await request(app.port, '/echo', { method: 'POST', body });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({
      version: VERSION,
      profile: 'blue',
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
  });

  it('logs Spring Boot style lines and binds the port only at the end of startup', () => {
    const lines = app.output().trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(ISO_PREFIX);
    expect(app.output()).toMatch(new RegExp(`Starting SampleApp v${VERSION} using Java \\d+\\S* with PID ${app.proc.pid} \\(profile blue\\)`));
    const [, startedIn, runningFor] = app.output().match(STARTED)!;
    // "in" counts from main(), so it includes the 400 ms start delay; "running for" counts from JVM start.
    expect(Number(startedIn)).toBeGreaterThanOrEqual(0.4);
    expect(Number(runningFor)).toBeGreaterThanOrEqual(Number(startedIn));
    expect(listeningDuringDelay).toBe(false);
    // Ready at once (no ready delay): Spring Boot's readiness line right after the Started line.
    expect(app.output().indexOf('ACCEPTING_TRAFFIC')).toBeGreaterThan(app.output().search(STARTED));
  });

  it('fails to start, like Spring Boot, on a port that is already in use', async () => {
    const second = startApp(jars.normal, app.port);
    const exit = await exitWithin(second, 15_000);
    expect(exit.code).toBe(1);
    expect(second.output()).toContain('APPLICATION FAILED TO START');
    expect(second.output()).toContain(`Port ${app.port} was already in use`);
  });

  // Last in this block: it stops the app.
  it('stops at once on SIGTERM when idle, with status 0', async () => {
    const t0 = performance.now();
    app.proc.kill('SIGTERM');
    const exit = await exitWithin(app, 5_000);
    const stopMs = exit.at - t0;
    expect(exit.code).toBe(0);
    expect(stopMs).toBeLessThan(600);
    expect(app.output()).toContain('Stopping SampleApp: waiting for 0 in-flight request(s)');
    expect(app.output()).toContain('Stopped SampleApp');
    console.log(`sample app: idle SIGTERM stop took ${stopMs.toFixed(0)} ms`);
  });
});

describe('sample app, graceful shutdown', () => {
  it('finishes an in-flight request on SIGTERM, reports DOWN meanwhile, then exits 0', async () => {
    const app = startApp(jars.normal, await freePort());
    const [, startedIn, runningFor] = await waitForLine(app, STARTED);
    console.log(`sample app: started in ${startedIn} s (process running for ${runningFor} s)`);

    const slow = request(app.port, '/slow?ms=1000');
    await sleep(250); // the request is in the handler by now
    app.proc.kill('SIGTERM');
    await waitForLine(app, /Stopping SampleApp: waiting for 1 in-flight request\(s\)/, 5_000);

    const health = await request(app.port, '/actuator/health');
    expect(health.status).toBe(503);
    expect(JSON.parse(health.body)).toEqual({ status: 'DOWN' });
    expect(app.exit).toBeNull();

    const r = await slow;
    const answeredAt = performance.now();
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ version: VERSION, sleptMs: 1000 });

    const exit = await exitWithin(app, 5_000);
    expect(exit.code).toBe(0);
    expect(exit.at - answeredAt).toBeLessThan(500);
    expect(app.output()).toContain('Stopped SampleApp');
  });
});

describe('sample app, ready delay', () => {
  interface Poll {
    status: number;
    body: string;
  }

  /** Polls health from the moment the port accepts connections until it has answered 200 for a while. */
  async function healthFromPortOpen(app: App): Promise<Poll[]> {
    const deadline = performance.now() + 15_000;
    while (!(await canConnect(app.port))) {
      if (app.exit || performance.now() > deadline) throw new Error(`the port never opened:\n${app.output()}`);
      await sleep(5);
    }
    const polls: Poll[] = [];
    let upSince: number | undefined;
    while (upSince === undefined || performance.now() - upSince < 200) {
      if (performance.now() > deadline) throw new Error(`health never came UP:\n${app.output()}`);
      const r = await request(app.port, '/actuator/health');
      polls.push({ status: r.status, body: r.body });
      if (r.status === 200) upSince ??= performance.now();
      await sleep(20);
    }
    return polls;
  }

  /** Milliseconds between the log line "Web server started" (the port opening) and the readiness line. */
  function portOpenToReadyMs(output: string): number {
    const opened = /^(\S+) .*Web server started on port/m.exec(output);
    const ready = READY.exec(output);
    expect(opened, output).not.toBeNull();
    expect(ready, output).not.toBeNull();
    return Date.parse(ready![1]!) - Date.parse(opened![1]!);
  }

  it.each([
    ['baked into the jar with --ready-delay-ms 700', () => jars.readyDelay, [] as string[]],
    ['set at run time with --bluegreen.ready-delay-ms=700', () => jars.normal, ['--bluegreen.ready-delay-ms=700']],
  ])('health is 503 DOWN after the port opens until the ready delay (%s) has passed, then 200 UP', async (_how, jar, args) => {
    const app = startApp(jar(), await freePort(), args);
    const polls = await healthFromPortOpen(app);
    const firstUp = polls.findIndex((p) => p.status === 200);
    const down = polls.slice(0, firstUp);
    // At 20 ms a poll, 700 ms of DOWN is many polls even on a slow machine; 3 leaves room for a busy one.
    expect(down.length).toBeGreaterThanOrEqual(3);
    for (const p of down) expect(p).toEqual({ status: 503, body: '{"status":"DOWN"}' });
    for (const p of polls.slice(firstUp)) expect(p).toEqual({ status: 200, body: '{"status":"UP"}' });
    // The app's own timeline: the Started line at port open, the readiness line 700 ms later.
    expect(app.output()).toMatch(STARTED);
    expect(app.output()).toContain('Readiness is REFUSING_TRAFFIC for 700 ms');
    expect(portOpenToReadyMs(app.output())).toBeGreaterThanOrEqual(700);
    app.proc.kill('SIGTERM');
    expect((await exitWithin(app, 5_000)).code).toBe(0);
  });

  it('refuses a bad ready delay like the other settings: APPLICATION FAILED TO START, exit 1', async () => {
    const app = startApp(jars.normal, await freePort(), ['--bluegreen.ready-delay-ms=soon']);
    const exit = await exitWithin(app, 15_000);
    expect(exit.code).toBe(1);
    expect(app.output()).toContain(
      "APPLICATION FAILED TO START: invalid bluegreen.ready-delay-ms 'soon': expected a whole number from 0 to 3600000",
    );
    expect(app.output()).not.toContain('Web server started');
  });
});

describe('sample app, bad releases', () => {
  it('exit-at-once: exits 1 without ever listening', async () => {
    const app = startApp(jars.exitAtOnce, await freePort());
    const exit = await exitWithin(app, 15_000);
    expect(exit.code).toBe(1);
    expect(app.output()).toContain('APPLICATION FAILED TO START');
    expect(app.output()).not.toContain('Web server started');
    expect(await canConnect(app.port)).toBe(false);
  });

  it('never-healthy: serves requests but /actuator/health stays 503 DOWN', async () => {
    const app = startApp(jars.neverHealthy, await freePort());
    await waitForLine(app, /Web server started on port/);
    expect((await request(app.port, '/')).status).toBe(200);
    const health = await request(app.port, '/actuator/health');
    expect(health.status).toBe(503);
    expect(JSON.parse(health.body)).toEqual({ status: 'DOWN' });
    expect(app.output()).not.toMatch(STARTED);
    app.proc.kill('SIGTERM');
    expect((await exitWithin(app, 5_000)).code).toBe(0);
  });

  it('error-rate:0.25: healthy, but exactly every 4th request to / and /echo answers 500', async () => {
    const app = startApp(jars.errorRate, await freePort());
    await waitForLine(app, STARTED);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r =
        i % 2 === 0
          ? await request(app.port, '/')
          : await request(app.port, '/echo', { method: 'POST', body: Buffer.from('x') });
      statuses.push(r.status);
      expect((await request(app.port, '/actuator/health')).status).toBe(200);
    }
    const failed = statuses.flatMap((s, i) => (s === 500 ? [i + 1] : []));
    expect(failed).toEqual([4, 8, 12, 16, 20]);
    expect(statuses.filter((s) => s !== 500 && s !== 200)).toEqual([]);
  });

  it('die-after-ms:300 (baked start delay 200 ms): healthy, then the JVM halts with status 1', async () => {
    const app = startApp(jars.dieAfter, await freePort());
    const [, startedIn] = await waitForLine(app, STARTED);
    const startedAt = performance.now();
    expect(Number(startedIn)).toBeGreaterThanOrEqual(0.2);
    expect((await request(app.port, '/actuator/health')).status).toBe(200);
    const exit = await exitWithin(app, 5_000);
    expect(exit.code).toBe(1);
    expect(exit.at - startedAt).toBeGreaterThanOrEqual(250);
    expect(app.output()).not.toContain('Stopped SampleApp');
  });
});

describe('sample app build script', () => {
  it('bakes the version into an executable jar', () => {
    const r = spawnSync('jar', ['--list', '--file', jars.normal], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')).toEqual(
      expect.arrayContaining(['META-INF/MANIFEST.MF', 'bluegreen-sample.properties', 'bluegreen/sample/SampleApp.class']),
    );
  });

  it.each([
    [['--version', '1', '--out', 'x.jar', '--bogus'], "unknown argument '--bogus'"],
    [['--version', '1', '--out', 'x.jar', '--behaviour', 'error-rate:1.5'], "invalid --behaviour 'error-rate:1.5'"],
    [['--version', '1', '--out', 'x.jar', '--behaviour', 'sometimes'], "invalid --behaviour 'sometimes'"],
    [['--version', '1', '--out', 'x.jar', '--start-delay-ms', 'soon'], "invalid --start-delay-ms 'soon'"],
    [['--version', '1', '--out', 'x.jar', '--ready-delay-ms', '-1'], "invalid --ready-delay-ms '-1'"],
    [['--version', '1', '--out', 'x.zip'], "invalid --out 'x.zip'"],
    [['--version', 'a b', '--out', 'x.jar'], "invalid --version 'a b'"],
    [['--out', 'x.jar'], 'missing --version'],
    [['--version', '1'], 'missing --out'],
    [['--version', '1', '--out'], 'option --out needs a value'],
  ])('rejects %j with exit 2 and a clear message', (args, message) => {
    const r = buildSync(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  it('prints its usage on --help', () => {
    const r = buildSync(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: build --version V --out PATH.jar');
  });
});
