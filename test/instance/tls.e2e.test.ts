/** With a certificate, Nginx serves the live slot on TLS and plain HTTP redirects to it. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_CODES } from '../../lib/contract.js';
import { BLUEGREEN, buildJar, LOCAL_HOST, LocalHost } from '../support/host.js';

const TLS_PORT = 18483;
let host: LocalHost;

function curl(args: string[]): string {
  return spawnSync('curl', ['-sS', '--max-time', '5', ...args], { encoding: 'utf8' }).stdout;
}

beforeAll(() => {
  host = new LocalHost({ nginx: 18480, blue: 18481, green: 18482 });
  const up = spawnSync(
    LOCAL_HOST,
    ['up', host.dir, '--port', '18480', '--blue-port', '18481', '--green-port', '18482', '--tls-port', String(TLS_PORT), '--bake-seconds', '0'],
    { encoding: 'utf8' },
  );
  if (up.status !== 0) throw new Error(up.stderr);
});

afterAll(() => host.destroy());

describe('TLS', () => {
  it('serves the live slot over TLS, redirects HTTP, and switches as usual', async () => {
    expect((await host.run(['deploy', buildJar('v1'), '--version', 'v1'])).code).toBe(EXIT_CODES.ok);
    expect(JSON.parse(curl(['-k', `https://127.0.0.1:${TLS_PORT}/`])).version).toBe('v1');
    const redirect = curl(['-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `${host.url}/profile?x=1`]);
    expect(redirect).toBe('301 https://127.0.0.1/profile?x=1');
    const deploy = await host.run(['deploy', buildJar('v2'), '--version', 'v2']);
    expect(deploy.code, deploy.stderr).toBe(EXIT_CODES.ok);
    expect(JSON.parse(curl(['-k', `https://127.0.0.1:${TLS_PORT}/`])).version).toBe('v2');
    const headers = curl(['-k', '-D', '-', '-o', '/dev/null', `https://127.0.0.1:${TLS_PORT}/`]);
    expect(headers).toMatch(/strict-transport-security: max-age=31536000/i);
  });

  it('refuses a key without a certificate, naming both keys', () => {
    const conf = join(mkdtempSync(join(tmpdir(), 'bluegreen-tls-')), 'bluegreen.conf');
    writeFileSync(conf, 'BLUEGREEN_RUNNER=process\nBLUEGREEN_NGINX_TLS_KEY=/tmp/key.pem\n');
    const r = spawnSync(BLUEGREEN, ['status'], { env: { ...process.env, BLUEGREEN_CONF: conf }, encoding: 'utf8' });
    expect(r.status).toBe(EXIT_CODES.usage);
    expect(r.stderr).toMatch(/BLUEGREEN_NGINX_TLS_CERT and BLUEGREEN_NGINX_TLS_KEY go together/);
  });
});
