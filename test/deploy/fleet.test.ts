/**
 * Fleet mode, pure parts (lib/deploy/fleet.ts): the release record new hosts boot from, the
 * fleet's deploy request, and what a roll-out's state means. The handlers that use them are
 * test/lambda/fleet.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { DEPLOYMENT_PROPERTIES as P, FLEET_RELEASE_UNSET, FLEET_TAG_KEY } from '../../lib/contract.js';
import {
  classifyRollOut,
  fleetFailureMessage,
  MAX_FLEET_FAILURE_CHARS,
  nextFleetRelease,
  parseFleetRelease,
  renderFleetRelease,
  rolledBackFleetRelease,
} from '../../lib/deploy/fleet.js';
import { readDeploymentRequest } from '../../lib/deploy/send-command.js';
import { COMMAND_ID, HOSTS, invocations, PROPERTIES, RELEASE_PARAMETER, SHA, TAG_VALUE } from '../support/fleet-request.js';


const fleet = { tagKey: FLEET_TAG_KEY, tagValue: TAG_VALUE, maxConcurrency: '1', releaseParameterName: RELEASE_PARAMETER };

describe('the release record', () => {
  const release = {
    artifactUri: 's3://bucket/cli-releases/abc.jar',
    sha256: SHA,
    version: 'v3',
    commandId: COMMAND_ID,
    recordedAt: '2026-11-25T10:00:00.000Z',
    recordedBy: 'cloudformation',
    previousArtifactUri: 's3://bucket/cli-releases/old.jar',
    previousSha256: 'ef'.repeat(32),
    previousVersion: 'v2',
  };

  test('renders KEY=VALUE lines and reads them back', () => {
    const text = renderFleetRelease(release);
    expect(text.split('\n')).toEqual([
      'artifactUri=s3://bucket/cli-releases/abc.jar',
      `sha256=${SHA}`,
      'version=v3',
      `commandId=${COMMAND_ID}`,
      'recordedAt=2026-11-25T10:00:00.000Z',
      'recordedBy=cloudformation',
      'previousArtifactUri=s3://bucket/cli-releases/old.jar',
      `previousSha256=${'ef'.repeat(32)}`,
      'previousVersion=v2',
    ]);
    expect(parseFleetRelease(text)).toEqual(release);
  });

  test('a new release keeps the recorded one as its previous; the same release again keeps the record\'s previous', () => {
    const next = { artifactUri: 's3://b/new.jar', sha256: 'aa'.repeat(32), version: 'v4', commandId: 'c2', recordedAt: 't2', recordedBy: 'cli' };
    expect(nextFleetRelease(release, next)).toEqual({ ...next, previousArtifactUri: release.artifactUri, previousSha256: SHA, previousVersion: 'v3' });
    expect(nextFleetRelease(release, { ...next, artifactUri: release.artifactUri, sha256: SHA })).toMatchObject({
      previousSha256: 'ef'.repeat(32),
      previousVersion: 'v2',
    });
    expect(nextFleetRelease(undefined, next)).toMatchObject({ previousArtifactUri: '', previousSha256: '', previousVersion: '' });
  });

  test('a fleet-wide rollback records the previous release as live and the rolled-back one as previous', () => {
    expect(rolledBackFleetRelease(release, { commandId: 'c3', recordedAt: 't3', recordedBy: 'cli' })).toEqual({
      artifactUri: 's3://bucket/cli-releases/old.jar',
      sha256: 'ef'.repeat(32),
      version: 'v2',
      commandId: 'c3',
      recordedAt: 't3',
      recordedBy: 'cli',
      previousArtifactUri: release.artifactUri,
      previousSha256: SHA,
      previousVersion: 'v3',
    });
    expect(rolledBackFleetRelease({ ...release, previousArtifactUri: '', previousSha256: '' }, { commandId: 'c3', recordedAt: 't3', recordedBy: 'cli' })).toBeUndefined();
  });

  test('nothing recorded yet, or a record without artifact and checksum, is no release', () => {
    expect(parseFleetRelease(FLEET_RELEASE_UNSET)).toBeUndefined();
    expect(parseFleetRelease(undefined)).toBeUndefined();
    expect(parseFleetRelease('version=v3\n# comment')).toBeUndefined();
  });

  test('comments and unknown keys are ignored, and a value may contain "="', () => {
    const text = `# written by hand\nartifactUri=https://host/app.jar?X-Amz-Signature=ab%3D\nsha256=${SHA}\nfuture=thing`;
    expect(parseFleetRelease(text)).toMatchObject({ artifactUri: 'https://host/app.jar?X-Amz-Signature=ab%3D', sha256: SHA, version: '', commandId: '-' });
  });
});

describe('the fleet request', () => {
  test('a fleet is named by its tag, swapped one host at a time unless told otherwise', () => {
    const { [P.maxConcurrency]: _omitted, ...withoutConcurrency } = PROPERTIES;
    const request = readDeploymentRequest(withoutConcurrency);
    expect(request.fleet).toEqual({ ...fleet, maxConcurrency: '1' });
    expect(request.instanceId).toBeUndefined();
  });

  test('an instance and a fleet at once, or a bad fleet value, is refused before anything is sent', () => {
    expect(() => readDeploymentRequest({ ...PROPERTIES, [P.instanceId]: 'i-0123456789abcdef0' })).toThrow(
      /InstanceId and TargetTagKey are both set/,
    );
    expect(() => readDeploymentRequest({ ...PROPERTIES, [P.maxConcurrency]: '0' })).toThrow(/MaxConcurrency = "0" is not a number of hosts/);
    expect(() => readDeploymentRequest({ ...PROPERTIES, [P.targetTagValue]: 'a b' })).toThrow(/TargetTagValue = "a b" is not a tag value/);
    expect(() => readDeploymentRequest({ ...PROPERTIES, [P.releaseParameterName]: '' })).toThrow(/ReleaseParameterName is missing/);
  });
});

describe('what a roll-out state means', () => {
  test('running until SSM calls the command final', () => {
    const outcome = classifyRollOut({ Status: 'InProgress', TargetCount: 3 }, invocations([[HOSTS[0]!, 'Success', 0], [HOSTS[1]!, 'InProgress']]).CommandInvocations);
    expect(outcome).toEqual({ kind: 'running', progress: `1 of 3 hosts done (${HOSTS[0]} Success, ${HOSTS[1]} InProgress)` });
  });

  test('succeeded only when every host succeeded', () => {
    const all = invocations(HOSTS.map((id) => [id, 'Success', 0])).CommandInvocations;
    expect(classifyRollOut({ Status: 'Success' }, all)).toEqual({ kind: 'succeeded', instanceIds: HOSTS });
  });

  test('a host cancelled by hand (not Terminated by the error limit) counts as failed, not untouched', () => {
    const states = [
      { InstanceId: HOSTS[0], Status: 'Success', StatusDetails: 'Success' },
      { InstanceId: HOSTS[1], Status: 'Cancelled', StatusDetails: 'Cancelled' },
    ];
    const outcome = classifyRollOut({ Status: 'Cancelled' }, states);
    expect(outcome).toMatchObject({ kind: 'failed', untouched: [] });
    expect(outcome.kind === 'failed' && outcome.failed.map((entry) => entry.InstanceId)).toEqual([HOSTS[1]]);
  });

  test('MaxErrors 0: the failed host, those that took the release, and those never touched', () => {
    const states = invocations([
      [HOSTS[0]!, 'Success', 0],
      [HOSTS[1]!, 'Failed', 5],
      [HOSTS[2]!, 'Cancelled'],
    ]).CommandInvocations;
    const outcome = classifyRollOut({ Status: 'Failed', StatusDetails: 'Failed' }, states);
    expect(outcome).toMatchObject({ kind: 'failed', summary: '1 of 3 hosts failed', succeeded: [HOSTS[0]], untouched: [HOSTS[2]] });
    expect(outcome.kind === 'failed' && outcome.failed.map((entry) => entry.InstanceId)).toEqual([HOSTS[1]]);
  });

  test('no host carrying the tag is a failure that says so', () => {
    expect(classifyRollOut({ Status: 'Success', StatusDetails: 'Success', TargetCount: 0 }, [])).toMatchObject({
      kind: 'failed',
      summary: expect.stringMatching(/no host matched the command's target/),
    });
  });

  test('the failure message names each failed host with its status and own words, and stays within CloudFormation\'s budget', () => {
    const message = fleetFailureMessage({
      summary: '1 of 3 hosts failed',
      commandId: COMMAND_ID,
      version: 'v3',
      failedHosts: [
        {
          instanceId: HOSTS[1]!,
          report: { Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 5, StandardErrorContent: 'x'.repeat(5000) + '\nbluegreen: error: v3 never became healthy on green; blue (v2) keeps serving' },
        },
      ],
      succeeded: [HOSTS[0]!],
      untouched: [HOSTS[2]!],
      context: { deliveryTimeoutSeconds: 300 },
      outputLogGroupName: '/bluegreen/deploy',
    });
    expect(message).toContain(`Roll-out of v3 failed: 1 of 3 hosts failed.`);
    expect(message).toContain(`${HOSTS[1]}: the deploy script failed with exit status 5 (the new release did not become healthy)`);
    expect(message).toContain('blue (v2) keeps serving');
    expect(message).toContain(`Took the new release: ${HOSTS[0]}`);
    expect(message).toContain(`Not deployed (still on the previous release): ${HOSTS[2]}`);
    expect(message).toContain(`streams ${COMMAND_ID}/INSTANCE/*`);
    expect(message.length).toBeLessThanOrEqual(MAX_FLEET_FAILURE_CHARS);
  });
});
