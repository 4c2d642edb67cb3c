import { describe, expect, test } from 'vitest';
import { COMMENT_MAX_CHARS, readDeploymentRequest, sendCommandInput } from '../../lib/deploy/send-command.js';
import { defaultReleaseLabel, DEPLOYMENT_PROPERTIES as P, DOCUMENT_PARAMS } from '../../lib/contract.js';

const SHA = 'ab'.repeat(32);
const PROPERTIES = {
  ServiceToken: 'arn:aws:lambda:us-east-1:111111111111:function:framework-onEvent',
  [P.instanceId]: 'i-0123456789abcdef0',
  [P.documentName]: 'Ec2BlueGreen-DeployDocument-AbCdEf123456',
  [P.artifactUri]: 's3://cdk-hnb659fds-assets-111111111111-us-east-1/0f3c.jar',
  [P.sha256]: SHA,
  [P.version]: '1.2.3',
  [P.healthTimeout]: '90',
};

describe('readDeploymentRequest', () => {
  test('reads the properties CloudFormation passes as strings', () => {
    expect(readDeploymentRequest(PROPERTIES)).toEqual({
      instanceId: 'i-0123456789abcdef0',
      documentName: 'Ec2BlueGreen-DeployDocument-AbCdEf123456',
      artifactUri: 's3://cdk-hnb659fds-assets-111111111111-us-east-1/0f3c.jar',
      sha256: SHA,
      version: '1.2.3',
      healthTimeoutSeconds: 90,
    });
  });

  test("the stack's engine bundle travels into the document's engineUri; no hash travels with it", () => {
    const engineUri = 's3://cdk-hnb659fds-assets-111111111111-us-east-1/e1.zip';
    const request = readDeploymentRequest({ ...PROPERTIES, [P.engineUri]: engineUri });
    expect(request.engineUri).toBe(engineUri);
    const input = sendCommandInput(request, { deliveryTimeoutSeconds: 300 }, { requestType: 'Update', logicalResourceId: 'Deployment' });
    expect(input.Parameters).toMatchObject({ [DOCUMENT_PARAMS.engineUri]: [engineUri] });
    // The document carries the hash itself: a caller's hash would prove nothing.
    expect(Object.keys(input.Parameters!).sort()).toEqual([...Object.values(DOCUMENT_PARAMS)].sort());
    expect(sendCommandInput(readDeploymentRequest(PROPERTIES), { deliveryTimeoutSeconds: 300 }, { requestType: 'Update', logicalResourceId: 'D' }).Parameters).not.toHaveProperty(DOCUMENT_PARAMS.engineUri);
  });

  test.each(['/tmp/engine.zip', 'https://example.com/engine.zip', 's3://bucket/$(id).zip'])('an EngineUri that is no S3 object (%s) is refused before anything is sent', (engineUri) => {
    expect(() => readDeploymentRequest({ ...PROPERTIES, [P.engineUri]: engineUri })).toThrow(
      `EngineUri = ${JSON.stringify(engineUri)} is not the s3://BUCKET/KEY of the stack's engine bundle`,
    );
  });

  test('version and health timeout are optional', () => {
    const { [P.version]: _version, [P.healthTimeout]: _health, ...required } = PROPERTIES;
    expect(readDeploymentRequest(required)).toMatchObject({ version: undefined, healthTimeoutSeconds: undefined });
  });

  test('accepts a path on the host and an https URL, as the document does', () => {
    expect(readDeploymentRequest({ ...PROPERTIES, [P.artifactUri]: '/opt/releases/app.jar' }).artifactUri).toBe('/opt/releases/app.jar');
    const presigned = 'https://bucket.s3.amazonaws.com/app.jar?X-Amz-Signature=ab%2F&X-Amz-Expires=900';
    expect(readDeploymentRequest({ ...PROPERTIES, [P.artifactUri]: presigned }).artifactUri).toBe(presigned);
  });

  test('lists every problem at once, naming each property, and says nothing was sent', () => {
    expect(() =>
      readDeploymentRequest({
        ...PROPERTIES,
        [P.instanceId]: undefined,
        [P.sha256]: 'ABC',
        [P.artifactUri]: 's3://bucket/key; rm -rf /',
        [P.healthTimeout]: '0',
      }),
    ).toThrow(
      "the deployment's properties are not usable: InstanceId is missing (an instance id such as i-0123456789abcdef0, or TargetTagKey and TargetTagValue for a fleet); " +
        'ArtifactUri = "s3://bucket/key; rm -rf /" is not an s3://BUCKET/KEY, https:// URL or absolute path that the document accepts; ' +
        'Sha256 = "ABC" is not 64 lower-case hex digits; HealthTimeoutSeconds = "0" is not a whole number of seconds from 1 to 999. ' +
        'Nothing was sent to the instance.',
    );
  });

  test('no properties at all is an error, not a crash', () => {
    expect(() => readDeploymentRequest(undefined)).toThrow(/InstanceId is missing.*DocumentName is missing.*ArtifactUri is missing.*Sha256 is missing/);
  });
});

describe('sendCommandInput', () => {
  const request = readDeploymentRequest(PROPERTIES);
  const origin = { requestType: 'Update', logicalResourceId: 'Deployment' } as const;

  test('runs the document with action=deploy on exactly this instance, with the delivery timeout', () => {
    expect(sendCommandInput(request, { deliveryTimeoutSeconds: 300 }, origin)).toEqual({
      DocumentName: 'Ec2BlueGreen-DeployDocument-AbCdEf123456',
      DocumentVersion: '$LATEST',
      InstanceIds: ['i-0123456789abcdef0'],
      Parameters: {
        [DOCUMENT_PARAMS.action]: ['deploy'],
        [DOCUMENT_PARAMS.artifactUri]: ['s3://cdk-hnb659fds-assets-111111111111-us-east-1/0f3c.jar'],
        [DOCUMENT_PARAMS.sha256]: [SHA],
        [DOCUMENT_PARAMS.version]: ['1.2.3'],
        [DOCUMENT_PARAMS.healthTimeout]: ['90'],
      },
      TimeoutSeconds: 300,
      Comment: 'CloudFormation Update Deployment: deploy 1.2.3',
    });
  });

  test("leaves healthTimeout to the document's default when not given, and sends an empty version", () => {
    const input = sendCommandInput({ ...request, version: undefined, healthTimeoutSeconds: undefined }, { deliveryTimeoutSeconds: 60 }, origin);
    expect(input.Parameters).not.toHaveProperty(DOCUMENT_PARAMS.healthTimeout);
    expect(input.Parameters?.[DOCUMENT_PARAMS.version]).toEqual(['']);
    expect(input.Comment).toBe(`CloudFormation Update Deployment: deploy ${defaultReleaseLabel(SHA)}`);
  });

  test('sends the output to the log group when there is one', () => {
    const input = sendCommandInput(request, { deliveryTimeoutSeconds: 300, outputLogGroupName: '/bluegreen/deploys' }, origin);
    expect(input.CloudWatchOutputConfig).toEqual({ CloudWatchOutputEnabled: true, CloudWatchLogGroupName: '/bluegreen/deploys' });
  });

  test("keeps the comment within SendCommand's limit", () => {
    const long = { requestType: 'Create', logicalResourceId: 'A'.repeat(200) } as const;
    const comment = sendCommandInput(request, { deliveryTimeoutSeconds: 300 }, long).Comment!;
    expect(comment).toHaveLength(COMMENT_MAX_CHARS);
    expect(comment.endsWith('…')).toBe(true);
  });
});
