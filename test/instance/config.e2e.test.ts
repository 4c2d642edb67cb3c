/**
 * The engine's configuration, its Nginx rendering and its systemd unit, checked with the real
 * tools (bash, nginx -t, systemd-analyze), without starting a slot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_CODES } from '../../lib/contract.js';
import { BLUEGREEN, PROJECT_DIR } from '../support/host.js';
import { hostLayoutLines } from '../support/host-conf.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bluegreen-config-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A configuration for a host laid out under dir (no Nginx running). */
function writeConf(name: string, lines: string[]): string {
  const home = join(dir, name);
  mkdirSync(home, { recursive: true });
  const conf = join(home, 'bluegreen.conf');
  writeFileSync(
    conf,
    [
      'BLUEGREEN_RUNNER=process',
      ...hostLayoutLines(home),
      ...lines,
      '',
    ].join('\n'),
  );
  return conf;
}

function bluegreen(conf: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(BLUEGREEN, args, { env: { ...process.env, BLUEGREEN_CONF: conf, ...env }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('configuration', () => {
  it('fails with exit 2 and names the key for an unknown key in the file', () => {
    const conf = writeConf('unknown', ['BLUEGREEN_HELTH_PATH=/health']);
    const r = bluegreen(conf, ['status']);
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stderr).toMatch(/bluegreen\.conf:\d+ sets unknown key BLUEGREEN_HELTH_PATH/);
  });

  it('fails with exit 2 for a line that is not KEY=VALUE, naming the line', () => {
    const conf = writeConf('garbage', ['rm -rf /']);
    const r = bluegreen(conf, ['status']);
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stderr).toMatch(/:\d+ is not KEY=VALUE: 'rm -rf \/'/);
  });

  it.each([
    ['BLUEGREEN_BLUE_PORT', '80800', /BLUEGREEN_BLUE_PORT must be a TCP port \(1-65535\), got '80800'/],
    ['BLUEGREEN_GREEN_PORT', '8081', /must differ, both are 8081/],
    ['BLUEGREEN_HEALTH_TIMEOUT', 'soon', /BLUEGREEN_HEALTH_TIMEOUT must be a number of seconds, got 'soon'/],
    ['BLUEGREEN_KEEP_RELEASES', '1', /BLUEGREEN_KEEP_RELEASES must be a whole number of at least 2/],
    ['BLUEGREEN_HEALTH_PATH', 'health', /must start with '\/', got 'health'/],
    ['BLUEGREEN_HEALTH_PATH', '/h;$(id)', /may hold only letters/],
    ['BLUEGREEN_RUNNER', 'docker', /BLUEGREEN_RUNNER must be 'systemd' \(on the host\) or 'process' \(local\), got 'docker'/],
    ['BLUEGREEN_WARMUP_REQUESTS', 'many', /BLUEGREEN_WARMUP_REQUESTS must be a whole number from 0 \(off\) to 100000, got 'many'/],
    ['BLUEGREEN_WARMUP_REQUESTS', '100001', /BLUEGREEN_WARMUP_REQUESTS must be a whole number from 0 \(off\) to 100000, got '100001'/],
    ['BLUEGREEN_WARMUP_CONCURRENCY', '0', /BLUEGREEN_WARMUP_CONCURRENCY must be a whole number from 1 to 64, got '0'/],
    ['BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT', 'forever', /BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT must be empty \(Nginx's 65s\) or an Nginx time such as 0, 75s or 2m, got 'forever'/],
    ['BLUEGREEN_WARMUP_PATH', '/x?a=$(id)', /BLUEGREEN_WARMUP_PATH must be empty \(the health path\) or a path/],
  ])('rejects %s=%s with exit 2 and a message that names it', (key, value, message) => {
    const conf = writeConf(`bad-${key}-${value.length}`, [`${key}=${value}`]);
    const r = bluegreen(conf, ['status']);
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stderr).toMatch(message);
  });

  it('lets an environment variable override a key of the file', () => {
    const conf = writeConf('override', ['BLUEGREEN_BLUE_PORT=19001']);
    expect(bluegreen(conf, ['status', '--json']).stdout).toContain('"port":19001');
    expect(bluegreen(conf, ['status', '--json'], { BLUEGREEN_BLUE_PORT: '19005' }).stdout).toContain('"port":19005');
  });

  it('fails with exit 2 when BLUEGREEN_CONF names a missing file', () => {
    const r = bluegreen(join(dir, 'nope.conf'), ['status']);
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stderr).toMatch(/BLUEGREEN_CONF names .*nope\.conf, which does not exist/);
  });

  it('answers usage errors with exit 2', () => {
    const conf = writeConf('usage', []);
    expect(bluegreen(conf, ['deploy']).code).toBe(EXIT_CODES.usage);
    expect(bluegreen(conf, ['switch', 'red']).stderr).toMatch(/unknown slot 'red'/);
    expect(bluegreen(conf, ['frobnicate']).stderr).toMatch(/unknown command 'frobnicate'/);
    expect(bluegreen(conf, ['help']).stdout).toMatch(/^Exit codes .*:\n {2}0 {2}success\n/m);
  });

  it('refuses rollback with exit 7 when nothing was ever deployed', () => {
    const conf = writeConf('empty', []);
    expect(bluegreen(conf, ['init']).code).toBe(EXIT_CODES.ok);
    const r = bluegreen(conf, ['rollback']);
    expect(r.code).toBe(EXIT_CODES.nothingToSwitchTo);
    expect(r.stderr).toMatch(/nothing is live yet/);
  });
});

describe('a system command that fails', () => {
  // useradd's own exit statuses (4: UID not unique, 6: no such group, ...) overlap the engine's;
  // the engine must not pass them on as if it had chosen them.
  it('exits unexpected, naming the command, when useradd fails with status 4 during init', () => {
    const conf = writeConf('useradd-fails', []);
    const bin = join(dir, 'useradd-fails', 'stand-in-bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'id'), '#!/bin/sh\necho "id: $2: no such user" >&2\nexit 1\n', { mode: 0o755 });
    writeFileSync(join(bin, 'useradd'), '#!/bin/sh\necho "useradd: UID 998 is not unique" >&2\nexit 4\n', { mode: 0o755 });
    const r = bluegreen(conf, ['init'], { BLUEGREEN_RUNNER: 'systemd', PATH: `${bin}:${process.env.PATH}` });
    expect(r.code, r.stderr).toBe(EXIT_CODES.unexpected);
    expect(r.stderr).toMatch(/^bluegreen: error: unexpected failure at lib\/slots\.sh line \d+, status 4 from: useradd --system /m);
  });
});

/** `bluegreen init` renders the configuration for the host under `home`, and `nginx -t` accepts it. */
function expectInitAcceptedByNginx(conf: string, home: string): void {
  expect(bluegreen(conf, ['init']).code).toBe(EXIT_CODES.ok);
  mkdirSync(join(home, 'nginx', 'logs'), { recursive: true });
  const t = spawnSync('nginx', ['-p', `${home}/nginx`, '-c', `${home}/nginx/nginx.conf`, '-e', `${home}/nginx/error.log`, '-t'], {
    encoding: 'utf8',
  });
  expect(t.status, t.stderr).toBe(0);
}

describe('Nginx configuration', () => {
  it('turns client keep-alive off for a host behind a load balancer, in a config nginx -t accepts', () => {
    const conf = writeConf('behind-balancer', ['BLUEGREEN_NGINX_KEEPALIVE_TIMEOUT=0']);
    const home = join(dir, 'behind-balancer');
    expectInitAcceptedByNginx(conf, home);
    const site = readFileSync(join(home, 'nginx', 'conf.d', 'bluegreen.conf'), 'utf8');
    expect(site).toMatch(/^\s+(keepalive_min_timeout \S+; )?keepalive_timeout 0;$/m);
    // Unset, the server block leaves keep-alive to Nginx's default.
    const plain = writeConf('keepalive-default', []);
    expect(bluegreen(plain, ['init']).code).toBe(EXIT_CODES.ok);
    expect(readFileSync(join(dir, 'keepalive-default', 'nginx', 'conf.d', 'bluegreen.conf'), 'utf8')).not.toMatch(/keepalive_timeout/);
  });

  it('renders a main config, a site and an include that nginx -t accepts, with no live slot yet', () => {
    const conf = writeConf('render', []);
    const home = join(dir, 'render');
    expectInitAcceptedByNginx(conf, home);
    const site = readFileSync(join(home, 'nginx', 'conf.d', 'bluegreen.conf'), 'utf8');
    expect(site).toMatch(/proxy_pass http:\/\/bluegreen_live;/);
    for (const header of ['Host', 'X-Real-IP', 'X-Forwarded-For', 'X-Forwarded-Proto']) {
      expect(site).toContain(`proxy_set_header ${header} `);
    }
    expect(site).toMatch(/proxy_http_version 1\.1;/);
    expect(site).toMatch(/proxy_set_header Connection "";/);
    const main = readFileSync(join(home, 'nginx', 'nginx.conf'), 'utf8');
    expect(main).toMatch(/worker_shutdown_timeout 30s;/);
    const include = readFileSync(join(home, 'nginx', 'bluegreen', 'live-upstream.conf'), 'utf8');
    expect(include).toMatch(/keepalive 64;/);
    expect(include).toMatch(/# live=none/);
    expect(JSON.parse(bluegreen(conf, ['status', '--json']).stdout).live).toBeNull();
  });

  it('keeps the include on a second init, so re-running set-up never changes the live slot', () => {
    const conf = writeConf('render', []);
    const include = join(dir, 'render', 'nginx', 'bluegreen', 'live-upstream.conf');
    writeFileSync(include, readFileSync(include, 'utf8').replace(/# live=none.*\n/, '').replace(/127\.0\.0\.1:\d+/, '127.0.0.1:8082'));
    expect(bluegreen(conf, ['init']).code).toBe(EXIT_CODES.ok);
    expect(JSON.parse(bluegreen(conf, ['status', '--json']).stdout).live).toBe('green');
  });

  it('refuses an include that points at neither slot, saying how to repair it', () => {
    const conf = writeConf('render', []);
    const include = join(dir, 'render', 'nginx', 'bluegreen', 'live-upstream.conf');
    writeFileSync(include, readFileSync(include, 'utf8').replace(/127\.0\.0\.1:\d+/, '127.0.0.1:9999'));
    const r = bluegreen(conf, ['status']);
    expect(r.code).toBe(EXIT_CODES.unexpected);
    expect(r.stderr).toMatch(/points at port 9999, which is neither blue \(8081\) nor green \(8082\).*bluegreen switch/);
  });

  it.each([
    ['1.22.1', false],
    ['1.27.3', false],
    ['1.27.4', true],
    ['1.28.0', true],
    ['2.0.0', true],
  ])('uses keepalive_min_timeout only where Nginx has it: %s -> %s', (version, expected) => {
    const script = `
      set -Eeuo pipefail
      source ${PROJECT_DIR}/assets/instance/lib/common.sh
      source ${PROJECT_DIR}/assets/instance/lib/nginx.sh
      NGINX_CMD=(bash -c 'echo "nginx version: nginx/${version}" >&2' fake-nginx)
      if nginx_has_keepalive_min_timeout; then echo yes; else echo no; fi`;
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    expect(r.stdout.trim(), r.stderr).toBe(expected ? 'yes' : 'no');
  });
});

describe('systemd unit', () => {
  it('passes systemd-analyze verify', () => {
    const unitDir = mkdtempSync(join(tmpdir(), 'bluegreen-unit-'));
    // verify checks that ExecStart exists: point it at the repository's engine.
    const unit = readFileSync(join(PROJECT_DIR, 'assets/instance/systemd/bluegreen-slot@.service'), 'utf8').replace(
      '/usr/local/bin/bluegreen',
      BLUEGREEN,
    );
    writeFileSync(join(unitDir, 'bluegreen-slot@.service'), unit);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(unitDir, 'bluegreen-slot@blue.service')], {
      encoding: 'utf8',
      env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' },
    });
    const problems = (r.stderr + r.stdout)
      .split('\n')
      .filter((l) => l.includes('bluegreen-slot@'))
      .join('\n');
    expect(problems).toBe('');
    expect(r.status, r.stderr).toBe(0);
    rmSync(unitDir, { recursive: true, force: true });
  });
});
