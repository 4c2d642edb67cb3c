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
});
