/**
 * The sudoers rule of the single host's Jenkins: exactly the engine's deploy of a workspace jar,
 * rollback, status and history, no environment, installed only after visudo accepts it.
 */
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { HOST_PATHS } from '../../lib/contract.js';
import { run, scratch, scratchFile, SUDOERS, withConfigureJenkins } from './support.js';

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

  test('lets jenkins run, without a password, exactly the engine with deploy of a workspace jar, rollback, status and history', () => {
    const alias = lines.join('\n').replace(/\\\n\s*/g, '');
    const commands = /Cmnd_Alias BLUEGREEN_FROM_JENKINS = (.*)/.exec(alias)![1]!.split(/,\s*/);
    expect(commands).toEqual([
      `${HOST_PATHS.command} deploy /var/lib/jenkins/workspace/*`,
      `${HOST_PATHS.command} rollback`,
      `${HOST_PATHS.command} status`,
      `${HOST_PATHS.command} history`,
    ]);
    const userRules = lines.filter((line) => !/^(Cmnd_Alias|Defaults|\s)/.test(line));
    expect(userRules).toEqual(['jenkins ALL=(root) NOPASSWD: BLUEGREEN_FROM_JENKINS']);
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
});
