/**
 * The metadata guard for real: a network namespace of its own holds the instance metadata
 * addresses (169.254.169.254 and fd00:ec2::254) on a veth interface, with a stand-in metadata
 * service answering there (IMDSv2 token, then the role's name). In the namespace the first
 * boot's own `guard_metadata` (assets/userdata/bootstrap.sh) installs the guard
 * (assets/userdata/imds-guard.sh) for the users each kind of host names, and real requests go
 * out as root and as other users. Only systemd and S3 are stand-ins: `systemctl restart` runs
 * the unit's ExecStart as systemd would, and `aws s3 cp` hands over the guard script.
 *
 * Nothing here sends a packet to the metadata addresses outside the namespace it created: every
 * request goes through `ip netns exec`. Needs root, iproute2, nftables, setpriv and curl
 * (scripts/install-deps); without them it fails, saying which is missing.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { APP_USER, appHostMetadataUsers, JENKINS_AGENT_USER, JENKINS_HOST_METADATA_USERS, JENKINS_USER } from '../../lib/constructs/metadata-guard.js';
import { projectPath } from '../../lib/paths.js';

const NAMESPACE = `bluegreen-imds-${process.pid}`;
const ADDRESSES = { ipv4: '169.254.169.254', ipv6: 'fd00:ec2::254' } as const;
type Family = keyof typeof ADDRESSES;
const ROLE_NAME = 'stand-in-host-role';
const GUARD_URI = 's3://stand-in-assets/imds-guard.sh';
const UNIT = 'bluegreen-imds-guard.service';
const TABLE = ['inet', 'bluegreen_imds'];
/** A refused request must fail this fast; a dropped one would wait out curl's 10 s. */
const REFUSED_WITHIN_MS = 2_000;

const scratch = mkdtempSync(join(tmpdir(), 'bluegreen-imds-guard-'));
const paths = {
  guard: join(scratch, 'guard.sh'),
  installedGuard: join(scratch, 'sbin', 'bluegreen-imds-guard'),
  rules: join(scratch, 'nftables', 'bluegreen-imds-guard.nft'),
  unitDir: join(scratch, 'systemd'),
  unit: join(scratch, 'systemd', UNIT),
  stubs: join(scratch, 'bin'),
  systemctlCalls: join(scratch, 'systemctl-calls'),
  userData: join(scratch, 'user-data.sh'),
};

/** The stand-in metadata service: IMDSv2's token, then the role's name, on both addresses, port 80. */
const METADATA_SERVICE = `
const http = require('node:http');
const token = 'stand-in-token';
const handler = (request, response) => {
  if (request.method === 'PUT' && request.url === '/latest/api/token' && request.headers['x-aws-ec2-metadata-token-ttl-seconds']) {
    response.end(token);
  } else if (request.headers['x-aws-ec2-metadata-token'] !== token) {
    response.statusCode = 401;
    response.end();
  } else if (request.method === 'GET' && request.url === '/latest/meta-data/iam/security-credentials/') {
    response.end(${JSON.stringify(ROLE_NAME)});
  } else {
    response.statusCode = 404;
    response.end();
  }
};
let listening = 0;
for (const address of ${JSON.stringify(Object.values(ADDRESSES))}) {
  http.createServer(handler).listen(80, address, () => { if (++listening === 2) console.log('listening'); });
}
`;

function run(command: string, args: string[], options: { input?: string } = {}) {
  const started = Date.now();
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000, ...options });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', ms: Date.now() - started, error: result.error };
}

/** Runs COMMAND in the test's own network namespace, and nowhere else. */
function inNamespace(args: string[]) {
  return run('ip', ['netns', 'exec', NAMESPACE, ...args]);
}

function mustSucceed(what: string, result: ReturnType<typeof run>): void {
  if (result.status !== 0) throw new Error(`${what} failed (exit ${result.status}): ${result.stderr || result.stdout || result.error}`);
}

/** IMDSv2 as an SDK asks it: a token, then the role's name with it. */
function credentialsRequest(family: Family): string {
  const base = family === 'ipv4' ? `http://${ADDRESSES.ipv4}` : `http://[${ADDRESSES.ipv6}]`;
  const curl = 'curl -sS --fail --globoff --max-time 10';
  return (
    `token=$(${curl} -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' ${base}/latest/api/token) && ` +
    `${curl} -H "X-aws-ec2-metadata-token: $token" ${base}/latest/meta-data/iam/security-credentials/`
  );
}

/** What `user` (root, or a user run through setpriv) gets from the metadata service in the namespace. */
function askAs(user: string, family: Family) {
  const request = credentialsRequest(family);
  if (user === 'root') return inNamespace(['bash', '-c', request]);
  const uid = run('id', ['-u', user]).stdout.trim();
  const gid = run('id', ['-g', user]).stdout.trim();
  return inNamespace(['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'bash', '-c', request]);
}

function expectAnswered(user: string, family: Family): void {
  const result = askAs(user, family);
  expect(result.stderr, `${user} over ${family}`).toBe('');
  expect(result.stdout, `${user} over ${family}`).toBe(ROLE_NAME);
  expect(result.status, `${user} over ${family}`).toBe(0);
}

/** Refused at connect (curl's 7: the rule's ICMP unreachable), at once: not dropped, not timed out. */
function expectRefused(user: string, family: Family): void {
  const result = askAs(user, family);
  expect(result.stdout, `${user} over ${family}`).toBe('');
  expect(result.stderr, `${user} over ${family}`).toMatch(/Failed to connect|Couldn't connect/);
  expect(result.status, `${user} over ${family}`).toBe(7);
  expect(result.ms, `${user} over ${family}: refused in ${result.ms} ms`).toBeLessThan(REFUSED_WITHIN_MS);
}

/** The first boot's guard_metadata, for METADATA_USERS `users`, run as root in the namespace. */
function guardMetadata(users: readonly string[]) {
  const script = readFileSync(projectPath('assets', 'userdata', 'bootstrap.sh'), 'utf8')
    .replace(/@@([A-Z0-9_]+)@@/g, (_match, name: string) =>
      name === 'METADATA_USERS' ? users.join(' ') : name === 'METADATA_GUARD_URI' ? GUARD_URI : name === 'REGION' ? 'eu-west-1' : '',
    )
    .replace('readonly METADATA_GUARD=/usr/local/sbin/bluegreen-imds-guard', `readonly METADATA_GUARD=${paths.installedGuard}`);
  expect(script).toContain(`readonly METADATA_GUARD=${paths.installedGuard}\n`);
  writeFileSync(paths.userData, script);
  // aws s3 cp --region REGION --only-show-errors URI DEST: the guard script, from "S3".
  const aws = `aws() { [[ "$*" == "s3 cp --region eu-west-1 --only-show-errors ${GUARD_URI} "* ]] || return 64; mkdir -p "$(dirname "\${@: -1}")"; cp ${paths.guard} "\${@: -1}"; }`;
  writeFileSync(paths.systemctlCalls, '');
  return inNamespace(['bash', '-c', `set -Eeuo pipefail; source ${paths.userData}; ${aws}; PATH=${paths.stubs}:$PATH; guard_metadata`]);
}

function installedGuard(users: readonly string[]): void {
  const result = guardMetadata(users);
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout).toContain(`bluegreen-imds-guard: only root${users.length > 0 ? ` and ${users.join(' ')}` : ''} may reach the instance metadata service`);
}

/** The unit's ExecStart, split as systemd splits this one (no quotes in it). */
function execStart(): string[] {
  const line = /^ExecStart=(.*)$/m.exec(readFileSync(paths.unit, 'utf8'));
  if (line === null) throw new Error(`${paths.unit} has no ExecStart`);
  return line[1]!.split(' ');
}

let metadataService: ChildProcess | undefined;
const createdUsers: string[] = [];

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('the metadata guard test needs root: it creates a network namespace, loads nftables rules in it and runs requests as other users');
  }
  const missing = ['ip', 'nft', 'setpriv', 'curl', 'useradd', 'systemd-analyze'].filter((tool) => run('bash', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) {
    throw new Error(`the metadata guard test needs ${missing.join(', ')}, not found on PATH: run scripts/install-deps (nft: apt-get install nftables)`);
  }
  mustSucceed(`ip netns add ${NAMESPACE} (network namespaces unavailable?)`, run('ip', ['netns', 'add', NAMESPACE]));
  for (const step of [
    ['ip', 'link', 'set', 'lo', 'up'],
    ['ip', 'link', 'add', 'imds0', 'type', 'veth', 'peer', 'name', 'imds1'],
    ['ip', 'address', 'add', `${ADDRESSES.ipv4}/32`, 'dev', 'imds0'],
    ['ip', '-6', 'address', 'add', `${ADDRESSES.ipv6}/128`, 'dev', 'imds0', 'nodad'],
    ['ip', 'link', 'set', 'imds0', 'up'],
    ['ip', 'link', 'set', 'imds1', 'up'],
    ['nft', 'list', 'ruleset'],
  ]) {
    mustSucceed(`in ${NAMESPACE}: ${step.join(' ')}`, inNamespace(step));
  }
  for (const user of [APP_USER, JENKINS_USER, JENKINS_AGENT_USER]) {
    if (run('id', ['-u', user]).status === 0) continue;
    mustSucceed(`useradd ${user}`, run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]));
    createdUsers.push(user);
  }

  // The guard as the boot downloads it, writing into the scratch directory instead of /etc.
  const guard = readFileSync(projectPath('assets', 'userdata', 'imds-guard.sh'), 'utf8')
    .replace('readonly RULES_FILE=/etc/nftables/bluegreen-imds-guard.nft', `readonly RULES_FILE=${paths.rules}`)
    .replace(`readonly UNIT_FILE=/etc/systemd/system/${UNIT}`, `readonly UNIT_FILE=${paths.unit}`);
  expect(guard).toContain(`readonly RULES_FILE=${paths.rules}\n`);
  expect(guard).toContain(`readonly UNIT_FILE=${paths.unit}\n`);
  writeFileSync(paths.guard, guard);
  // systemctl: records its calls; restart runs the unit's ExecStart, as systemd would (and does at every boot).
  mustSucceed('mkdir', run('mkdir', ['-p', paths.stubs, paths.unitDir]));
  writeFileSync(
    join(paths.stubs, 'systemctl'),
    [
      '#!/bin/bash',
      'set -euo pipefail',
      `printf '%s\\n' "$*" >> ${paths.systemctlCalls}`,
      'if [[ $1 == restart ]]; then',
      `  line=$(sed -n 's/^ExecStart=//p' ${paths.unitDir}/"$2")`,
      '  read -r -a command <<<"$line"',
      '  exec "${command[@]}"',
      'fi',
      '',
    ].join('\n'),
  );
  chmodSync(join(paths.stubs, 'systemctl'), 0o755);

  metadataService = spawn('ip', ['netns', 'exec', NAMESPACE, process.execPath, '-e', METADATA_SERVICE], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let errors = '';
    const timer = setTimeout(() => reject(new Error(`the stand-in metadata service did not start: ${errors}`)), 10_000);
    metadataService!.stderr!.on('data', (chunk) => (errors += String(chunk)));
    metadataService!.stdout!.on('data', (chunk) => {
      if (String(chunk).includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    metadataService!.on('exit', (code) => reject(new Error(`the stand-in metadata service exited (${code}): ${errors}`)));
  });
});

afterAll(() => {
  metadataService?.kill('SIGKILL');
  run('ip', ['netns', 'delete', NAMESPACE]);
  for (const user of createdUsers) run('userdel', [user]);
  rmSync(scratch, { recursive: true, force: true });
});

describe('without the guard', () => {
  test('any local user gets the instance role from the metadata service: the attack the guard stops', () => {
    for (const user of ['nobody', APP_USER]) {
      expectAnswered(user, 'ipv4');
      expectAnswered(user, 'ipv6');
    }
  });
});

describe('an app host (single or fleet), by default', () => {
  beforeAll(() => installedGuard(appHostMetadataUsers(false)));

  test('root still gets the role, over IPv4 and IPv6', () => {
    expectAnswered('root', 'ipv4');
    expectAnswered('root', 'ipv6');
  });

  test('the app user, Jenkins and its builds, and any other user are refused at once, over IPv4 and IPv6', () => {
    for (const user of [APP_USER, JENKINS_USER, JENKINS_AGENT_USER, 'nobody']) {
      expectRefused(user, 'ipv4');
      expectRefused(user, 'ipv6');
    }
  });

  test('the guard installs a unit that loads the rule before the network on every boot, and starts it now', () => {
    expect(readFileSync(paths.systemctlCalls, 'utf8').trim().split('\n')).toEqual(['daemon-reload', `enable ${UNIT}`, `restart ${UNIT}`]);
    const unit = readFileSync(paths.unit, 'utf8');
    expect(unit).toMatch(/^DefaultDependencies=no$/m);
    expect(unit).toMatch(/^Wants=network-pre\.target$/m);
    expect(unit).toMatch(/^Before=network-pre\.target$/m);
    expect(unit).toMatch(/^Type=oneshot$/m);
    expect(unit).toMatch(/^RemainAfterExit=yes$/m);
    expect(unit).toMatch(/^WantedBy=multi-user\.target$/m);
    // Stopping the unit must not open the metadata service.
    expect(unit).not.toMatch(/^ExecStop/m);
    expect(execStart()).toEqual([run('bash', ['-c', 'command -v nft']).stdout.trim(), '-f', paths.rules]);
    const verify = run('systemd-analyze', ['verify', '--man=no', paths.unit]);
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
  });

  test('after a reboot (the rule gone), the unit’s ExecStart alone brings it back', () => {
    mustSucceed('nft delete table', inNamespace(['nft', 'delete', 'table', ...TABLE]));
    expectAnswered('nobody', 'ipv4');
    mustSucceed('ExecStart', inNamespace(execStart()));
    expectRefused('nobody', 'ipv4');
    expectRefused(APP_USER, 'ipv6');
    expectAnswered('root', 'ipv4');
  });
});

describe('an app host with appInstanceRoleAccess', () => {
  beforeAll(() => installedGuard(appHostMetadataUsers(true)));

  test('the app user gets the role; root too', () => {
    expectAnswered(APP_USER, 'ipv4');
    expectAnswered(APP_USER, 'ipv6');
    expectAnswered('root', 'ipv4');
  });

  test('Jenkins and any other user are still refused', () => {
    for (const user of [JENKINS_USER, JENKINS_AGENT_USER, 'nobody']) {
      expectRefused(user, 'ipv4');
      expectRefused(user, 'ipv6');
    }
  });
});

describe("the fleet's Jenkins host", () => {
  beforeAll(() => installedGuard(JENKINS_HOST_METADATA_USERS));

  test('only root gets the role (the fleet deploy runs as root through sudo), over IPv4 and IPv6', () => {
    expect(JENKINS_HOST_METADATA_USERS).toEqual([]);
    expectAnswered('root', 'ipv4');
    expectAnswered('root', 'ipv6');
  });

  test('the builds (jenkins-agent), the controller (jenkins), the app user and any other user are refused', () => {
    for (const user of [JENKINS_AGENT_USER, JENKINS_USER, APP_USER, 'nobody']) {
      expectRefused(user, 'ipv4');
      expectRefused(user, 'ipv6');
    }
  });

  test('each install replaced the rule: one table with its two rules, not one more per install', () => {
    const listing = inNamespace(['nft', 'list', 'ruleset']);
    expect(listing.status).toBe(0);
    expect(listing.stdout.match(/^table /gm)).toEqual(['table ']);
    expect(listing.stdout.match(/ reject/g)).toHaveLength(2);
  });

  test('a user that does not exist fails the boot with a message naming it, and the rule in force stays', () => {
    const rulesBefore = readFileSync(paths.rules, 'utf8');
    const result = guardMetadata(['no-such-user']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("bluegreen-imds-guard: error: there is no user 'no-such-user' to allow; nothing was changed.");
    expect(readFileSync(paths.rules, 'utf8')).toBe(rulesBefore);
    expect(readFileSync(paths.systemctlCalls, 'utf8')).toBe('');
    expectAnswered('root', 'ipv4');
    expectRefused(JENKINS_AGENT_USER, 'ipv4');
    expectRefused('nobody', 'ipv4');
  });
});
