/**
 * The plugin list configure-jenkins installs: every plugin the configuration and the Jenkinsfile
 * use, installed with the pinned plugin installation manager.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { casc, CONFIGURE_JENKINS, httpsJob, JENKINS_DIR, jobScript, settings } from './support.js';

describe('plugins', () => {
  const plugins = readFileSync(join(JENKINS_DIR, 'plugins.txt'), 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);

  test('the list is not empty, one plugin id per line, without duplicates', () => {
    expect(plugins.length).toBeGreaterThan(0);
    for (const plugin of plugins) expect(plugin).toMatch(/^[a-z0-9][a-z0-9-]*$/);
    expect(new Set(plugins).size).toBe(plugins.length);
  });

  test('holds every plugin the fullest configuration and the Jenkinsfile use', () => {
    // GIVEN the configuration with every optional part present
    const configuration = casc(settings({ githubTokenSecret: 'ci/github-token', ...httpsJob, jenkinsReachedThrough: 'network' }));
    const script = jobScript(configuration);
    const jenkinsfile = readFileSync(join(JENKINS_DIR, 'Jenkinsfile'), 'utf8');

    // THEN each feature in use has its plugin in the list
    const needs: Array<[boolean, string]> = [
      [true, 'configuration-as-code'],
      [configuration.jobs !== undefined, 'job-dsl'],
      [script.includes('pipelineJob(') && script.includes('cpsScm'), 'workflow-aggregator'],
      [script.includes('git {'), 'git'],
      [configuration.unclassified.gitHubPluginConfig !== undefined && script.includes('githubPush()'), 'github'],
      [configuration.credentials.system.domainCredentials[0].credentials.some((c: object) => 'usernamePassword' in c), 'credentials'],
      [configuration.credentials.system.domainCredentials[0].credentials.some((c: object) => 'string' in c), 'plain-credentials'],
      [/\bjunit\b/.test(jenkinsfile), 'junit'],
      [/\bpipeline \{/.test(jenkinsfile), 'workflow-aggregator'],
    ];
    for (const [used, plugin] of needs) {
      expect(used, plugin).toBe(true);
      expect(plugins).toContain(plugin);
    }
    expect(plugins).toContain('credentials-binding');
  });

  test('are installed with the pinned plugin installation manager, against the installed Jenkins war', () => {
    const script = readFileSync(CONFIGURE_JENKINS, 'utf8');
    expect(script).toMatch(/readonly PLUGIN_MANAGER_VERSION=\d+\.\d+\.\d+\n/);
    expect(script).toContain('--war "$JENKINS_WAR" --plugin-download-directory "$JENKINS_HOME_DIR/plugins"');
    expect(script).toContain('--plugin-file "$PLUGIN_LIST"');
  });
});
