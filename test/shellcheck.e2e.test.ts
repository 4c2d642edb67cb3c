/** Every shell script of the repository passes shellcheck (following what they source). */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_DIR } from './support/host.js';

function shellScripts(): string[] {
  const files = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: PROJECT_DIR,
    encoding: 'utf8',
  }).stdout.split('\n');
  return files.filter((f) => {
    if (!f || f.startsWith('node_modules/')) return false;
    if (/\.(sh|bash)$/.test(f)) return true;
    try {
      return /^#!.*\b(bash|sh)\b/.test(readFileSync(join(PROJECT_DIR, f), 'utf8').slice(0, 80));
    } catch {
      return false;
    }
  });
}

describe('shell scripts', () => {
  it('are found: the engine, its libraries and the local host at least', () => {
    const scripts = shellScripts();
    for (const s of ['assets/instance/bin/bluegreen', 'assets/instance/lib/common.sh', 'scripts/local-host', 'assets/sample-app/build']) {
      expect(scripts).toContain(s);
    }
  });

  it('pass shellcheck', () => {
    const r = spawnSync('shellcheck', ['-x', ...shellScripts()], { cwd: PROJECT_DIR, encoding: 'utf8' });
    expect(r.error, 'shellcheck must be installed (.ci/run installs it)').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  // bash 5.2 exits an errexit shell with status 1, without its ERR trap and so without a
  // message, when the FILE of a $(<FILE) cannot be opened, even inside 'if' or before '||'.
  // A /proc entry or a pid file can vanish at that moment: the engine uses read_file instead.
  it('never read a file with $(<FILE)', () => {
    const offenders = shellScripts().flatMap((f) =>
      readFileSync(join(PROJECT_DIR, f), 'utf8')
        .split('\n')
        .map((line, i) => ({ line, at: `${f}:${i + 1}` }))
        .filter(({ line }) => /\$\(\s*<(?!\()/.test(line) && !/^\s*#/.test(line))
        .map(({ at, line }) => `${at}: ${line.trim()}`),
    );
    expect(offenders).toEqual([]);
  });

  it('bash here still exits on a $(<FILE) that cannot be opened (why the rule above exists)', () => {
    const r = spawnSync('bash', ['-c', 'set -e; if x=$(</nonexistent/file); then :; fi; echo reached'], { encoding: 'utf8' });
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });
});
