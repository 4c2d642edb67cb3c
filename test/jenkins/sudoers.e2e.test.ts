/**
 * The sudoers rules of Jenkins' build agent (user jenkins-agent): on the single host exactly the
 * engine's deploy of a workspace jar, rollback, status and history; on the fleet's Jenkins exactly
 * the fleet deploy of a workspace jar. No environment; the controller (user jenkins) gets nothing;
 * installed only after visudo accepts it; and what real sudo then lets each user run.
 */
import { copyFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HOST_PATHS } from '../../lib/contract.js';
import { JENKINS_TOOLS_DIR } from '../../lib/constructs/bluegreen-host.js';
import { JENKINS_AGENT_USER, JENKINS_USER } from '../../lib/constructs/metadata-guard.js';
import { AGENT, FLEET_SUDOERS, run, scratch, scratchFile, SUDOERS, withConfigureJenkins } from './support.js';

const WORKSPACES = `${AGENT.home}/workspace`;

/** The non-comment lines of a sudoers file, continuation lines joined. */
function ruleLines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'));
}

describe('the sudoers rule', () => {
  const rule = readFileSync(SUDOERS, 'utf8');
  const lines = rule.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));

  test('passes visudo -c -f', () => {
    const result = run('visudo', ['-c', '-f', SUDOERS]);
    expect(result.stdout + result.stderr).toContain('parsed OK');
    expect(result.code).toBe(0);
  });

  test('visudo does reject a broken copy (the check above is real)', () => {
    const broken = scratchFile('sudoers', rule.replace('NOPASSWD:', 'NOPASSWD'));
    expect(run('visudo', ['-c', '-f', broken]).code).not.toBe(0);
  });

  test('lets the build agent (not the controller) run, without a password, exactly the engine with deploy of a workspace jar, rollback, status and history', () => {
    const joined = ruleLines(SUDOERS);
    const commands = /Cmnd_Alias BLUEGREEN_FROM_JENKINS = (.*)/.exec(joined.join('\n'))![1]!.split(/,\s*/);
    expect(commands).toEqual([
      `${HOST_PATHS.command} deploy ${WORKSPACES}/*`,
      `${HOST_PATHS.command} rollback`,
      `${HOST_PATHS.command} status`,
      `${HOST_PATHS.command} history`,
    ]);
    const userRules = joined.filter((line) => !/^(Cmnd_Alias|Defaults|\s)/.test(line));
    expect(userRules).toEqual([`${JENKINS_AGENT_USER} ALL=(root) NOPASSWD: BLUEGREEN_FROM_JENKINS`]);
    expect(AGENT.user).toBe(JENKINS_AGENT_USER);
  });

  test("on the fleet's Jenkins: the build agent may run exactly the fleet deploy of a workspace jar, with no environment", () => {
    expect(run('visudo', ['-c', '-f', FLEET_SUDOERS]).code).toBe(0);
    expect(ruleLines(FLEET_SUDOERS)).toEqual([
      `Cmnd_Alias BLUEGREEN_FLEET_FROM_JENKINS = ${JENKINS_TOOLS_DIR}/bluegreen-fleet-deploy ${WORKSPACES}/*`,
      'Defaults!BLUEGREEN_FLEET_FROM_JENKINS env_reset, !setenv, !requiretty',
      `${JENKINS_AGENT_USER} ALL=(root) NOPASSWD: BLUEGREEN_FLEET_FROM_JENKINS`,
    ]);
    expect(readFileSync(join(SUDOERS, '..', 'bluegreen-pipeline'), 'utf8')).toContain(
      `readonly DEFAULT_FLEET_COMMAND='sudo -n ${JENKINS_TOOLS_DIR}/bluegreen-fleet-deploy'`,
    );
    expect(readFileSync(join(SUDOERS, '..', 'bluegreen-fleet-deploy'), 'utf8')).toContain(
      `readonly ARTIFACT_ROOT=\${BLUEGREEN_SUDO_ARTIFACT_ROOT:-${WORKSPACES}}`,
    );
  });

  test('keeps the environment from reaching root: env_reset and no SETENV, as the engine reads BLUEGREEN_* variables as configuration', () => {
    expect(lines).toContain('Defaults!BLUEGREEN_FROM_JENKINS env_reset, !setenv, !requiretty');
    expect(rule).not.toMatch(/SETENV|env_keep|ALL\s*$/m);
  });

  test.skipIf(process.getuid?.() !== 0)('configure-jenkins installs it with mode 0440 after visudo, and installs nothing that fails visudo', () => {
    // GIVEN
    const target = join(mkdtempSync(join(scratch, 'sudoers.d-')), 'bluegreen-jenkins');

    // WHEN
    const good = withConfigureJenkins(`install_sudoers_rule ${JSON.stringify(SUDOERS)} ${JSON.stringify(target)}`);
    const brokenTarget = `${target}-broken`;
    const broken = withConfigureJenkins(
      `install_sudoers_rule ${JSON.stringify(scratchFile('sudoers', 'jenkins ALL=(root NOPASSWD: /bin/true\n'))} ${JSON.stringify(brokenTarget)}`,
    );

    // THEN
    expect(good.code, good.stderr).toBe(0);
    expect(statSync(target).mode & 0o7777).toBe(0o440);
    expect(readFileSync(target, 'utf8')).toBe(rule);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain("does not pass 'visudo -c'; no sudo rule was installed");
    expect(existsSync(brokenTarget)).toBe(false);
  });

  describe('installed for real: what sudo -l says each user may run', () => {
    const dropIns = { host: `/etc/sudoers.d/bluegreen-test-agent-${process.pid}`, fleet: `/etc/sudoers.d/bluegreen-test-fleet-${process.pid}` };
    const created: string[] = [];

    beforeAll(() => {
      if (process.getuid?.() !== 0) throw new Error('the real sudo tests need root (users, /etc/sudoers.d): run them as root, as CI does.');
      for (const user of [JENKINS_USER, JENKINS_AGENT_USER]) {
        if (run('id', ['-u', user]).code === 0) continue;
        const added = run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
        expect(added.code, added.stderr).toBe(0);
        created.push(user);
      }
      for (const [source, target] of [[SUDOERS, dropIns.host], [FLEET_SUDOERS, dropIns.fleet]] as const) {
        copyFileSync(source, target);
        chmodSync(target, 0o440);
      }
      expect(run('visudo', ['-c', '-q']).code).toBe(0);
    });

    afterAll(() => {
      for (const file of Object.values(dropIns)) rmSync(file, { force: true });
      for (const user of created.reverse()) run('userdel', [user]);
    });

    test('jenkins-agent may run the engine commands and the fleet deploy as root, without a password, and nothing else', () => {
      const listed = run('sudo', ['-l', '-U', JENKINS_AGENT_USER]);
      expect(listed.code, listed.stderr).toBe(0);
      // sudo wraps long entries: a line indented deeper than its entry continues it.
      const allowedSection = listed.stdout.split(/may run the following commands on [^:]*:\n/)[1]!;
      const entries = allowedSection.replace(/\n {5,}/g, ' ').trim().split('\n');
      expect(entries.every((entry) => entry.trim().startsWith('(root) NOPASSWD: ')), entries.join('\n')).toBe(true);
      const commands = entries.flatMap((entry) => entry.trim().replace('(root) NOPASSWD: ', '').split(/,\s*/)).sort();
      expect(commands).toEqual(
        [
          `${HOST_PATHS.command} deploy ${WORKSPACES}/*`,
          `${HOST_PATHS.command} history`,
          `${HOST_PATHS.command} rollback`,
          `${HOST_PATHS.command} status`,
          `${JENKINS_TOOLS_DIR}/bluegreen-fleet-deploy ${WORKSPACES}/*`,
        ].sort(),
      );
    });

    test('the controller (jenkins), which holds the secrets, may run nothing through sudo', () => {
      const listed = run('sudo', ['-l', '-U', JENKINS_USER]);
      expect(listed.stdout + listed.stderr).toMatch(new RegExp(`User ${JENKINS_USER} is not allowed to run sudo`));
    });

    test('as jenkins-agent, with no password, sudo refuses a command outside the rule at once', () => {
      const result = run('runuser', ['-u', JENKINS_AGENT_USER, '--', 'sudo', '-n', '/bin/cat', '/etc/shadow']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('a password is required');
      expect(result.stdout).toBe('');
    });
  });
});
