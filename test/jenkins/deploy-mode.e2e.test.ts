/**
 * The deploy mode in the settings: host on the single host, fleet on the fleet's own Jenkins,
 * whose fleet settings reach the pipeline as Jenkins global variables; and what install does
 * in each mode.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { FLEET_VARIABLES } from '../../cli/stack.js';
import { FLEET_TAG_KEY, MAX_CONCURRENCY_PATTERN } from '../../lib/contract.js';
import {
  casc,
  CONFIGURE_JENKINS,
  FLEET_DEPLOY,
  fleetSettings,
  globalEnv,
  httpsJob,
  PIPELINE,
  render,
  run,
  settings,
  settingsFile,
  withConfigureJenkins,
  type Settings,
} from './support.js';

describe('the deploy mode in the settings: host on the single host, fleet on the fleet’s own Jenkins', () => {
  test('host mode: the pipeline learns only that it deploys on this host', () => {
    expect(globalEnv(casc(settings({ ...httpsJob })))).toEqual({ BLUEGREEN_DEPLOY_MODE: 'host' });
  });

  test('fleet mode: builds learn only the mode; every fleet setting reaches the operator command through fleet-env, not the build', () => {
    // GIVEN the fleet's settings
    const file = settingsFile(settings({ ...httpsJob, ...fleetSettings }));

    // WHEN
    const result = run(CONFIGURE_JENKINS, ['fleet-env', file]);

    // THEN builds see no fleet setting (nothing they could point a root command at)
    expect(globalEnv(casc(settings({ ...httpsJob, ...fleetSettings })))).toEqual({ BLUEGREEN_DEPLOY_MODE: 'fleet' });
    // AND bluegreen-fleet-deploy gets them all, under the names the operator command reads
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const fleetEnv = (values: Settings) =>
      Object.fromEntries(
        run(CONFIGURE_JENKINS, ['fleet-env', settingsFile(values)])
          .stdout.trim()
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      );
    expect(fleetEnv(settings({ ...httpsJob, ...fleetSettings }))).toEqual({
      FLEET_REGION: 'eu-west-1',
      FLEET_DOCUMENT: fleetSettings.documentName,
      FLEET_TARGET: `tag:${FLEET_TAG_KEY}=Ec2BlueGreen`,
      FLEET_MAX_CONCURRENCY: '1',
      FLEET_RELEASE_PARAMETER: fleetSettings.releaseParameter,
      FLEET_UPLOAD_LOCATION: fleetSettings.uploadLocation,
      FLEET_OUTPUT_LOG_GROUP: fleetSettings.outputLogGroup,
    });
    // AND they are the variables the operator command reads with --fleet-from-env
    expect(Object.keys(fleetEnv(settings({ ...httpsJob, ...fleetSettings }))).sort()).toEqual(Object.values(FLEET_VARIABLES).sort());
    const withoutLogGroup = fleetEnv(settings({ ...fleetSettings, outputLogGroup: '', maxConcurrency: '25%' }));
    expect(withoutLogGroup).not.toHaveProperty('FLEET_OUTPUT_LOG_GROUP');
    expect(withoutLogGroup.FLEET_MAX_CONCURRENCY).toBe('25%');
    // AND a host-mode Jenkins has no fleet to give
    const host = run(CONFIGURE_JENKINS, ['fleet-env', settingsFile(settings())]);
    expect(host.code).toBe(1);
    expect(host.stdout).toBe('');
    expect(host.stderr).toContain("these settings are not a fleet's Jenkins (no deployMode=fleet)");
  });

  test.each<[string, Partial<Settings>, RegExp]>([
    ['an unknown deploy mode', { deployMode: 'ssh' }, /setting deployMode must be 'host' or 'fleet', not 'ssh'/],
    ['fleet mode without a document', { ...fleetSettings, documentName: '' }, /setting documentName is empty, and deployMode=fleet needs it/],
    ['fleet mode without a release parameter', { ...fleetSettings, releaseParameter: '' }, /setting releaseParameter is empty/],
    ['a fleet target that is not tag:KEY=VALUE', { ...fleetSettings, fleetTarget: 'i-0123456789abcdef0' }, /setting fleetTarget must be tag:KEY=VALUE/],
    ['a max concurrency of 0', { ...fleetSettings, maxConcurrency: '0' }, /setting maxConcurrency must be a number of hosts/],
    ['a max concurrency over 100%', { ...fleetSettings, maxConcurrency: '101%' }, /setting maxConcurrency must be a number of hosts/],
    ['an upload location that is not in S3', { ...fleetSettings, uploadLocation: 'https://example.com/jars/' }, /setting uploadLocation must be s3:\/\/BUCKET\/PREFIX\//],
  ])('refuses settings with %s', (_case, overrides, message) => {
    const result = render(settings(overrides));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
  });

  test('configure-jenkins checks MaxConcurrency with the contract’s pattern; the pipeline and the fleet deploy leave every fleet rule to the operator command', () => {
    expect(readFileSync(CONFIGURE_JENKINS, 'utf8')).toContain(`readonly MAX_CONCURRENCY_PATTERN='${MAX_CONCURRENCY_PATTERN}'`);
    // The fleet roll-out and the release record live in TypeScript only (cli/, run bundled):
    // no copy of the checks, the AWS calls or the record's keys in bash.
    const pipeline = readFileSync(PIPELINE, 'utf8');
    expect(pipeline).toContain('exec "${fleet[@]}" "$jar" --version "$version" --requested-by');
    const fleetDeploy = readFileSync(FLEET_DEPLOY, 'utf8');
    expect(fleetDeploy).toContain('node "$OPERATOR_COMMAND" deploy "$COPY" --version "$version" --fleet-from-env');
    for (const copy of ['MAX_CONCURRENCY_PATTERN', 'jq ', 'aws ', 'send-command', 'list-command', 'put-parameter', 'previousSha256', 'recordedBy=']) {
      expect(pipeline, copy).not.toContain(copy);
      expect(fleetDeploy, copy).not.toContain(copy);
    }
  });

  test.each([
    ['host', 'sudoers'],
    ['fleet', 'sudoers-fleet'],
  ])('install in %s mode prepares the agent user and installs the rule in %s (a fleet’s Jenkins has no engine to run as root)', (mode, rule) => {
    // GIVEN configure-jenkins with every step that touches the machine replaced by a recorder
    const values = settings(mode === 'fleet' ? fleetSettings : {});
    const stubs = ['install', 'chmod', 'prepare_agent_user', 'install_plugins', 'fetch_secrets', 'write_casc', 'write_service_drop_in', 'write_agent_unit']
      .map((step) => `${step}() { printf '%s\\n' ${step}; }`)
      .concat(`install_sudoers_rule() { printf 'install_sudoers_rule %s %s\\n' "$(basename "$1")" "$2"; }`)
      .join('; ');

    // WHEN
    const result = withConfigureJenkins(`${stubs}; read_settings ${JSON.stringify(settingsFile(values))}; cmd_install`);

    // THEN
    expect(result.code, result.stderr).toBe(0);
    const steps = result.stdout.trim().split('\n');
    expect(steps).toEqual([
      'install',
      'chmod',
      'chmod',
      'chmod',
      'prepare_agent_user',
      `install_sudoers_rule ${rule} /etc/sudoers.d/bluegreen-jenkins`,
      'install_plugins',
      'fetch_secrets',
      'write_casc',
      'write_service_drop_in',
      'write_agent_unit',
    ]);
  });
});
