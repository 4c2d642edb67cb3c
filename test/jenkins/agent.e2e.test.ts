/**
 * The build agent: its systemd unit (checked by systemd-analyze verify, run as jenkins-agent,
 * handed its own connection secret and none of the controller's), and the users and modes
 * configure-jenkins sets up, tried for real: as jenkins-agent, the controller's home and its
 * secrets cannot be read.
 *
 * Needs root (it creates users and runs commands as them) and systemd-analyze; fails otherwise.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { JENKINS_AGENT_USER, JENKINS_USER } from '../../lib/constructs/metadata-guard.js';
import { memoryBudget } from '../../lib/memory-budget.js';
import { AGENT, ADMIN_SECRET_ARN, CONFIGURE_JENKINS, httpsJob, run, settings, settingsFile, withConfigureJenkins } from './support.js';

const JAVA = run('bash', ['-c', 'command -v java']).stdout.trim();

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('the build agent tests need root (other local users, file owners): run them as root, as CI does.');
  const missing = ['systemd-analyze', 'setpriv', 'useradd', 'java'].filter((tool) => run('bash', ['-c', `command -v ${tool}`]).code !== 0);
  if (missing.length > 0) throw new Error(`the build agent tests need ${missing.join(', ')} on PATH: run scripts/install-deps`);
});

/** The unit configure-jenkins writes, for the settings given, with this machine's java. */
function agentUnit(values = settings({ githubTokenSecret: 'ci/github-token', ...httpsJob })): string {
  const result = withConfigureJenkins(`read_settings ${JSON.stringify(settingsFile(values))}; agent_unit ${JSON.stringify(JAVA)}`);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return result.stdout;
}

/** The `KEY=` lines of a unit's section, values in order. */
function directives(unit: string, key: string): string[] {
  return unit
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}

function verify(unit: string) {
  const dir = mkdtempSync(join(tmpdir(), 'bluegreen-agent-unit-'));
  const file = join(dir, 'jenkins-agent.service');
  writeFileSync(file, unit);
  return run('systemd-analyze', ['verify', '--man=no', file], { cwd: dir });
}

describe("the build agent's unit", () => {
  test('passes systemd-analyze verify, which does refuse a broken copy', () => {
    const unit = agentUnit();
    const good = verify(unit);
    expect(good.stdout + good.stderr).toBe('');
    expect(good.code).toBe(0);
    const broken = verify(unit.replace(/^ExecStart=\S+/m, 'ExecStart=no-such-java'));
    expect(broken.code).not.toBe(0);
  });

  test('runs as jenkins-agent from its home, restarting for as long as it takes the controller to answer', () => {
    const unit = agentUnit();
    expect(directives(unit, 'User')).toEqual([JENKINS_AGENT_USER]);
    expect(directives(unit, 'Group')).toEqual([JENKINS_AGENT_USER]);
    expect(directives(unit, 'WorkingDirectory')).toEqual([AGENT.home]);
    expect(directives(unit, 'Restart')).toEqual(['always']);
    expect(directives(unit, 'StartLimitIntervalSec')).toEqual(['0']);
    expect(directives(unit, 'UMask')).toEqual(['0027']);
    expect(`/etc/systemd/system/${AGENT.unitFile.split('/').pop()}`).toBe(AGENT.unitFile);
  });

  test("gets its own connection secret only: none of the controller's credentials, no SECRETS or CASC variable, the controller's files hidden", () => {
    const unit = agentUnit();
    expect(directives(unit, 'LoadCredential')).toEqual(['agentSecret:/etc/bluegreen-jenkins/secrets/agentSecret']);
    expect(unit).not.toMatch(/adminPassword|githubToken|SECRETS=|CASC_/);
    // Its one variable is the build's heap (the memory budget), which builds are meant to see.
    expect(directives(unit, 'Environment')).toEqual([`"BLUEGREEN_BUILD_HEAP_MIB=${memoryBudget('single', 2048).build!.heapMiB}"`]);
    expect(directives(unit, 'InaccessiblePaths')).toEqual(['-/var/lib/jenkins -/etc/bluegreen-jenkins/secrets']);
    // The controller's own unit is where the admin password and the token go, and nowhere else.
    const controller = withConfigureJenkins(
      `read_settings ${JSON.stringify(settingsFile(settings({ githubTokenSecret: 'ci/github-token', ...httpsJob })))}; service_drop_in`,
    ).stdout;
    expect(directives(controller, 'LoadCredential').map((line) => line.split(':')[0])).toEqual(['adminPassword', 'githubToken']);
  });

  test("connects to the controller on loopback over WebSocket with agent.jar from that controller, the secret read from systemd's credentials", () => {
    const unit = agentUnit(settings({ jenkinsPort: '8090' }));
    expect(directives(unit, 'ExecStartPre')).toEqual([
      `/usr/bin/curl -fsS --max-time 60 --output ${AGENT.home}/agent.jar http://127.0.0.1:8090/jnlpJars/agent.jar`,
    ]);
    expect(directives(unit, 'ExecStart')).toEqual([
      `${JAVA} -jar ${AGENT.home}/agent.jar -url http://127.0.0.1:8090/ -webSocket -name ${AGENT.node} -secret @%d/agentSecret -workDir ${AGENT.home}`,
    ]);
  });

  test("runs on the controller's Java when the first boot named it, else on the default java", () => {
    const dir = mkdtempSync(join(tmpdir(), 'bluegreen-agent-java-'));
    const dropIn = join(dir, 'bluegreen.conf');
    writeFileSync(dropIn, '[Service]\nEnvironment="JENKINS_JAVA_CMD=/usr/lib/jvm/java-21-amazon-corretto/bin/java"\nTimeoutStartSec=600\n');
    const withDropIn = (file: string) => {
      const copy = join(dir, `configure-jenkins-${file.split('/').pop()}`);
      writeFileSync(copy, readFileSync(CONFIGURE_JENKINS, 'utf8').replace(/^readonly JENKINS_JAVA_DROP_IN=.*$/m, `readonly JENKINS_JAVA_DROP_IN=${file}`));
      return run('bash', ['-c', `set -Eeuo pipefail; source ${JSON.stringify(copy)}; agent_java`]);
    };
    expect(withDropIn(dropIn).stdout.trim()).toBe('/usr/lib/jvm/java-21-amazon-corretto/bin/java');
    expect(withDropIn(join(dir, 'none.conf')).stdout.trim()).toBe(JAVA);
  });
});

describe('the users and modes configure-jenkins sets up, tried as jenkins-agent', () => {
  // A copy of configure-jenkins whose paths lie in a sandbox open to all (as /var/lib and /etc
  // are), so that only the modes it sets keep jenkins-agent out.
  const sandbox = mkdtempSync(join(tmpdir(), 'bluegreen-agent-sandbox-'));
  const paths = {
    config: join(sandbox, 'etc', 'bluegreen-jenkins'),
    jenkinsHome: join(sandbox, 'var', 'lib', 'jenkins'),
    agentHome: join(sandbox, 'var', 'lib', 'jenkins-agent'),
    bin: join(sandbox, 'bin'),
  };
  const created: string[] = [];
  const canary = `canary-${process.pid}-${Date.now()}`;

  function sandboxed(snippet: string) {
    const script = readFileSync(CONFIGURE_JENKINS, 'utf8')
      .replace(/^readonly CONFIG_DIR=.*$/m, `readonly CONFIG_DIR=${paths.config}`)
      .replace(/^readonly JENKINS_HOME_DIR=.*$/m, `readonly JENKINS_HOME_DIR=${paths.jenkinsHome}`)
      .replace(/^readonly AGENT_HOME=.*$/m, `readonly AGENT_HOME=${paths.agentHome}`);
    const file = join(sandbox, 'configure-jenkins');
    writeFileSync(file, script, { mode: 0o755 });
    return run('bash', ['-c', `set -Eeuo pipefail; source ${JSON.stringify(file)}; ${snippet}`], {
      env: { ...process.env, PATH: `${paths.bin}:${process.env.PATH}`, AWS_DEFAULT_REGION: 'eu-west-1' },
    });
  }

  function asAgent(args: string[]) {
    return run('setpriv', [`--reuid=${JENKINS_AGENT_USER}`, `--regid=${JENKINS_AGENT_USER}`, '--init-groups', '--', ...args]);
  }

  beforeAll(() => {
    chmodSync(sandbox, 0o755);
    for (const dir of Object.values(paths)) mkdirSync(dir, { recursive: true, mode: 0o755 });
    for (const user of [JENKINS_USER, JENKINS_AGENT_USER]) {
      if (run('id', ['-u', user]).code === 0) continue;
      if (user === JENKINS_AGENT_USER) continue; // configure-jenkins creates it
      expect(run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', user]).code).toBe(0);
      created.push(user);
    }
    if (run('id', ['-u', JENKINS_AGENT_USER]).code !== 0) created.push(JENKINS_AGENT_USER);
    // The controller's home as the Jenkins package may leave it (0755), with its own secrets in it.
    const jenkinsIds = { uid: Number(run('id', ['-u', JENKINS_USER]).stdout), gid: Number(run('id', ['-g', JENKINS_USER]).stdout) };
    chownSync(paths.jenkinsHome, jenkinsIds.uid, jenkinsIds.gid);
    writeFileSync(join(paths.jenkinsHome, 'credentials.xml'), `<secret>${canary}</secret>\n`, { mode: 0o644 });
    chownSync(join(paths.jenkinsHome, 'credentials.xml'), jenkinsIds.uid, jenkinsIds.gid);
    // The AWS CLI stand-in: Secrets Manager answers with the canary.
    writeFileSync(join(paths.bin, 'aws'), `#!/bin/bash\n[[ "$1 $2" == "secretsmanager get-secret-value" ]] || exit 64\nprintf '%s\\n' ${canary}\n`, { mode: 0o755 });

    const setup = sandboxed(
      `read_settings ${JSON.stringify(settingsFile(settings({ githubTokenSecret: 'ci/github-token', adminPasswordSecret: ADMIN_SECRET_ARN, ...httpsJob })))}; ` +
        'install -d -m 0755 "$CONFIG_DIR"; prepare_agent_user; fetch_secrets',
    );
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.stdout + setup.stderr).not.toContain(canary);
  });

  test("the plugin manager, a download with no checksum to pin, runs as Jenkins' user, not as root", () => {
    // GIVEN a curl that "downloads" a jar and a java that records who runs it
    writeFileSync(join(paths.bin, 'curl'), '#!/bin/bash\nwhile (($#)); do [[ $1 == --output ]] && printf jar >"$2"; shift; done\n', { mode: 0o755 });
    writeFileSync(join(paths.bin, 'java'), '#!/bin/bash\nprev=\nfor a; do [[ $prev == --plugin-download-directory ]] && id -un >"$a/ran-as"; prev=$a; done\n', { mode: 0o755 });

    // WHEN configure-jenkins installs the plugins
    const result = sandboxed('install_plugins');

    // THEN the manager ran, as jenkins, writing only into the plugins folder Jenkins owns
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(join(paths.jenkinsHome, 'plugins', 'ran-as'), 'utf8').trim()).toBe(JENKINS_USER);
    expect(statSync(join(paths.jenkinsHome, 'plugins')).uid).toBe(Number(run('id', ['-u', JENKINS_USER]).stdout));
  });

  afterAll(() => {
    for (const user of created.reverse()) {
      const removed = run('userdel', [user]);
      if (removed.code !== 0) console.warn(`the test's ${user} user is left behind: ${removed.stderr}`);
    }
  });

  test('jenkins-agent is a system user with no login shell, in none of the controller’s groups', () => {
    const entry = run('getent', ['passwd', JENKINS_AGENT_USER]).stdout.trim().split(':');
    expect(Number(entry[2])).toBeLessThan(1000);
    expect(entry[6]).toMatch(/nologin$/);
    expect(run('id', ['-nG', JENKINS_AGENT_USER]).stdout.trim().split(' ')).not.toContain(JENKINS_USER);
  });

  test('its home and workspaces are its own and closed to others; the controller’s home is closed to it', () => {
    const agentUid = Number(run('id', ['-u', JENKINS_AGENT_USER]).stdout);
    for (const dir of [paths.agentHome, join(paths.agentHome, 'workspace')]) {
      expect(statSync(dir).uid, dir).toBe(agentUid);
      expect(statSync(dir).mode & 0o7777, dir).toBe(0o750);
    }
    expect(statSync(paths.jenkinsHome).mode & 0o7777).toBe(0o750);
    expect(statSync(join(paths.config, 'secrets')).mode & 0o7777).toBe(0o700);
  });

  test('as jenkins-agent: the workspace is writable and the sandbox is open (the refusals below are the modes’ doing) ...', () => {
    expect(asAgent(['ls', sandbox]).code).toBe(0);
    expect(asAgent(['ls', paths.config]).code).toBe(0);
    expect(asAgent(['touch', join(paths.agentHome, 'workspace', 'build-output')]).code).toBe(0);
  });

  test("... but the controller's secret files, its home and its configuration cannot be read", () => {
    const attempts = {
      'admin password': asAgent(['cat', join(paths.config, 'secrets', 'adminPassword')]),
      'GitHub token': asAgent(['cat', join(paths.config, 'secrets', 'githubToken')]),
      'list the secrets': asAgent(['ls', join(paths.config, 'secrets')]),
      "list the controller's home": asAgent(['ls', paths.jenkinsHome]),
      "the controller's credentials.xml": asAgent(['cat', join(paths.jenkinsHome, 'credentials.xml')]),
    };
    for (const [attempt, result] of Object.entries(attempts)) {
      expect({ attempt, failed: result.code !== 0, stdout: result.stdout }).toEqual({ attempt, failed: true, stdout: '' });
      expect(result.stderr, attempt).toContain('Permission denied');
      expect(result.stderr, attempt).not.toContain(canary);
    }
    // root reads them (the files are there: the refusals are not for want of a file)
    expect(readFileSync(join(paths.config, 'secrets', 'adminPassword'), 'utf8').trim()).toBe(canary);
  });

  test('a second run changes nothing and keeps the controller’s home closed', () => {
    chmodSync(paths.jenkinsHome, 0o755);
    const again = sandboxed(`read_settings ${JSON.stringify(settingsFile(settings()))}; prepare_agent_user`);
    expect(again.code, again.stderr).toBe(0);
    expect(statSync(paths.jenkinsHome).mode & 0o7777).toBe(0o750);
    expect(asAgent(['ls', paths.jenkinsHome]).code).not.toBe(0);
  });
});
