/**
 * The Jenkinsfile an app repository copies: build and test, then deploy as DEPLOY_MODE says,
 * both through bluegreen-pipeline on the host.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { HOST_PATHS } from '../../lib/contract.js';
import { JENKINS_TOOLS_DIR } from '../../lib/constructs/bluegreen-host.js';
import { balanced, JENKINS_DIR, PIPELINE } from './support.js';

describe('the Jenkinsfile', () => {
  const jenkinsfile = readFileSync(join(JENKINS_DIR, 'Jenkinsfile'), 'utf8');

  test('builds and tests, then deploys the way DEPLOY_MODE says (as configured by default), through bluegreen-pipeline on the host', () => {
    expect(jenkinsfile).toContain("choice(name: 'DEPLOY_MODE', choices: ['configured', 'host', 'fleet', 'stack']");
    expect(jenkinsfile).toContain(`BLUEGREEN_PIPELINE = '${JENKINS_TOOLS_DIR}/bluegreen-pipeline'`);
    const steps = [...jenkinsfile.matchAll(/sh '([^']*)'/g)].map((match) => match[1]);
    expect(steps).toEqual(['"$BLUEGREEN_PIPELINE" build', '"$BLUEGREEN_PIPELINE" deploy']);
    expect(jenkinsfile).toContain('disableConcurrentBuilds()');
    expect(readFileSync(PIPELINE, 'utf8')).toContain(`readonly DEFAULT_BLUEGREEN_COMMAND='sudo -n ${HOST_PATHS.command}'`);
    expect(balanced(jenkinsfile.replace(/"[^"\n]*"/g, '""'))).toBe(true);
  });
});
