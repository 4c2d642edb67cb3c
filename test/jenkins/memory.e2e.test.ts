/**
 * Jenkins' side of the memory budget (lib/memory-budget.ts): configure-jenkins gives Jenkins its
 * heap and its cap, and the build agent (whose unit runs every build) the build's cap and heap;
 * bluegreen-pipeline gives the build its Gradle heap and makes it the first process the kernel kills.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { OOM_SCORE_ADJ, memoryBudget } from '../../lib/memory-budget.js';
import { PIPELINE, run, scratch, settings, settingsFile, withConfigureJenkins } from './support.js';

describe("Jenkins' memory", () => {
  test("the controller's drop-in: Jenkins' heap in its JAVA_OPTS, Jenkins' own cap and its OOM rank; nothing of the build's", () => {
    const budget = memoryBudget('single', 2048);
    const result = withConfigureJenkins(`read_settings ${JSON.stringify(settingsFile(settings()))}; service_drop_in`);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n');
    const javaOpts = lines.filter((line) => line.startsWith('Environment="JAVA_OPTS='));
    expect(javaOpts).toHaveLength(1);
    expect(javaOpts[0]).toMatch(new RegExp(` -Xmx${budget.jenkins!.heapMiB}m"$`));
    expect(lines.filter((line) => line.startsWith('MemoryMax='))).toEqual([`MemoryMax=${budget.jenkins!.totalMiB}M`]);
    expect(lines).toContain(`OOMScoreAdjust=${OOM_SCORE_ADJ.jenkins}`);
    expect(lines.some((line) => line.includes('BLUEGREEN_BUILD_HEAP_MIB'))).toBe(false);
  });

  test("the agent's unit, where every build runs: the build's heap for the pipeline, the build's cap and a build's OOM rank", () => {
    const budget = memoryBudget('single', 2048);
    const result = withConfigureJenkins(`read_settings ${JSON.stringify(settingsFile(settings()))}; agent_unit /usr/bin/java`);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines).toContain(`Environment="BLUEGREEN_BUILD_HEAP_MIB=${budget.build!.heapMiB}"`);
    expect(lines.filter((line) => line.startsWith('MemoryMax='))).toEqual([`MemoryMax=${budget.build!.totalMiB}M`]);
    expect(lines).toContain(`OOMScoreAdjust=${OOM_SCORE_ADJ.build}`);
  });

  test.each(['', '256m', '0'])('a settings file whose jenkinsHeapMiB is %j is refused', (value) => {
    const result = withConfigureJenkins(`read_settings ${JSON.stringify(settingsFile(settings({ jenkinsHeapMiB: value })))}`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`setting jenkinsHeapMiB is not a size in MiB: '${value}'`);
  });

  test('the build: Gradle gets the heap the settings give, and the build runs at the OOM rank of a build', () => {
    // GIVEN a workspace whose gradlew records its arguments and its own oom_score_adj
    const workspace = mkdtempSync(join(scratch, 'build-'));
    const record = join(workspace, 'gradlew-call');
    writeFileSync(join(workspace, 'gradlew'), `#!/bin/bash\nprintf '%s\\n' "$*" "$(cat /proc/self/oom_score_adj)" > ${JSON.stringify(record)}\n`, { mode: 0o755 });
    mkdirSync(join(workspace, 'build'));

    // WHEN
    const result = run(PIPELINE, ['build'], { cwd: workspace, env: { ...process.env, BLUEGREEN_BUILD_HEAP_MIB: '256' } });

    // THEN
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(record, 'utf8').trim().split('\n')).toEqual(['build --no-daemon -Dorg.gradle.jvmargs=-Xmx256m', String(OOM_SCORE_ADJ.build)]);
    expect(result.stdout).toContain('(Gradle heap 256 MiB)');
  });
});
