/**
 * A jar deployed from an http(s) URL, fetched by the engine from a real server on loopback. A
 * presigned URL's query (its signature and session token) fetches the object until it expires,
 * and a URL's user info is a password: neither may reach the engine's output (the SSM output,
 * CloudWatch Logs), its history or lock, nor curl's command line, which every user of the host
 * can read in ps while the download runs.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_CODES } from '../../lib/contract.js';
import { redactCredentials } from '../../lib/redact.js';
import { BLUEGREEN, buildJar, describeRun, LocalHost, waitFor } from '../support/host.js';

const SIGNATURE = 'c0ffee5ec7e7519a7u4e';
const TOKEN = 'FwoGZXIvYXdzEXAMPLEsessiontoken';
const PASSWORD = 'pa55-0f-the-artifact-store';

let server: Server;
let port = 0;
let jars: { v1: string; v2: string };
/** A response the server holds after its first bytes, until the test lets it finish. */
let held: { res: ServerResponse; rest: Buffer } | undefined;
let holdNext = false;
let host: LocalHost;

beforeAll(async () => {
  jars = { v1: buildJar('v1'), v2: buildJar('v2') };
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const presigned = ['/releases/app.jar', '/drop/app.jar'].includes(url.pathname) &&
      url.searchParams.get('X-Amz-Signature') === SIGNATURE && url.searchParams.get('X-Amz-Security-Token') === TOKEN;
    const basic = url.pathname === '/private/app.jar' &&
      req.headers.authorization === `Basic ${Buffer.from(`deployer:${PASSWORD}`).toString('base64')}`;
    if (!presigned && !basic) {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<Error><Code>SignatureDoesNotMatch</Code></Error>');
      return;
    }
    const jar = readFileSync(jars.v2);
    res.writeHead(200, { 'content-type': 'application/java-archive', 'content-length': String(jar.length) });
    if (url.pathname === '/drop/app.jar') {
      // The network goes away mid-download: the first KiB, then the connection is cut.
      res.write(jar.subarray(0, 1024), () => res.destroy());
      return;
    }
    if (holdNext) {
      holdNext = false;
      res.write(jar.subarray(0, 1024));
      held = { res, rest: jar.subarray(1024) };
      return;
    }
    res.end(jar);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  host = new LocalHost({ nginx: 18860, blue: 18861, green: 18862 }).up();
  const first = await host.run(['deploy', jars.v1, '--version', 'v1']);
  expect(first.code, first.stderr).toBe(EXIT_CODES.ok);
});

afterAll(async () => {
  held?.res.destroy();
  host?.destroy();
  await new Promise((r) => server.close(r));
});

/** The command lines of every process on the machine, by pid. */
function commandLines(): Map<number, string[]> {
  const lines = new Map<number, string[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      lines.set(Number(entry), readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean));
    } catch {
      // It ended while we looked.
    }
  }
  return lines;
}

/** Every file under DIR with its text, for a search of the whole host. */
function filesUnder(dir: string): Array<{ path: string; text: string }> {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => {
      try {
        return statSync(path).isFile();
      } catch {
        return false;
      }
    })
    .map((path) => ({ path, text: readFileSync(path, 'latin1') }));
}

function expectNoSecrets(where: string, text: string): void {
  for (const secret of [SIGNATURE, TOKEN, PASSWORD]) expect(text, `${where} holds a secret`).not.toContain(secret);
}

describe('a deploy from a presigned URL', () => {
  test('fetches and deploys the jar; the query is hidden from ps, the output, the history and the lock', async () => {
    const url = `http://127.0.0.1:${port}/releases/app.jar?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Security-Token=${TOKEN}&X-Amz-Signature=${SIGNATURE}`;
    holdNext = true;
    const child = host.spawn(['deploy', url, '--version', 'v2']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = new Promise<number | null>((r) => child.on('close', r));
    await waitFor(() => held !== undefined, 'the download to start', 20_000);

    // While the download runs: curl is there, and its command line holds no secret. The engine's
    // own command line (and its subshells') does: that is how the SSM document calls it.
    const running = commandLines();
    const curls = [...running].filter(([, argv]) => argv[0]?.endsWith('curl') && argv.includes('--config'));
    expect(curls.length, 'no curl was downloading').toBe(1);
    for (const [pid, argv] of running) {
      if (argv.some((arg) => arg.includes(SIGNATURE))) {
        expect(argv.slice(1, 3), `pid ${pid} shows the signature: ${argv.join(' ')}`).toEqual([BLUEGREEN, 'deploy']);
      }
    }

    held!.res.end(held!.rest);
    held = undefined;
    const result = { code: await code, stdout, stderr, ms: 0 };
    expect(result.code, describeRun(result)).toBe(EXIT_CODES.ok);
    expect(result.stdout).toContain(`check    artifact http://127.0.0.1:${port}/releases/app.jar?<hidden> is a runnable jar`);
    expect(await host.servedVersion()).toBe('v2');
    expectNoSecrets('the output', result.stdout + result.stderr);
    expectNoSecrets('the history', JSON.stringify(host.history()));
    for (const file of filesUnder(host.dir)) expectNoSecrets(file.path, file.text);
  });

  test('a refused download says so with the URL less its query and password; v2 keeps serving and nothing is lost', async () => {
    const releasesBefore = readdirSync(join(host.dir, 'home', 'releases')).sort();
    for (const url of [
      `http://127.0.0.1:${port}/releases/app.jar?X-Amz-Security-Token=${TOKEN}&X-Amz-Signature=${SIGNATURE}x`,
      `http://deployer:${PASSWORD}x@127.0.0.1:${port}/private/app.jar`,
    ]) {
      const result = await host.run(['deploy', url, '--version', 'v3']);
      expect(result.code, describeRun(result)).toBe(EXIT_CODES.badArtifact);
      expect(result.stderr).toMatch(
        /could not download http:\/\/(?:<hidden>@)?127\.0\.0\.1:\d+\/(?:releases|private)\/app\.jar(?:\?<hidden>)?: curl: \(22\) The requested URL returned error: 403\. Nothing was changed; check the URL\./,
      );
      expectNoSecrets('the output', result.stdout + result.stderr);
      expect(host.history().at(-1)).toMatchObject({ action: 'deploy', result: 'failed' });
      expect(await host.servedVersion()).toBe('v2');
    }
    expectNoSecrets('the history', JSON.stringify(host.history()));
    expect(readdirSync(join(host.dir, 'home', 'releases')).sort()).toEqual(releasesBefore);
  });

  test('with the right password in the URL, the jar is fetched, and the password shows nowhere', async () => {
    const result = await host.run(['deploy', `http://deployer:${PASSWORD}@127.0.0.1:${port}/private/app.jar`, '--version', 'v2-private']);
    expect(result.code, describeRun(result)).toBe(EXIT_CODES.ok);
    expect(result.stdout).toContain(`artifact http://<hidden>@127.0.0.1:${port}/private/app.jar is a runnable jar`);
    expectNoSecrets('the output', result.stdout + result.stderr);
    for (const file of filesUnder(host.dir)) expectNoSecrets(file.path, file.text);
  });
});

describe('a download that meets a fault', () => {
  const query = `?X-Amz-Security-Token=${TOKEN}&X-Amz-Signature=${SIGNATURE}`;

  /** A deploy that fails with exit 3 and MESSAGE, leaving the site, the releases and the incoming directory as they were. */
  async function expectRefused(url: string, message: RegExp): Promise<void> {
    const served = await host.servedVersion();
    const releases = readdirSync(join(host.dir, 'home', 'releases')).sort();
    const result = await host.run(['deploy', url, '--version', 'v3']);
    expect(result.code, describeRun(result)).toBe(EXIT_CODES.badArtifact);
    expect(result.stderr).toMatch(message);
    expectNoSecrets('the output', result.stdout + result.stderr);
    expect(await host.servedVersion()).toBe(served);
    expect(readdirSync(join(host.dir, 'home', 'releases')).sort()).toEqual(releases);
    expect(readdirSync(join(host.dir, 'home', 'incoming'))).toEqual([]);
    expect(host.history().at(-1)).toMatchObject({ action: 'deploy', version: 'v3', result: 'failed' });
  }

  test('nothing listens at the URL: exit 3, and the live release keeps serving', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expectRefused(
      `http://127.0.0.1:${closedPort}/releases/app.jar${query}`,
      new RegExp(`could not download http://127\\.0\\.0\\.1:${closedPort}/releases/app\\.jar\\?<hidden>: curl: \\(7\\) .*Nothing was changed; check the URL\\.`),
    );
  });

  test('the connection drops mid-download: exit 3, no partial jar is kept, and the live release keeps serving', async () => {
    await expectRefused(
      `http://127.0.0.1:${port}/drop/app.jar${query}`,
      /could not download http:\/\/127\.0\.0\.1:\d+\/drop\/app\.jar\?<hidden>: curl: \(18\) .*Nothing was changed; check the URL\./,
    );
  });

  test('the disk is full: exit 3 says so and where to free space, and the live release keeps serving', async () => {
    const incoming = join(host.dir, 'home', 'incoming');
    // Two pages: the 15 KB jar cannot fit.
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8k,mode=0700', 'bluegreen-artifact-url-incoming', incoming], { encoding: 'utf8' });
    expect(mount.status, mount.stderr).toBe(0);
    try {
      await expectRefused(
        `http://127.0.0.1:${port}/releases/app.jar${query}`,
        new RegExp(`curl: \\(23\\) .*\\(the file system of ${incoming} is full: \\d+ bytes free\\)\\. Nothing was changed; free space in ${incoming}, then deploy again\\.`),
      );
    } finally {
      spawnSync('umount', [incoming]);
    }
  });
});

describe('artifact_display', () => {
  /** The engine's artifact_display of each URI, in its own shell. */
  function engineDisplay(uris: string[]): string[] {
    const script = `source '${BLUEGREEN}'; for uri in "$@"; do artifact_display "$uri" shown; printf '%s\\n' "$shown"; done`;
    const result = spawnSync('bash', ['-c', script, 'bash', ...uris], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    return result.stdout.split('\n').slice(0, -1);
  }

  const cases: Array<[string, string]> = [
    ['https://b.s3.eu-west-1.amazonaws.com/app.jar?X-Amz-Credential=ASIA%2F20261202&X-Amz-Signature=ab12', 'https://b.s3.eu-west-1.amazonaws.com/app.jar?<hidden>'],
    ['https://user:secret@artifacts.example.com/libs/app.jar', 'https://<hidden>@artifacts.example.com/libs/app.jar'],
    ['https://token@artifacts.example.com/app.jar?a=1#part', 'https://<hidden>@artifacts.example.com/app.jar?<hidden>#part'],
    ['HTTP://artifacts.example.com?sig=1', 'HTTP://artifacts.example.com?<hidden>'],
    ['https://artifacts.example.com/app.jar#not?a-query', 'https://artifacts.example.com/app.jar#not?a-query'],
    ['https://artifacts.example.com/app.jar', 'https://artifacts.example.com/app.jar'],
    ['ssh://git@example.com/app.jar', 'ssh://git@example.com/app.jar'],
    ['ftp://deployer:secret@example.com/app.jar', 'ftp://deployer:<hidden>@example.com/app.jar'],
    ['s3://bucket/releases/app-1.2.jar', 's3://bucket/releases/app-1.2.jar'],
    ['/var/lib/jenkins/workspace/app/build/libs/app.jar', '/var/lib/jenkins/workspace/app/build/libs/app.jar'],
  ];

  test('hides a URL query and user info, and keeps the rest', () => {
    expect(engineDisplay(cases.map(([uri]) => uri))).toEqual(cases.map(([, shown]) => shown));
  });

  // The stack redacts what the host prints before it reaches a CloudFormation event; the host
  // hides the same parts itself, so the SSM output and the history agree with the event.
  test("agrees with the stack's redactCredentials on every case", () => {
    expect(engineDisplay(cases.map(([uri]) => uri))).toEqual(cases.map(([uri]) => redactCredentials(uri)));
  });
});
