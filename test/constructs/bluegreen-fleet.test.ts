/**
 * Fleet mode (context `hosts` > 1) as synthesized: the load balancer, the Auto Scaling group and
 * its launch template, Jenkins on its own instance, the roll-out custom resource; and the
 * single-host template, which fleet mode must leave as it was.
 */
import { readFileSync } from 'node:fs';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, test } from 'vitest';
import { SAMPLE_APP_VERSION, type ArtifactSource } from '../../lib/artifact.js';
import { ConfigError, readConfig } from '../../lib/config.js';
import { DEPLOYMENT_PROPERTIES as P, FLEET_RELEASE_UNSET, FLEET_TAG_KEY, RELEASE_RETENTION_TAG, STACK_OUTPUTS } from '../../lib/contract.js';
import { projectPath } from '../../lib/paths.js';
import { fakeJar, onlyResource, renderValue, resourceById, synthesize } from './synth.js';


function configFrom(context: Record<string, unknown>) {
  const source: ArtifactSource = { defaultVersion: SAMPLE_APP_VERSION, buildDefault: () => fakeJar() };
  return readConfig((key) => context[key], { artifactSource: source });
}

describe('the single-host template (hosts unset or 1)', () => {
  const recorded = JSON.parse(readFileSync(projectPath('test', 'constructs', 'single-host-resources.json'), 'utf8')) as {
    resources: Record<string, string>;
    outputs: string[];
  };

  test.each([
    ['unset', {}],
    ['1', { hosts: 1 }],
    ['"1" from the command line', { hosts: '1' }],
  ])('with hosts %s has the same resources (logical ids and types) and outputs as before fleet mode', (_name, context) => {
    // WHEN
    const { template } = synthesize(context);

    // THEN a changed logical id would replace that resource in every existing stack
    const resources = Object.fromEntries(
      Object.entries(template.toJSON().Resources as Record<string, { Type: string }>).map(([id, resource]) => [id, resource.Type]),
    );
    expect(resources).toEqual(recorded.resources);
    expect(Object.keys(template.toJSON().Outputs).sort()).toEqual(recorded.outputs);
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 0);
    template.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 0);
  });
});

describe('a fleet of three hosts', () => {
  const { template, stack } = synthesize({ hosts: 3, maxConcurrency: '1' });
  const fleet = stack.fleet!;
  const groupId = onlyResource(template, 'AWS::AutoScaling::AutoScalingGroup').logicalId;
  const launchTemplate = onlyResource(template, 'AWS::EC2::LaunchTemplate');
  const userData = renderValue(launchTemplate.properties.LaunchTemplateData.UserData);
  const releaseParameter = resourceById(template, 'AWS::SSM::Parameter', 'FleetRelease');

  test('has no single host: one instance, Jenkins, and an Auto Scaling group of three from one launch template', () => {
    const instance = onlyResource(template, 'AWS::EC2::Instance');
    expect(instance.logicalId).toMatch(/^JenkinsInstance/);
    template.hasResource('AWS::AutoScaling::AutoScalingGroup', {
      Properties: {
        MinSize: '3',
        // One spare for a rolling replacement of the launch template; no DesiredCapacity to reset.
        MaxSize: '4',
        DesiredCapacity: Match.absent(),
        HealthCheckType: 'ELB',
        LaunchTemplate: Match.objectLike({ LaunchTemplateId: { Ref: launchTemplate.logicalId } }),
        Tags: Match.arrayWith([{ Key: FLEET_TAG_KEY, PropagateAtLaunch: true, Value: Match.anyValue() }]),
      },
      CreationPolicy: { ResourceSignal: { Count: 3, Timeout: 'PT30M' } },
      UpdatePolicy: {
        AutoScalingRollingUpdate: Match.objectLike({ MaxBatchSize: 1, MinInstancesInService: 3, WaitOnResourceSignals: true }),
      },
    });
  });

  test('launches hosts with IMDSv2, an encrypted root volume, and the first-boot script in its fleet role', () => {
    expect(launchTemplate.properties.LaunchTemplateData).toMatchObject({
      MetadataOptions: { HttpTokens: 'required' },
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeType: 'gp3' } }],
    });
    expect(userData).toContain("readonly HOST_ROLE='fleet'");
    expect(userData).toContain(`readonly SIGNAL_RESOURCE='${groupId}'`);
    expect(userData).toContain(`readonly FLEET_RELEASE_PARAMETER='<${releaseParameter.logicalId}>'`);
    expect(userData).not.toMatch(/@@[A-Z0-9_]+@@/);
    expect(Buffer.byteLength(userData)).toBeLessThan(16 * 1024);
  });

  test('records no release until a roll-out succeeds; the stack never rewrites what a roll-out recorded', () => {
    expect(releaseParameter.properties.Value).toBe(FLEET_RELEASE_UNSET);
  });

  test('puts an internet-facing load balancer in front, HTTP forwarded to a target group checked through Nginx', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internet-facing', Type: 'application' });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [Match.objectLike({ Type: 'forward' })],
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 80,
      Protocol: 'HTTP',
      TargetType: 'instance',
      HealthCheckPath: '/actuator/health',
      Matcher: { HttpCode: '200' },
    });
  });

  test('hosts accept port 80 from the load balancer only; the load balancer from the allowed sources', () => {
    const hostGroup = resourceById(template, 'AWS::EC2::SecurityGroup', 'FleetSecurityGroup');
    const balancerGroup = resourceById(template, 'AWS::EC2::SecurityGroup', 'FleetLoadBalancerSecurityGroup');
    expect(hostGroup.properties.SecurityGroupIngress ?? []).toEqual([]);
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map((resource) => resource.Properties);
    expect(ingress).toEqual([
      expect.objectContaining({
        GroupId: { 'Fn::GetAtt': [hostGroup.logicalId, 'GroupId'] },
        SourceSecurityGroupId: { 'Fn::GetAtt': [balancerGroup.logicalId, 'GroupId'] },
        FromPort: 80,
        ToPort: 80,
      }),
    ]);
    expect(balancerGroup.properties.SecurityGroupIngress).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 80, ToPort: 80 })]);
  });

  test('rolls every deploy across the tagged hosts, one at a time, and records the release', () => {
    const deployment = onlyResource(template, 'Custom::BlueGreenDeployment').properties;
    expect(deployment[P.instanceId]).toBeUndefined();
    expect(deployment[P.targetTagKey]).toBe(FLEET_TAG_KEY);
    expect(renderValue(deployment[P.targetTagValue])).toBe('<AWS::StackName>/Ec2BlueGreen/Fleet');
    expect(deployment[P.maxConcurrency]).toBe('1');
    expect(deployment[P.releaseParameterName]).toEqual({ Ref: releaseParameter.logicalId });
    template.hasResource('Custom::BlueGreenDeployment', { DependsOn: Match.arrayWith([groupId]) });
  });

  test('gives queued hosts the whole window the timeouts leave to start in, not the single host\'s 5 minutes', () => {
    const environments = Object.entries(template.findResources('AWS::Lambda::Function'))
      .filter(([id]) => id.startsWith('DeploymentOnEvent') || id.startsWith('DeploymentIsComplete'))
      .map(([, fn]) => fn.Properties.Environment.Variables);
    expect(environments).toHaveLength(2);
    // 50 min total - 2,499 s execution (2,199 s and the document's 300 s lock wait) - 5 s query - 1 s
    for (const variables of environments) expect(variables.BLUEGREEN_DELIVERY_TIMEOUT_SECONDS).toBe('495');
    const single = synthesize().template;
    const singleVariables = Object.entries(single.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('DeploymentOnEvent'))![1];
    expect(singleVariables.Properties.Environment.Variables.BLUEGREEN_DELIVERY_TIMEOUT_SECONDS).toBe('300');
  });

  test('lets the deploy functions send only the document, only to instances carrying the fleet tag', () => {
    const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('DeploymentOnEvent') || id.startsWith('DeploymentIsComplete'))
      .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>);
    const sends = statements.filter((statement) => statement.Action === 'ssm:SendCommand');
    expect(sends.length).toBe(4);
    const onInstances = sends.filter((statement) => renderValue(statement.Resource).includes(':instance/'));
    expect(onInstances).toHaveLength(2);
    for (const statement of onInstances) {
      expect(statement.Condition).toEqual({ StringEquals: { [`ssm:resourceTag/${FLEET_TAG_KEY}`]: expect.anything() } });
    }
    const writes = statements.filter((statement) => [statement.Action].flat().includes('ssm:PutParameter'));
    expect(writes).toHaveLength(1);
    expect(renderValue(writes[0]!.Resource)).toContain(releaseParameter.logicalId);
  });

  test("lets Jenkins' role send only the document to tagged hosts, follow them, find hosts that joined, and record the release", () => {
    const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('JenkinsRole'))
      .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>);
    const actions = statements.flatMap((statement) => [statement.Action].flat());
    expect(actions).toEqual(
      expect.arrayContaining([
        'ssm:SendCommand',
        'ssm:ListCommands',
        'ssm:ListCommandInvocations',
        'ssm:GetCommandInvocation',
        'ssm:DescribeInstanceInformation',
        'ssm:PutParameter',
        's3:PutObject',
        // Uploads start unrecorded; recording a release marks its jars recorded (lib/deploy/retention.ts).
        's3:PutObjectTagging',
      ]),
    );
    const onInstances = statements.filter((statement) => statement.Action === 'ssm:SendCommand' && renderValue(statement.Resource).includes(':instance/'));
    expect(onInstances).toHaveLength(1);
    expect(onInstances[0]!.Condition).toEqual({ StringEquals: { [`ssm:resourceTag/${FLEET_TAG_KEY}`]: expect.anything() } });
    const puts = statements.filter((statement) => [statement.Action].flat().includes('ssm:PutParameter'));
    expect(puts.every((statement) => renderValue(statement.Resource).includes(releaseParameter.logicalId))).toBe(true);
  });

  test("the upload location expires only jars no release record names: uploads tagged unrecorded, never the recorded ones", () => {
    const bucket = onlyResource(template, 'AWS::S3::Bucket');
    expect(bucket.properties.LifecycleConfiguration).toEqual({
      Rules: [
        {
          Id: 'ExpireUnrecordedUploads',
          Prefix: 'cli-releases/',
          TagFilters: [{ Key: RELEASE_RETENTION_TAG.key, Value: RELEASE_RETENTION_TAG.unrecorded }],
          ExpirationInDays: 90,
          Status: 'Enabled',
        },
      ],
    });
  });

  test("lets the custom resource tag the uploaded jars its record names, and only those under the upload prefix", () => {
    const isComplete = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('DeploymentIsComplete'))![1];
    expect(renderValue(isComplete.Properties.Environment.Variables.BLUEGREEN_UPLOAD_LOCATION)).toMatch(/^s3:\/\/<ArtifactBucket[0-9A-F]+>\/cli-releases\/$/);
    const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('DeploymentIsComplete'))
      .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>);
    const tagging = statements.filter((statement) => [statement.Action].flat().includes('s3:PutObjectTagging'));
    expect(tagging).toHaveLength(1);
    expect([tagging[0]!.Action].flat()).toEqual(['s3:PutObjectTagging']);
    expect(renderValue(tagging[0]!.Resource)).toMatch(/^<ArtifactBucket[0-9A-F]+\.Arn>\/cli-releases\/\*$/);
  });

  test('runs Jenkins on its own instance, whose pipeline deploys to the fleet through the document', () => {
    const jenkins = onlyResource(template, 'AWS::EC2::Instance');
    const jenkinsUserData = renderValue(jenkins.properties.UserData);
    expect(jenkinsUserData).toContain("readonly HOST_ROLE='jenkins'");
    expect(jenkinsUserData).toContain(`readonly SIGNAL_RESOURCE='${jenkins.logicalId}'`);
    expect(jenkins.properties.BlockDeviceMappings).toEqual([expect.objectContaining({ Ebs: expect.objectContaining({ Encrypted: true }) })]);
    const settings = renderValue(resourceById(template, 'AWS::SSM::Parameter', 'JenkinsJenkinsSettings').properties.Value);
    expect(settings).toContain('deployMode=fleet');
    expect(settings).toContain(`fleetTarget=tag:${FLEET_TAG_KEY}=<AWS::StackName>/Ec2BlueGreen/Fleet`);
    expect(settings).toContain('maxConcurrency=1');
    expect(settings).toContain(`releaseParameter=<${releaseParameter.logicalId}>`);
    expect(settings).toMatch(/uploadLocation=s3:\/\/<ArtifactBucket[0-9A-F]+>\/cli-releases\//);
  });

  test('outputs what the operator command and the console need; no instance id', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs[STACK_OUTPUTS.instanceId]).toBeUndefined();
    expect(renderValue(outputs[STACK_OUTPUTS.fleetTarget]!.Value)).toBe(`tag:${FLEET_TAG_KEY}=<AWS::StackName>/Ec2BlueGreen/Fleet`);
    expect(outputs[STACK_OUTPUTS.fleetMaxConcurrency]!.Value).toBe('1');
    expect(outputs[STACK_OUTPUTS.fleetReleaseParameter]!.Value).toEqual({ Ref: releaseParameter.logicalId });
    expect(renderValue(outputs[STACK_OUTPUTS.siteUrl]!.Value)).toMatch(/^http:\/\/<FleetLoadBalancer[0-9A-F]+\.DNSName>\/$/);
    const deployCommand = renderValue(outputs.DeployCommand!.Value);
    expect(deployCommand).toContain(`--targets Key=tag:${FLEET_TAG_KEY},Values=<AWS::StackName>/Ec2BlueGreen/Fleet`);
    expect(deployCommand).toContain('--max-concurrency 1 --max-errors 0');
    expect(fleet.hosts).toBe(3);
  });
});

describe('a fleet with a certificate', () => {
  const certificateArn = 'arn:aws:acm:eu-west-1:111111111111:certificate/0f2a5a1e-1111-2222-3333-444455556666';
  const { template } = synthesize({ hosts: 2, certificateArn });

  test('serves HTTPS on 443 with the certificate and redirects HTTP to it', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: certificateArn }],
      DefaultActions: [Match.objectLike({ Type: 'forward' })],
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      DefaultActions: [Match.objectLike({ Type: 'redirect', RedirectConfig: Match.objectLike({ Port: '443', Protocol: 'HTTPS' }) })],
    });
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(renderValue(outputs[STACK_OUTPUTS.siteUrl]!.Value)).toMatch(/^https:\/\//);
  });
});

describe('fleet settings that cannot work get an error naming the key and the value', () => {
  test.each([
    [{ hosts: 0 }, /Context 'hosts' = 0: expected a whole number of hosts from 1/],
    [{ hosts: '2.5' }, /Context 'hosts' = "2.5"/],
    [{ hosts: 51 }, /Context 'hosts' = 51: .*to 50/],
    [{ hosts: 'three' }, /Context 'hosts' = "three"/],
    [{ maxConcurrency: '2' }, /Context 'maxConcurrency' = "2": only applies to a fleet/],
    [{ certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/0f2a5a1e-1111-2222-3333-444455556666' }, /Context 'certificateArn' .*only applies to a fleet/],
    [{ hosts: 3, maxConcurrency: '3' }, /Context 'maxConcurrency' = "3": would swap all 3 hosts at once/],
    [{ hosts: 3, maxConcurrency: '100%' }, /Context 'maxConcurrency' = "100%": would swap every host at once/],
    [{ hosts: 3, maxConcurrency: 'one' }, /Context 'maxConcurrency' = "one": expected how many hosts swap at once/],
    [{ hosts: 3, maxConcurrency: '0' }, /Context 'maxConcurrency' = "0"/],
    [{ hosts: 3, certificateArn: 'arn:aws:iam::111111111111:server-certificate/x' }, /Context 'certificateArn' = .*expected the ARN of an ACM certificate/],
    [
      { hosts: 3, tlsCertificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:tls-AbCdEf' },
      /Context 'tlsCertificateSecretArn' .*the load balancer terminates TLS: give an ACM certificate in 'certificateArn'/,
    ],
    [{ hosts: 3, jenkinsInstanceType: 't3.gigantic' }, /Context 'jenkinsInstanceType' = "t3.gigantic": not a known EC2 instance type/],
  ])('%j', (context, message) => {
    expect(() => configFrom(context)).toThrow(ConfigError);
    expect(() => configFrom(context)).toThrow(message);
  });

  test('numbers and percentages from the command line are accepted', () => {
    expect(configFrom({ hosts: '4', maxConcurrency: '25%' }).fleet).toMatchObject({ hosts: 4, maxConcurrency: '25%' });
    expect(configFrom({ hosts: 4, maxConcurrency: 2 }).fleet).toMatchObject({ hosts: 4, maxConcurrency: '2' });
    expect(configFrom({ hosts: 2 }).fleet).toMatchObject({ hosts: 2, maxConcurrency: '1' });
    expect(configFrom({ hosts: 2 }).fleet!.jenkinsInstanceType.toString()).toBe('t3.small');
  });
});

describe('one health timeout, from the context to every place that reads it', () => {
  test.each([
    ['one host', {}, 'HostFirstRelease'],
    ['a fleet', { hosts: 2 }, 'FleetFirstRelease'],
  ])('%s: the document default, the deployment and the first boot', (_mode, context, firstRelease) => {
    const { template } = synthesize({ ...context, healthTimeout: '90' });
    const document = onlyResource(template, 'AWS::SSM::Document').properties as { Content: { parameters: { healthTimeout: { default: string } } } };
    expect(document.Content.parameters.healthTimeout.default).toBe('90');
    expect(onlyResource(template, 'Custom::BlueGreenDeployment').properties[P.healthTimeout]).toBe('90');
    expect(renderValue(resourceById(template, 'AWS::SSM::Parameter', firstRelease).properties.Value).split('\n')).toContain('healthTimeout=90');
  });
});
