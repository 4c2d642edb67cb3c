/**
 * The engine's health probe (slot_healthy) is a request bash makes itself over /dev/tcp, not a
 * curl: these are the answers it must judge as curl's probe did (HTTP 200 and "status":"UP" in
 * the body), from a real HTTP server on loopback, in the shapes apps give them.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BLUEGREEN } from '../support/host.js';

type Answer = { status: number; body: string; chunked?: boolean; noLength?: boolean };

const ANSWERS: Record<string, Answer> = {
  '/up': { status: 200, body: '{"status":"UP"}' },
  '/up-spaced': { status: 200, body: '{ "status" : "UP", "groups": ["liveness", "readiness"] }' },
  '/up-no-length': { status: 200, body: '{"status":"UP"}', noLength: true },
  // An actuator with details: a body larger than one read, UP at its end.
  '/up-large': { status: 200, body: `{"components":{"diskSpace":{"details":{"padding":"${'x'.repeat(20_000)}"}}},"status":"UP"}` },
  '/down-503': { status: 503, body: '{"status":"DOWN"}' },
  '/down-200': { status: 200, body: '{"status":"DOWN"}' },
  '/up-500': { status: 500, body: '{"status":"UP"}' },
  '/not-json': { status: 200, body: 'OK' },
};

let http: Server;
let silent: TcpServer;
const silentSockets: Socket[] = [];
let httpPort = 0;
let silentPort = 0;
const seenVersions: string[] = [];

beforeAll(async () => {
  http = createServer((req, res) => {
    seenVersions.push(req.httpVersion);
    const answer = ANSWERS[req.url ?? ''] ?? { status: 404, body: '{"error":"not found"}' };
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (!answer.noLength) headers['content-length'] = String(Buffer.byteLength(answer.body));
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  });
  // Accepts and never answers: a JVM that is stuck.
  silent = createTcpServer((socket) => silentSockets.push(socket));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as AddressInfo).port;
  silentPort = (silent.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const s of silentSockets) s.destroy();
  await new Promise((r) => silent.close(r));
  await new Promise((r) => http.close(r));
});

/** Runs slot_healthy against PORT and PATH in the engine's own shell; true when healthy. */
async function probe(port: number, path: string): Promise<{ healthy: boolean; stderr: string }> {
  const script = [
    `source '${BLUEGREEN}'`,
    'set -Eeuo pipefail',
    'install_traps',
    `BLUEGREEN_BLUE_PORT=${port}`,
    `BLUEGREEN_HEALTH_PATH='${path}'`,
    'if slot_healthy blue; then echo healthy; else echo unhealthy; fi',
  ].join('\n');
  const child = spawn('bash', ['-c', script], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  expect(code, stderr).toBe(0);
  return { healthy: stdout.trim() === 'healthy', stderr };
}

describe('slot_healthy', () => {
  test.each(['/up', '/up-spaced', '/up-no-length', '/up-large'])('is healthy on HTTP 200 with "status":"UP" (%s)', async (path) => {
    const result = await probe(httpPort, path);
    expect(result).toMatchObject({ healthy: true, stderr: '' });
  });

  test.each(['/down-503', '/down-200', '/up-500', '/not-json', '/missing'])('is not healthy on %s', async (path) => {
    const result = await probe(httpPort, path);
    expect(result).toMatchObject({ healthy: false, stderr: '' });
  });

  test('asks with HTTP/1.0, so that the app ends the body by closing (never chunked)', async () => {
    seenVersions.length = 0;
    await probe(httpPort, '/up');
    expect(seenVersions).toEqual(['1.0']);
  });

  test('is not healthy on a closed port, at once', async () => {
    const closed = createTcpServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const result = await probe(port, '/up');
    expect(result).toMatchObject({ healthy: false, stderr: '' });
  });

  test('gives up on an app that accepts and never answers, after its read timeout', async () => {
    const result = await probe(silentPort, '/up');
    expect(result).toMatchObject({ healthy: false, stderr: '' });
  }, 15_000);
});
