/**
 * The stack's default artifact when no jar is named: the sample app, compiled with the JDK into
 * .build/ (a real javac, so an end-to-end test). The rest of the config is config.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { sampleAppSource } from '../../lib/artifact.js';
import { readConfig } from '../../lib/config.js';

describe('the default artifact', () => {
  test('is the sample app, built once into .build/ with the JDK and reused while its sources are unchanged', () => {
    // WHEN
    const first = readConfig(() => undefined).artifact;
    const second = readConfig(() => undefined, { artifactSource: sampleAppSource() }).artifact;

    // THEN
    expect(first.path).toMatch(/\/\.build\/sample-app\/sample-app-1\.0\.0-[0-9a-f]{16}\.jar$/);
    expect(second).toEqual(first);
  });
});
