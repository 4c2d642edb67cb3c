/**
 * The slots' memory keys of the engine's configuration (BLUEGREEN_SLOT_HEAP_MIB,
 * BLUEGREEN_SLOT_MEMORY_MIB): checked before anything runs, and with systemd rendered by
 * 'bluegreen init' into the slot unit's MemoryMax= drop-in. No slot is started.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { EXIT_CODES } from '../../lib/contract.js';
import { BLUEGREEN } from '../support/host.js';
import { hostLayoutLines } from '../support/host-conf.js';

const scratch = mkdtempSync(join(tmpdir(), 'bluegreen-memory-config-'));

function hostWith(name: string, lines: string[]) {
  const home = join(scratch, name);
  const bin = join(home, 'bin');
  mkdirSync(bin, { recursive: true });
  const calls = join(home, 'calls');
  // systemd is not PID 1 here: systemctl, and the slot user's id and chgrp, record their calls.
  for (const tool of ['systemctl', 'id', 'chgrp']) {
    writeFileSync(join(bin, tool), `#!/bin/bash\nprintf '%s\\n' "${tool} $*" >> ${JSON.stringify(calls)}\n`, { mode: 0o755 });
  }
  const conf = join(home, 'bluegreen.conf');
  writeFileSync(
    conf,
    [
      'BLUEGREEN_RUNNER=systemd',
      `BLUEGREEN_SYSTEMD_DIR=${home}/systemd`,
      ...hostLayoutLines(home),
      ...lines,
      '',
    ].join('\n'),
  );
  const run = (args: string[]) => {
    const r = spawnSync(BLUEGREEN, args, { env: { ...process.env, BLUEGREEN_CONF: conf, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const dropIn = join(home, 'systemd', 'bluegreen-slot@.service.d', '50-bluegreen-memory.conf');
  const recorded = () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []);
  return { conf, run, dropIn, recorded };
}

describe("the slots' memory configuration", () => {
  test('init writes the slot unit drop-in with the cap, and reloads systemd', () => {
    const host = hostWith('cap', ['BLUEGREEN_SLOT_HEAP_MIB=320', 'BLUEGREEN_SLOT_MEMORY_MIB=448']);
    const r = host.run(['init']);
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
    expect(readFileSync(host.dropIn, 'utf8')).toBe(`# Written by 'bluegreen init' from BLUEGREEN_SLOT_MEMORY_MIB in ${host.conf}.\n[Service]\nMemoryMax=448M\n`);
    expect(host.recorded()).toContain('systemctl daemon-reload');
    expect(r.stdout).toContain('each slot may use 448 MiB (heap 320)');
  });

  test('a cap removed from the configuration: the next init removes the drop-in', () => {
    const host = hostWith('uncap', ['BLUEGREEN_SLOT_MEMORY_MIB=448']);
    expect(host.run(['init']).code).toBe(EXIT_CODES.ok);
    expect(existsSync(host.dropIn)).toBe(true);
    writeFileSync(host.conf, readFileSync(host.conf, 'utf8').replace('BLUEGREEN_SLOT_MEMORY_MIB=448', 'BLUEGREEN_SLOT_MEMORY_MIB='));
    expect(host.run(['init']).code).toBe(EXIT_CODES.ok);
    expect(existsSync(host.dropIn)).toBe(false);
  });

  test.each([
    ['BLUEGREEN_SLOT_HEAP_MIB=320m', /BLUEGREEN_SLOT_HEAP_MIB=320m is not a size in MiB/],
    ['BLUEGREEN_SLOT_MEMORY_MIB=8', /BLUEGREEN_SLOT_MEMORY_MIB=8 is not a size in MiB \(a whole number, at least 16\)/],
  ])('%s is refused with exit 2 before anything runs', (line, message) => {
    const host = hostWith(`bad-${line.replace(/[^a-z0-9]/gi, '')}`, [line]);
    const r = host.run(['init']);
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stderr).toMatch(message);
    expect(existsSync(host.dropIn)).toBe(false);
  });

  test('a heap that does not fit in the cap is refused: the cap would kill the app', () => {
    const host = hostWith('heap-over-cap', ['BLUEGREEN_SLOT_HEAP_MIB=448', 'BLUEGREEN_SLOT_MEMORY_MIB=448']);
    const r = host.run(['status']);
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stderr).toContain('BLUEGREEN_SLOT_HEAP_MIB=448 does not fit in BLUEGREEN_SLOT_MEMORY_MIB=448');
  });
});
