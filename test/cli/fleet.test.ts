/**
 * The operator command's fleet mode, its pure parts: stack outputs to a fleet target, the
 * command line's --max-concurrency, the SendCommand inputs by tag and for a catch-up, the
 * per-host progress lines, the fleet's status and history, and what a failed roll-out says.
 */
import { describe, expect, test } from 'vitest';
import { parseCommandLine } from '../../cli/args.js';
import { catchUpCommandInput, documentCommandInput } from '../../cli/command.js';
import { CLI_EXIT_CODES, CliError } from '../../cli/errors.js';
import { EXIT_CODES } from '../../lib/contract.js';
import { undoAdvice } from '../../cli/fleet.js';
import {
  agreement,
  formatFleetHistory,
  formatFleetStatus,
  hostEndedLine,
  hostNotRunLine,
  hostOutputLine,
  hostStartedLine,
  rollOutExitCode,
  type HostStatus,
} from '../../cli/fleet-outcome.js';
import { fleetFromEnvironment, stackTarget, type FleetStackTarget } from '../../cli/stack.js';
import type { FleetRelease } from '../../lib/deploy/fleet.js';
import type { HistoryEntry, SlotStatus, Status } from '../../lib/contract.js';

const OUTPUTS = [
  { OutputKey: 'FleetTarget', OutputValue: 'tag:BlueGreenFleet=Ec2BlueGreen' },
  { OutputKey: 'FleetMaxConcurrency', OutputValue: '25%' },
  { OutputKey: 'FleetReleaseParameter', OutputValue: '/ec2-bluegreen/Ec2BlueGreen/fleet-release' },
  { OutputKey: 'DeployDocumentName', OutputValue: 'Ec2BlueGreen-DeployDocument-abc' },
  { OutputKey: 'DeployOutputLogGroup', OutputValue: 'Ec2BlueGreen-Output' },
  { OutputKey: 'SiteUrl', OutputValue: 'http://lb-123.us-east-1.elb.amazonaws.com/' },
];
const SETTINGS = { deliveryTimeoutSeconds: 3600, requestedBy: 'ops@laptop' };
const CONTEXT = { deliveryTimeoutSeconds: 3600 };
const SHA = 'c'.repeat(64);

function cliError(run: () => unknown): CliError {
  try {
    run();
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error('expected a CliError');
}

function fleetTarget(): FleetStackTarget {
  const target = stackTarget('Ec2BlueGreen', OUTPUTS);
  if (target.fleet === undefined) throw new Error('not a fleet target');
  return target;
}

describe('stackTarget on a fleet stack', () => {
  test('reads the tag, the rate, the release parameter, the document and the site', () => {
    expect(stackTarget('Ec2BlueGreen', OUTPUTS)).toEqual({
      stackName: 'Ec2BlueGreen',
      documentName: 'Ec2BlueGreen-DeployDocument-abc',
      outputLogGroupName: 'Ec2BlueGreen-Output',
      siteUrl: 'http://lb-123.us-east-1.elb.amazonaws.com/',
      fleet: { tagKey: 'BlueGreenFleet', tagValue: 'Ec2BlueGreen', maxConcurrency: '25%', releaseParameterName: '/ec2-bluegreen/Ec2BlueGreen/fleet-release' },
    });
  });

  test('without FleetMaxConcurrency, one host at a time (the stack\'s default)', () => {
    expect(fleetTarget().fleet.maxConcurrency).toBe('25%');
    const target = stackTarget('S', OUTPUTS.filter((output) => output.OutputKey !== 'FleetMaxConcurrency'));
    expect(target.fleet?.maxConcurrency).toBe('1');
  });

  test('a stack with both InstanceId and FleetTarget is refused, naming both', () => {
    const error = cliError(() => stackTarget('S', [...OUTPUTS, { OutputKey: 'InstanceId', OutputValue: 'i-0123456789abcdef0' }]));
    expect(error.exitCode).toBe(CLI_EXIT_CODES.aws);
    expect(error.message).toMatch(/^stack S has both outputs InstanceId \(i-0123456789abcdef0\) and FleetTarget \(tag:BlueGreenFleet=Ec2BlueGreen\), .* Nothing was sent\./);
  });

  test('a stack with neither says a fleet stack has FleetTarget instead', () => {
    const error = cliError(() => stackTarget('S', OUTPUTS.filter((output) => output.OutputKey !== 'FleetTarget')));
    expect(error.message).toMatch(/^stack S has no output InstanceId, so it is not an ec2-bluegreen stack .* a fleet stack has FleetTarget instead of InstanceId\.$/);
  });

  test.each([
    ['FleetTarget', 'BlueGreenFleet=Ec2BlueGreen', /FleetTarget is "BlueGreenFleet=Ec2BlueGreen", not tag:KEY=VALUE/],
    ['FleetTarget', 'tag:BlueGreenFleet', /FleetTarget is "tag:BlueGreenFleet", not tag:KEY=VALUE/],
    ['FleetTarget', 'tag:Blue Green=x', /not tag:KEY=VALUE/],
    ['FleetMaxConcurrency', '0', /FleetMaxConcurrency is "0", not a number of hosts or a percentage/],
    ['FleetMaxConcurrency', '150%', /FleetMaxConcurrency is "150%"/],
    ['FleetReleaseParameter', 'has spaces', /FleetReleaseParameter is "has spaces", not an SSM parameter name/],
  ])('%s = %j is refused before anything is sent', (key, value, message) => {
    const error = cliError(() => stackTarget('S', OUTPUTS.map((output) => (output.OutputKey === key ? { OutputKey: key, OutputValue: value } : output))));
    expect(error.exitCode).toBe(CLI_EXIT_CODES.aws);
    expect(error.message).toMatch(/^stack S is a fleet stack, but its outputs are not usable: /);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/Nothing was sent\./);
  });

  test('a fleet stack without its release parameter is refused', () => {
    expect(() => stackTarget('S', OUTPUTS.filter((output) => output.OutputKey !== 'FleetReleaseParameter'))).toThrow(/FleetReleaseParameter is missing/);
  });
});

describe('fleetFromEnvironment: the FLEET_* variables of the fleet\'s Jenkins stand for the stack\'s outputs', () => {
  const ENV = {
    FLEET_REGION: 'eu-west-1',
    FLEET_DOCUMENT: 'Ec2BlueGreen-DeployDocument-abc',
    FLEET_TARGET: 'tag:BlueGreenFleet=Ec2BlueGreen',
    FLEET_MAX_CONCURRENCY: '25%',
    FLEET_RELEASE_PARAMETER: '/ec2-bluegreen/Ec2BlueGreen/fleet-release',
    FLEET_UPLOAD_LOCATION: 's3://ec2bluegreen-artifacts-abc/cli-releases/',
    FLEET_OUTPUT_LOG_GROUP: 'Ec2BlueGreen-Output',
  };

  test('reads the same target as the stack\'s outputs with the same values, and the region', () => {
    const outputs = [
      ...OUTPUTS.filter((output) => output.OutputKey !== 'SiteUrl'),
      { OutputKey: 'ArtifactUploadLocation', OutputValue: ENV.FLEET_UPLOAD_LOCATION },
    ];
    const { stackName, ...fromStack } = stackTarget('Ec2BlueGreen', outputs);
    expect(stackName).toBe('Ec2BlueGreen');
    expect(fleetFromEnvironment(ENV)).toEqual({ region: 'eu-west-1', target: { ...fromStack, stackName: 'FLEET_*', fromEnvironment: true } });
  });

  test('without FLEET_MAX_CONCURRENCY, one host at a time; without FLEET_REGION or FLEET_OUTPUT_LOG_GROUP, none', () => {
    const { region, target } = fleetFromEnvironment({ ...ENV, FLEET_MAX_CONCURRENCY: '', FLEET_REGION: undefined, FLEET_OUTPUT_LOG_GROUP: '' });
    expect(region).toBeUndefined();
    expect(target.fleet.maxConcurrency).toBe('1');
    expect(target.outputLogGroupName).toBeUndefined();
  });

  test.each([
    [{ FLEET_DOCUMENT: '' }, /^--fleet-from-env needs FLEET_DOCUMENT, which is not set\. Nothing was sent\. The fleet's Jenkins has it as a global variable/],
    [{ FLEET_TARGET: undefined, FLEET_UPLOAD_LOCATION: ' ' }, /^--fleet-from-env needs FLEET_TARGET, FLEET_UPLOAD_LOCATION, which are not set\./],
    [{ FLEET_TARGET: 'i-0123456789abcdef0' }, /^the FLEET_\* variables are not usable: FLEET_TARGET is "i-0123456789abcdef0", not tag:KEY=VALUE\. Nothing was sent\. Fix the variable/],
    [{ FLEET_MAX_CONCURRENCY: '0' }, /FLEET_MAX_CONCURRENCY is "0", not a number of hosts or a percentage/],
    [{ FLEET_RELEASE_PARAMETER: 'has spaces' }, /FLEET_RELEASE_PARAMETER is "has spaces", not an SSM parameter name/],
    [{ FLEET_UPLOAD_LOCATION: 'https://example.com/jars/' }, /^FLEET_UPLOAD_LOCATION is "https:\/\/example\.com\/jars\/", not an s3:\/\/BUCKET\/PREFIX\/ location\.$/],
    [{ FLEET_REGION: 'Europe' }, /^FLEET_REGION is "Europe", not an AWS region such as us-east-1\. Nothing was sent\.$/],
  ])('%j is a usage error naming the variable', (overrides, message) => {
    const error = cliError(() => fleetFromEnvironment({ ...ENV, ...overrides }));
    expect(error.exitCode).toBe(CLI_EXIT_CODES.usage);
    expect(error.message).toMatch(message);
  });

  test('the advice after a failed roll-out names the target as it was given', () => {
    const release = { artifactUri: 's3://b/k.jar', sha256: SHA, version: 'v1' } as FleetRelease;
    expect(undoAdvice(['i-1'], release, fleetFromEnvironment(ENV).target)).toMatch(/npx ec2-bluegreen deploy s3:\/\/b\/k\.jar --sha256 c{64} --version v1 --fleet-from-env$/);
    expect(undoAdvice(['i-1'], release, fleetTarget())).toMatch(/ --version v1 --stack Ec2BlueGreen$/);
  });
});

describe('--max-concurrency', () => {
  test.each([['1'], ['25'], ['9999'], ['1%'], ['50%'], ['100%']])('%s is taken by deploy and rollback', (value) => {
    expect(parseCommandLine(['deploy', 'a.jar', '--stack', 'S', '--max-concurrency', value])).toMatchObject({ maxConcurrency: value });
    expect(parseCommandLine(['rollback', '--stack', 'S', '--max-concurrency', value])).toMatchObject({ maxConcurrency: value });
  });

  test.each([['0'], ['10000'], ['0%'], ['101%'], ['two'], ['']])('%j is a usage error', (value) => {
    const error = cliError(() => parseCommandLine(['deploy', 'a.jar', '--stack', 'S', '--max-concurrency', value]));
    expect(error.exitCode).toBe(CLI_EXIT_CODES.usage);
    expect(error.message).toMatch(/--max-concurrency ".*" is not a number of hosts \(1-9999\) or a percentage of them \(1%-100%\)\./);
  });

  test('status does not take it', () => {
    expect(() => parseCommandLine(['status', '--stack', 'S', '--max-concurrency', '1'])).toThrow(/--max-concurrency does not apply to 'status'/);
  });
});

describe('SendCommand inputs on a fleet', () => {
  const artifact = { uri: 's3://bucket/cli-releases/x.jar', sha256: SHA, version: 'v2', source: 'app.jar' };

  test("deploy targets the tag at the stack's rate, stopping at the first failure", () => {
    const input = documentCommandInput(fleetTarget(), { command: 'deploy', artifact }, SETTINGS);
    expect(input).toMatchObject({
      Targets: [{ Key: 'tag:BlueGreenFleet', Values: ['Ec2BlueGreen'] }],
      MaxConcurrency: '25%',
      MaxErrors: '0',
      TimeoutSeconds: 3600,
      Parameters: { action: ['deploy'], artifactUri: [artifact.uri], sha256: [SHA], version: ['v2'] },
    });
    expect(input.InstanceIds).toBeUndefined();
  });

  test('--max-concurrency overrides the stack; status and history read every host at once', () => {
    expect(documentCommandInput(fleetTarget(), { command: 'rollback' }, { ...SETTINGS, maxConcurrency: '2' }).MaxConcurrency).toBe('2');
    expect(documentCommandInput(fleetTarget(), { command: 'status' }, SETTINGS).MaxConcurrency).toBe('100%');
    expect(documentCommandInput(fleetTarget(), { command: 'history' }, SETTINGS).MaxErrors).toBe('0');
  });

  test("a catch-up deploys the recorded release to the joined hosts by id, named as the custom resource's catch-up", () => {
    const release = { artifactUri: 's3://bucket/k.jar', sha256: SHA, version: 'v2' } as FleetRelease;
    const input = catchUpCommandInput(fleetTarget(), release, 'cmd-1', ['i-0aaaaaaaaaaaaaaa1'], SETTINGS);
    expect(input).toMatchObject({
      InstanceIds: ['i-0aaaaaaaaaaaaaaa1'],
      Parameters: { action: ['deploy'], artifactUri: ['s3://bucket/k.jar'], sha256: [SHA], version: ['v2'] },
      Comment: 'catch-up of cmd-1: deploy v2 by ops@laptop',
    });
    expect(input.Targets).toBeUndefined();
  });
});

describe('per-host progress lines', () => {
  test('start, output and end lines name the host', () => {
    expect(hostStartedLine('i-0aaaaaaaaaaaaaaa1', { started: 2, total: 3 })).toBe('i-0aaaaaaaaaaaaaaa1: started (host 2 of 3)');
    expect(hostOutputLine('i-0aaaaaaaaaaaaaaa1', 'bluegreen [  0.03s] lock     acquired')).toBe('i-0aaaaaaaaaaaaaaa1 | bluegreen [  0.03s] lock     acquired');
    expect(hostEndedLine('i-0aaaaaaaaaaaaaaa1', { Status: 'Success', ResponseCode: 0 }, 3.24, { done: 2, total: 3 }, CONTEXT)).toBe(
      'i-0aaaaaaaaaaaaaaa1: Success in 3.2s (2 of 3 done)',
    );
  });

  test('a failed host says why, in the custom resource\'s words', () => {
    expect(hostEndedLine('i-2', { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 5 }, 12, { done: 2, total: 3 }, CONTEXT)).toBe(
      'i-2: Failed after 12.0s: the deploy script failed with exit status 5 (the new release did not become healthy) (2 of 3 done)',
    );
    expect(hostEndedLine('i-2', { Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut' }, undefined, { done: 1, total: 1 }, CONTEXT)).toMatch(
      /^i-2: TimedOut: SSM Agent did not pick the command up within the delivery timeout \(3600s\)/,
    );
  });

  test('a host the roll-out never reached is unchanged', () => {
    expect(hostNotRunLine('i-3', { Status: 'Cancelled', StatusDetails: 'Terminated' })).toBe(
      'i-3: not run, Cancelled (Terminated): the roll-out stopped at the first failure; this host is unchanged',
    );
  });
});

describe('rollOutExitCode', () => {
  test.each([
    [[{ report: { Status: 'Failed', ResponseCode: EXIT_CODES.unhealthy } }], 3, EXIT_CODES.unhealthy],
    [[{ report: { Status: 'Failed', ResponseCode: 42 } }], 3, CLI_EXIT_CODES.unexpected],
    [[{ report: { Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut' } }], 3, CLI_EXIT_CODES.didNotFinish],
    [[], 3, CLI_EXIT_CODES.didNotFinish],
    [[], 0, CLI_EXIT_CODES.aws],
  ])('%j of %i hosts -> %i', (failed, hosts, code) => {
    expect(rollOutExitCode(failed, hosts, CONTEXT)).toBe(code);
  });
});

function slot(port: number, role: SlotStatus['role'], version: string | null, sha256: string | null): SlotStatus {
  return { port, role, version, sha256, release: version, running: version !== null, healthy: version !== null, pid: null, bake: null };
}

function status(live: 'blue' | 'green', liveVersion: string, standbyVersion: string | null): Status {
  const other = live === 'blue' ? 'green' : 'blue';
  return {
    live,
    slots: {
      [live]: slot(live === 'blue' ? 8081 : 8082, 'live', liveVersion, liveVersion === 'v2' ? SHA : 'd'.repeat(64)),
      [other]: slot(other === 'blue' ? 8081 : 8082, standbyVersion === null ? 'idle' : 'standby', standbyVersion, null),
    } as Status['slots'],
    lastOperation: null,
  };
}

describe('the fleet status', () => {
  const release: FleetRelease = {
    artifactUri: 's3://b/k.jar',
    sha256: SHA,
    version: 'v2',
    commandId: 'cmd-1',
    recordedAt: '2026-11-25T10:00:00.000Z',
    recordedBy: 'cli',
    previousArtifactUri: 's3://b/j.jar',
    previousSha256: 'd'.repeat(64),
    previousVersion: 'v1',
  };
  const where = { stackName: 'Ec2BlueGreen', tag: 'BlueGreenFleet=Ec2BlueGreen', siteUrl: 'http://lb/' };

  test('one row per host with its live slot and version, its standby, and whether it runs the recorded release', () => {
    const hosts: HostStatus[] = [
      { instanceId: 'i-0aaaaaaaaaaaaaaa1', status: status('green', 'v2', 'v1') },
      { instanceId: 'i-0aaaaaaaaaaaaaaa2', status: status('blue', 'v2', 'v1') },
    ];
    expect(formatFleetStatus(hosts, where, { release })).toEqual([
      'Ec2BlueGreen: 2 hosts (tag BlueGreenFleet=Ec2BlueGreen) at http://lb/',
      'recorded release (new hosts boot it): v2 (sha256 cccccccccccc, recorded at 2026-11-25T10:00:00.000Z by cli); previous v1',
      '',
      'INSTANCE             LIVE  VERSION             STANDBY                 HEALTHY RECORDED',
      'i-0aaaaaaaaaaaaaaa1  green v2                  v1 (blue)               yes     yes',
      'i-0aaaaaaaaaaaaaaa2  blue  v2                  v1 (green)              yes     yes',
      '',
      'all 2 hosts serve v2',
    ]);
  });

  test('hosts that disagree, or did not answer, are named', () => {
    const hosts: HostStatus[] = [
      { instanceId: 'i-1', status: status('green', 'v2', 'v1') },
      { instanceId: 'i-2', status: status('blue', 'v1', null) },
      { instanceId: 'i-3', problem: 'not run (Cancelled)' },
    ];
    const lines = formatFleetStatus(hosts, where, { release });
    expect(lines).toContain('i-2                  blue  v1                  -                       yes     no');
    expect(lines).toContain('i-3                  -     -                   -                       -       -  (not run (Cancelled))');
    expect(lines.at(-1)).toBe('hosts disagree: v2 on i-1; v1 on i-2; no answer on i-3');
    expect(agreement(hosts.slice(0, 1))).toBe('all 1 hosts serve v2');
  });

  test('no record yet, or an unreadable one, is said as such', () => {
    expect(formatFleetStatus([], where, {})[1]).toBe("recorded release (new hosts boot it): none yet (hosts boot the stack's first release)");
    expect(formatFleetStatus([], where, { problem: 'AccessDenied' })[1]).toBe('recorded release (new hosts boot it): unreadable (AccessDenied)');
  });
});

test('the fleet history: each host under its id, --limit per host', () => {
  const entry = (version: string): HistoryEntry => ({
    at: '2026-11-25T10:00:00Z',
    action: 'deploy',
    from: 'blue',
    to: 'green',
    version,
    sha256: null,
    result: 'ok',
    seconds: 1,
    appSeconds: null,
    message: `${version} is live`,
  });
  const lines = formatFleetHistory(
    [
      { instanceId: 'i-1', entries: [entry('v1'), entry('v2')] },
      { instanceId: 'i-2', problem: 'no readable history' },
    ],
    1,
  );
  expect(lines[0]).toBe('== i-1');
  expect(lines[1]).toMatch(/^WHEN +ACTION/);
  expect(lines[2]).toMatch(/^2026-11-25T10:00:00Z deploy +v2 /);
  expect(lines.slice(3)).toEqual(['', '== i-2', '(no readable history)']);
});

describe('after a failed roll-out', () => {
  test('says what puts the recorded release back on the hosts that took the new one', () => {
    const recorded = { artifactUri: 's3://b/cli-releases/k.jar', sha256: SHA, version: 'v1' } as FleetRelease;
    expect(undoAdvice(['i-1'], recorded, fleetTarget())).toBe(
      'Took the new release: i-1. Nothing was recorded: /ec2-bluegreen/Ec2BlueGreen/fleet-release still names v1, which hosts the Auto Scaling group adds boot. ' +
        'To put v1 back (a fast switch to the warm standby where the new release went live, a no-op elsewhere): ' +
        `npx ec2-bluegreen deploy s3://b/cli-releases/k.jar --sha256 ${SHA} --version v1 --stack Ec2BlueGreen`,
    );
  });

  test('without a record, says to deploy the previous jar again', () => {
    expect(undoAdvice(['i-1', 'i-2'], undefined, fleetTarget())).toMatch(/^Took the new release: i-1, i-2\. Nothing was recorded\. .*npx ec2-bluegreen deploy JAR --stack Ec2BlueGreen\.$/);
  });
});
