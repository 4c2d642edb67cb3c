import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ConfigError, readConfig } from '../../lib/config.js';
import {
  OOM_SCORE_ADJ,
  RESERVE_MIB,
  budgetFor,
  engineMemorySettings,
  instanceMemoryMiB,
  jenkinsMemorySettings,
  knownInstanceMemoryMiB,
  memoryBudget,
  minimumMemoryMiB,
  type BudgetRole,
} from '../../lib/memory-budget.js';
import { projectPath } from '../../lib/paths.js';
import { fakeJar, synthesize } from './synth.js';

const ROLES: BudgetRole[] = ['single', 'fleet', 'jenkins'];

describe('the instance memory table', () => {
  test.each([
    ['t3.nano', 512],
    ['t3.micro', 1024],
    ['t3.small', 2048],
    ['t4g.medium', 4096],
    ['t3a.large', 8192],
    ['m5.large', 8192],
    ['m7g.xlarge', 16384],
    ['c6i.large', 4096],
    ['c7g.2xlarge', 16384],
    ['r6g.large', 16384],
  ])('%s has %i MiB', (type, mib) => {
    expect(knownInstanceMemoryMiB(type)).toBe(mib);
  });

  test('a family it does not list is unknown, not guessed (c5n.large has 5.25 GiB, not 4)', () => {
    expect(knownInstanceMemoryMiB('c5n.large')).toBeUndefined();
    expect(knownInstanceMemoryMiB('m5zn.large')).toBeUndefined();
    expect(knownInstanceMemoryMiB('t3.metal')).toBeUndefined();
  });

  test('an unknown type is refused, saying to set instanceMemoryMiB; an explicit figure wins over the table', () => {
    expect(() => instanceMemoryMiB('c5n.large', undefined, 'BlueGreenHost')).toThrow(
      /^BlueGreenHost: instanceType c5n\.large is not in this project's memory table .* Set instanceMemoryMiB to its memory in MiB/,
    );
    expect(instanceMemoryMiB('c5n.large', 5376, 'BlueGreenHost')).toBe(5376);
    expect(instanceMemoryMiB('t3.small', 4096, 'BlueGreenHost')).toBe(4096);
    expect(() => instanceMemoryMiB('t3.small', 0, 'BlueGreenHost')).toThrow(/instanceMemoryMiB = 0: give the instance's memory as a whole number of MiB/);
  });
});

describe('the budget', () => {
  test('the default single host (t3.small, 2048 MiB): 256 for the OS and Nginx, 448 per slot (heap 320), Jenkins 448 (heap 256), the build 448', () => {
    const budget = budgetFor('single', 't3.small', undefined, 'BlueGreenHost');
    expect(budget).toEqual({
      role: 'single',
      instanceMiB: 2048,
      reserveMiB: 256,
      slot: { heapMiB: 320, totalMiB: 448 },
      jenkins: { heapMiB: 256, totalMiB: 448 },
      build: { heapMiB: 256, totalMiB: 448 },
      budgetedMiB: 2048,
    });
  });

  test('a fleet host has only the slots; the fleet’s Jenkins only Jenkins and the build', () => {
    const fleet = memoryBudget('fleet', 2048);
    expect(fleet.slot).toEqual({ heapMiB: 768, totalMiB: 896 });
    expect(fleet.jenkins).toBeUndefined();
    expect(fleet.build).toBeUndefined();
    const jenkins = memoryBudget('jenkins', 2048);
    expect(jenkins.slot).toBeUndefined();
    expect(jenkins.jenkins).toEqual({ heapMiB: 704, totalMiB: 896 });
    expect(jenkins.build).toEqual({ heapMiB: 704, totalMiB: 896 });
  });

  test.each(ROLES)('%s: on every size from its minimum up, the parts fit the instance and every heap is below its process total', (role) => {
    for (let mib = minimumMemoryMiB(role); mib <= 65536; mib += 256) {
      const budget = memoryBudget(role, mib);
      expect(budget.budgetedMiB).toBeLessThanOrEqual(mib);
      expect(budget.budgetedMiB).toBeGreaterThan(mib - 64);
      for (const part of [budget.slot, budget.jenkins, budget.build]) {
        if (part === undefined) continue;
        expect(part.heapMiB).toBeGreaterThanOrEqual(128);
        expect(part.heapMiB).toBeLessThan(part.totalMiB);
      }
    }
  });

  test('the minimum per role: the single host 2048 MiB, a fleet host 768, the fleet’s Jenkins 1152', () => {
    expect(minimumMemoryMiB('single')).toBe(2048);
    expect(minimumMemoryMiB('fleet')).toBe(768);
    expect(minimumMemoryMiB('jenkins')).toBe(1152);
    expect(() => memoryBudget('single', 2032)).toThrow(/needs at least 2048 MiB/);
    expect(() => memoryBudget('single', 2048)).not.toThrow();
    expect(RESERVE_MIB).toBe(256);
  });

  test('a smaller instance is refused, naming the instance, its memory and the minimum, and what to do', () => {
    expect(() => budgetFor('single', 't3.micro', undefined, 'BlueGreenHost')).toThrow(
      'BlueGreenHost: instanceType t3.micro has 1024 MiB of memory, but the single host (Nginx, two app slots, Jenkins and its build) ' +
        'needs at least 2048 MiB (256 MiB for the OS and Nginx, and each JVM its smallest heap and what it needs beside it); ' +
        'nothing was built. Choose an instance type with at least that much memory (t3.small has 2048 MiB, t3.medium 4096).',
    );
    expect(() => budgetFor('fleet', 't3.nano', undefined, 'BlueGreenFleet')).toThrow(/^BlueGreenFleet: instanceType t3\.nano has 512 MiB .* needs at least 768 MiB/);
    expect(budgetFor('fleet', 't3.micro', undefined, 'BlueGreenFleet').slot).toEqual({ heapMiB: 256, totalMiB: 384 });
    expect(() => budgetFor('jenkins', 't3.micro', undefined, 'JenkinsHost')).toThrow(/needs at least 1152 MiB/);
  });

  test('the settings it becomes: engine configuration keys for the slots, Jenkins settings keys for Jenkins and the build', () => {
    const budget = memoryBudget('single', 4096);
    expect(engineMemorySettings(budget)).toEqual(['BLUEGREEN_SLOT_HEAP_MIB=832', 'BLUEGREEN_SLOT_MEMORY_MIB=960']);
    expect(jenkinsMemorySettings(budget)).toEqual({ jenkinsHeapMiB: '768', jenkinsMemoryMiB: '960', buildHeapMiB: '768', buildMemoryMiB: '960' });
    expect(engineMemorySettings(memoryBudget('jenkins', 4096))).toEqual([]);
    expect(() => jenkinsMemorySettings(memoryBudget('fleet', 4096))).toThrow(/runs no Jenkins/);
  });
});

describe('synth refuses an instance type that cannot hold the budget', () => {
  test('the single host on t3.micro', () => {
    expect(() => synthesize({ instanceType: 't3.micro' })).toThrow(/^BlueGreenHost: instanceType t3\.micro has 1024 MiB of memory, .*needs at least 2048 MiB/);
  });

  test("a fleet's Jenkins on t3.micro, while its app hosts fit", () => {
    expect(() => synthesize({ hosts: 2, instanceType: 't3.micro', jenkinsInstanceType: 't3.micro' })).toThrow(
      /^JenkinsHost: instanceType t3\.micro has 1024 MiB of memory, .*needs at least 1152 MiB/,
    );
    expect(synthesize({ hosts: 2, instanceType: 't3.micro' }).stack.fleet!.memoryBudget.slot).toEqual({ heapMiB: 256, totalMiB: 384 });
  });

  test('a type the table does not know needs instanceMemoryMiB, which then sizes the budget', () => {
    expect(() => synthesize({ instanceType: 'c5n.large' })).toThrow(/instanceType c5n\.large is not in this project's memory table/);
    const { stack } = synthesize({ instanceType: 'c5n.large', instanceMemoryMiB: '5376' });
    expect(stack.host!.memoryBudget.instanceMiB).toBe(5376);
  });

  test('instanceMemoryMiB must be a whole number; jenkinsInstanceMemoryMiB only applies to a fleet', () => {
    const read = (context: Record<string, unknown>) => () => readConfig((key) => context[key], { artifactSource: { defaultVersion: '1', buildDefault: () => fakeJar() } });
    expect(read({ instanceMemoryMiB: '4 GiB' })).toThrow(ConfigError);
    expect(read({ instanceMemoryMiB: '4 GiB' })).toThrow(/Context 'instanceMemoryMiB' = "4 GiB": give the instance type's memory/);
    expect(read({ jenkinsInstanceMemoryMiB: 4096 })).toThrow(/Context 'jenkinsInstanceMemoryMiB' = 4096: only applies to a fleet/);
  });
});

describe('the OOM order is one table: the engine, the slot unit, configure-jenkins and the pipeline hold its numbers', () => {
  const read = (...path: string[]) => readFileSync(projectPath(...path), 'utf8');
  test('build 1000 > an idle slot 500 > Jenkins 300 > the live slot -900', () => {
    expect(OOM_SCORE_ADJ.build).toBeGreaterThan(OOM_SCORE_ADJ.idleSlot);
    expect(OOM_SCORE_ADJ.idleSlot).toBeGreaterThan(OOM_SCORE_ADJ.jenkins);
    expect(OOM_SCORE_ADJ.jenkins).toBeGreaterThan(OOM_SCORE_ADJ.liveSlot);
    const memorySh = read('assets', 'instance', 'lib', 'memory.sh');
    expect(memorySh).toContain(`readonly OOM_SCORE_ADJ_LIVE=${OOM_SCORE_ADJ.liveSlot}\n`);
    expect(memorySh).toContain(`readonly OOM_SCORE_ADJ_IDLE=${OOM_SCORE_ADJ.idleSlot}\n`);
    expect(read('assets', 'instance', 'systemd', 'bluegreen-slot@.service')).toContain(`\nOOMScoreAdjust=${OOM_SCORE_ADJ.liveSlot}\n`);
    expect(read('assets', 'jenkins', 'configure-jenkins')).toContain(`readonly JENKINS_OOM_SCORE_ADJ=${OOM_SCORE_ADJ.jenkins}\n`);
    expect(read('assets', 'jenkins', 'bluegreen-pipeline')).toContain(`readonly BUILD_OOM_SCORE_ADJ=${OOM_SCORE_ADJ.build}\n`);
    expect(read('assets', 'jenkins', 'configure-jenkins')).toContain(`readonly BUILD_OOM_SCORE_ADJ=${OOM_SCORE_ADJ.build}\n`);
  });
});
