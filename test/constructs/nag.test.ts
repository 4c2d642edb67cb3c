import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, test } from 'vitest';
import { acknowledgements, synthesize } from './synth.js';

const existingVpcContext = {
  vpcId: 'vpc-0123456789abcdef0',
  'vpc-provider:account=111111111111:filter.vpc-id=vpc-0123456789abcdef0:region=eu-west-1:returnAsymmetricSubnets=true': {
    vpcId: 'vpc-0123456789abcdef0',
    vpcCidrBlock: '10.20.0.0/16',
    ownerAccountId: '111111111111',
    availabilityZones: [],
    subnetGroups: [
      {
        name: 'Public',
        type: 'Public',
        subnets: [{ subnetId: 'subnet-0aaaaaaaaaaaaaaaa', cidr: '10.20.1.0/24', availabilityZone: 'eu-west-1a', routeTableId: 'rtb-0123456789abcdef0' }],
      },
    ],
  },
};

const configurations: Array<[string, Record<string, unknown>, Record<string, string>?]> = [
  ['the defaults', {}],
  ['HTTP limited to one network', { httpAllowedCidrs: '198.51.100.0/24' }],
  ['SSH and TLS configured', {
    sshKeyPairName: 'ops',
    sshAllowedCidrs: '192.0.2.0/24',
    tlsCertificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:bluegreen/tls-AbCdEf',
  }],
  ['an existing VPC', existingVpcContext, { CDK_DEFAULT_ACCOUNT: '111111111111', CDK_DEFAULT_REGION: 'eu-west-1' }],
  ['an arm64 instance', { instanceType: 't4g.medium' }],
  ['a Jenkins job with a GitHub token secret named', { appRepositoryUrl: 'https://github.com/acme/shop.git', githubTokenSecret: 'ci/github-token' }],
  ['a Jenkins job with a GitHub token secret by ARN', {
    appRepositoryUrl: 'git@github.com:acme/shop.git',
    githubTokenSecret: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:ci/github-token-AbCdEf',
  }],
  ['a fleet of three hosts', { hosts: 3 }],
  ['a fleet with HTTPS, SSH and a GitHub token', {
    hosts: 4,
    maxConcurrency: '25%',
    certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/0f2a5a1e-1111-2222-3333-444455556666',
    sshKeyPairName: 'ops',
    sshAllowedCidrs: '192.0.2.0/24',
    appRepositoryUrl: 'https://github.com/acme/shop.git',
    githubTokenSecret: 'ci/github-token',
  }],
];


describe('cdk-nag AwsSolutions', () => {
  test.each(configurations)('no unacknowledged finding with %s', (_name, context, processEnv) => {
    // GIVEN
    const { app, stack } = synthesize(context, processEnv);

    // WHEN
    const report = new AwsSolutionsChecks(app, { verbose: true }).validateScope(stack);

    // THEN
    expect(report.violations).toEqual([]);
    expect(report.success).toBe(true);
  });

  test.each([
    ['one host', {}],
    ['a fleet', { hosts: 3 }],
  ])('synth with the checks registered, as bin/app.ts does, passes for %s (CloudFormation validation included)', (_name, context) => {
    const { app } = synthesize(context);
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth({ force: true })).not.toThrow();
  });

  test('each acknowledgement is one a reviewer can check: a known rule on the resource it concerns, with a reason', () => {
    const { stack } = synthesize();
    const acknowledged = acknowledgements(stack).filter(({ path }) => path.startsWith('Ec2BlueGreen/Host'));
    expect(acknowledged.map(({ path, id }) => `${path} ${id}`).sort()).toEqual([
      'Ec2BlueGreen/Host/Instance AwsSolutions-EC29',
      'Ec2BlueGreen/Host/Instance CloudFormation-Validate::E1152',
      'Ec2BlueGreen/Host/JenkinsAdminPassword AwsSolutions-SMG4',
      'Ec2BlueGreen/Host/Role AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      'Ec2BlueGreen/Host/Role AwsSolutions-IAM5[Resource::<ArtifactBucket7410C9EF.Arn>/cli-releases/*]',
      'Ec2BlueGreen/Host/Role AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*]',
      'Ec2BlueGreen/Host/SecurityGroup AwsSolutions-EC23',
    ]);
    for (const { reason } of acknowledged) expect(reason.length).toBeGreaterThan(80);
  });

  test('the internet-facing security group finding is acknowledged only while something is open to anywhere', () => {
    const { stack } = synthesize({ httpAllowedCidrs: '198.51.100.0/24' });
    expect(acknowledgements(stack).map(({ id }) => id)).not.toContain('AwsSolutions-EC23');
  });
});
