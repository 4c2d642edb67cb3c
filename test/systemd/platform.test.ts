/**
 * The first boot's seam between Amazon Linux and everything else: the container tests
 * (systemd.e2e.test.ts) replace the Amazon Linux steps with Debian's (debian-platform.sh) and
 * run every other step as the stack wrote it. That is only a test of the real script while no
 * other step uses the distribution's tools.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { projectPath } from '../../lib/paths.js';

const DISTRIBUTION_TOOLS = /\b(dnf|yum|rpm|alternatives|update-alternatives|apt-get|dpkg)\b/;

/** Each top-level function of a bash script: name -> body. */
function functions(script: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of script.matchAll(/^([a-z_]+)\(\) \{\n([\s\S]*?)^\}$/gm)) found.set(match[1]!, match[2]!);
  return found;
}

const bootstrap = readFileSync(projectPath('assets', 'userdata', 'bootstrap.sh'), 'utf8');
const debian = readFileSync(projectPath('test', 'systemd', 'debian-platform.sh'), 'utf8');
const named = /^# Amazon Linux specifics: ([a-z_, ]+) \(/m.exec(bootstrap)?.[1]?.split(/, /) ?? [];
const steps = functions(bootstrap);

describe('the first boot\'s Amazon Linux steps', () => {
  test('are named in the script, and each is one of its functions', () => {
    expect(named).toEqual(['install_cfn_bootstrap', 'install_packages', 'select_java']);
    for (const name of named) expect(steps.has(name), name).toBe(true);
  });

  test('are the only steps that use the distribution\'s package tools (or helpers only they call)', () => {
    const callers = (name: string) => [...steps].filter(([, body]) => new RegExp(`\\b${name}\\b`).test(body)).map(([caller]) => caller);
    const distributionSpecific = [...steps].filter(([, body]) => DISTRIBUTION_TOOLS.test(body)).map(([name]) => name);
    expect(distributionSpecific.length).toBeGreaterThan(0);
    for (const name of distributionSpecific) {
      if (named.includes(name)) continue;
      expect(callers(name).length, `${name} uses a package tool and is not an Amazon Linux step`).toBeGreaterThan(0);
      expect(callers(name).every((caller) => named.includes(caller)), `${name} is called by ${callers(name).join(', ')}`).toBe(true);
    }
  });

  test('each has a Debian version in the container tests', () => {
    const replaced = functions(debian);
    for (const name of named) expect(replaced.has(name), name).toBe(true);
  });
});
