import { App } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, test } from 'vitest';
import { JENKINS_SETTINGS_KEYS, jenkinsJobName } from '../../lib/constructs/bluegreen-host.js';
import { readConfig } from '../../lib/config.js';
import { DEPLOYMENT_PROPERTIES } from '../../lib/contract.js';
import { Ec2BlueGreenStack } from '../../lib/ec2-bluegreen-stack.js';
import { engineTreeHash } from '../../lib/engine-bundle.js';
import { projectPath } from '../../lib/paths.js';
import { documentContent, fakeJar, onlyResource, renderValue, resolvePseudo, resourceById, synthesize } from './synth.js';

// GIVEN the default context (cdk.json), shared by the tests that only read it.
const { template, stack } = synthesize();

type Ingress = { CidrIp?: string; CidrIpv6?: string; FromPort: number; ToPort: number; IpProtocol: string };

function ingressRules(t = template): Ingress[] {
  return Object.values(t.findResources('AWS::EC2::SecurityGroup')).flatMap(
    (group) => (group.Properties.SecurityGroupIngress ?? []) as Ingress[],
  );
}

function portsOpenTo(cidr: string, t = template): number[] {
  return ingressRules(t)
    .filter((rule) => rule.CidrIp === cidr)
    .map((rule) => rule.FromPort)
    .sort((a, b) => a - b);
}

/** Every IAM statement in the template, from inline and managed policies alike. */
function iamStatements(t = template): Array<{ Action: string | string[]; Resource: unknown }> {
  const documents = [
    ...Object.values(t.findResources('AWS::IAM::Policy')).map((policy) => policy.Properties.PolicyDocument),
    ...Object.values(t.findResources('AWS::IAM::ManagedPolicy')).map((policy) => policy.Properties.PolicyDocument),
    ...Object.values(t.findResources('AWS::IAM::Role')).flatMap((role) =>
      (role.Properties.Policies ?? []).map((policy: { PolicyDocument: unknown }) => policy.PolicyDocument),
    ),
  ];
  return documents.flatMap((document) => document.Statement);
}

describe('network', () => {
  test('a new VPC with public subnets only and no NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourcePropertiesCountIs('AWS::EC2::Subnet', { MapPublicIpOnLaunch: true }, 2);
    template.resourcePropertiesCountIs('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false }, 0);
  });

  test('rejected traffic is logged to a log group with a retention', () => {
    template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT', LogDestinationType: 'cloud-watch-logs' });
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: Match.anyValue() });
  });

  describe('an existing VPC', () => {
    const account = '111111111111';
    const region = 'eu-west-1';
    const vpcId = 'vpc-0123456789abcdef0';
    /** What `cdk synth` caches in cdk.context.json after looking the VPC up. */
    function cachedLookup(subnetGroups: Array<{ name: string; type: 'Public' | 'Private'; subnetId: string }>) {
      return {
        [`vpc-provider:account=${account}:filter.vpc-id=${vpcId}:region=${region}:returnAsymmetricSubnets=true`]: {
          vpcId,
          vpcCidrBlock: '10.20.0.0/16',
          ownerAccountId: account,
          availabilityZones: [],
          subnetGroups: subnetGroups.map(({ name, type, subnetId }) => ({
            name,
            type,
            subnets: [{ subnetId, cidr: '10.20.1.0/24', availabilityZone: `${region}a`, routeTableId: 'rtb-0123456789abcdef0' }],
          })),
        },
      };
    }

    test('is looked up, not created, and the host goes into its public subnet', () => {
      // WHEN
      const existing = synthesize(
        {
          vpcId,
          ...cachedLookup([
            { name: 'Public', type: 'Public', subnetId: 'subnet-0aaaaaaaaaaaaaaaa' },
            { name: 'Private', type: 'Private', subnetId: 'subnet-0bbbbbbbbbbbbbbbb' },
          ]),
        },
        { CDK_DEFAULT_ACCOUNT: account, CDK_DEFAULT_REGION: region },
      );

      // THEN
      existing.template.resourceCountIs('AWS::EC2::VPC', 0);
      existing.template.resourceCountIs('AWS::EC2::FlowLog', 0);
      existing.template.hasResourceProperties('AWS::EC2::Instance', { SubnetId: 'subnet-0aaaaaaaaaaaaaaaa' });
      existing.template.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: vpcId });
      expect(existing.stack.environment).toBe(`aws://${account}/${region}`);
    });

    test('without public subnets, the host goes into a private subnet with egress', () => {
      const privateOnly = synthesize(
        { vpcId, ...cachedLookup([{ name: 'Private', type: 'Private', subnetId: 'subnet-0bbbbbbbbbbbbbbbb' }]) },
        { CDK_DEFAULT_ACCOUNT: account, CDK_DEFAULT_REGION: region },
      );
      privateOnly.template.hasResourceProperties('AWS::EC2::Instance', { SubnetId: 'subnet-0bbbbbbbbbbbbbbbb' });
    });
  });

  test('the default stack pins no account or region', () => {
    expect(stack.environment).toBe('aws://unknown-account/unknown-region');
  });
});

describe('inbound rules', () => {
  test('by default only port 80 is open, from anywhere', () => {
    expect(ingressRules()).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 80, ToPort: 80, IpProtocol: 'tcp' }),
    ]);
  });

  test('22, 8080, 8081 and 8082 are never open to anywhere, in any configuration the context allows', () => {
    const variants = [
      template,
      synthesize({ sshKeyPairName: 'ops', sshAllowedCidrs: '192.0.2.0/24' }).template,
      synthesize({ httpAllowedCidrs: '198.51.100.0/24' }).template,
    ];
    for (const variant of variants) {
      for (const rule of ingressRules(variant)) {
        const anywhere = rule.CidrIp === '0.0.0.0/0' || rule.CidrIpv6 === '::/0';
        if (anywhere) expect([80, 443]).toContain(rule.FromPort);
        expect(rule.FromPort).toBe(rule.ToPort);
        expect([8080, 8081, 8082]).not.toContain(rule.FromPort);
      }
    }
  });

  test('HTTP is limited to httpAllowedCidrs when given', () => {
    const limited = synthesize({ httpAllowedCidrs: '198.51.100.0/24,203.0.113.8/32' }).template;
    expect(portsOpenTo('198.51.100.0/24', limited)).toEqual([80]);
    expect(portsOpenTo('203.0.113.8/32', limited)).toEqual([80]);
    expect(portsOpenTo('0.0.0.0/0', limited)).toEqual([]);
  });

  test('443 opens with a TLS certificate secret, and the host may read that secret only', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:bluegreen/tls-AbCdEf';
    const tls = synthesize({ tlsCertificateSecretArn: arn }).template;
    expect(portsOpenTo('0.0.0.0/0', tls)).toEqual([80, 443]);
    const secretResources = iamStatements(tls)
      .filter((statement) => [statement.Action].flat().includes('secretsmanager:GetSecretValue'))
      .flatMap((statement) => [statement.Resource].flat());
    expect(secretResources).toContain(arn);
  });

  test('Jenkins 8080 (plain HTTP) opens to no network: synth refuses jenkinsAllowedCidrs and names the port forward', () => {
    expect(() => synthesize({ jenkinsAllowedCidrs: ['203.0.113.0/24'] })).toThrow(
      /'jenkinsAllowedCidrs' = \["203.0.113.0\/24"\]: would open Jenkins' port 8080 .*plain HTTP.*AWS-StartPortForwardingSession/,
    );
    expect(() => synthesize({ jenkinsAllowedCidrs: '0.0.0.0/0', jenkinsAllowAnywhere: true })).toThrow(
      /'jenkinsAllowAnywhere' = true: Jenkins serves plain HTTP/,
    );
  });

  test.each([
    ['the single host', {}],
    ["the fleet's Jenkins host", { hosts: 2 }],
  ])('%s refuses jenkinsAllowedCidrs from code that builds the stack without the context reader', (_name, context) => {
    const app = new App({ context: { artifact: fakeJar(), ...context } });
    const config = { ...readConfig((key) => app.node.tryGetContext(key)), jenkinsAllowedCidrs: ['203.0.113.0/24'] };
    expect(() => new Ec2BlueGreenStack(app, 'Ec2BlueGreen', { config })).toThrow(
      /jenkinsAllowedCidrs = \["203.0.113.0\/24"\]: Jenkins serves plain HTTP.*nothing was built.*AWS-StartPortForwardingSession/,
    );
  });

  test('SSH needs both a key pair and a CIDR; a key pair alone installs the key and opens nothing', () => {
    const keyOnly = synthesize({ sshKeyPairName: 'ops' }).template;
    keyOnly.hasResourceProperties('AWS::EC2::Instance', { KeyName: 'ops' });
    expect(ingressRules(keyOnly).map((rule) => rule.FromPort)).toEqual([80]);

    const both = synthesize({ sshKeyPairName: 'ops', sshAllowedCidrs: '192.0.2.0/24' }).template;
    expect(portsOpenTo('192.0.2.0/24', both)).toEqual([22]);
    template.hasResourceProperties('AWS::EC2::Instance', { KeyName: Match.absent() });
  });
});

describe('instance', () => {
  test('Amazon Linux 2023 resolved at launch, so a new AMI does not replace the host on the next deploy', () => {
    template.hasResourceProperties('AWS::EC2::Instance', {
      ImageId: 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
    });
    synthesize({ instanceType: 't4g.small' }).template.hasResourceProperties('AWS::EC2::Instance', {
      InstanceType: 't4g.small',
      ImageId: 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64',
    });
  });

  test('t3.small by default, another type by context', () => {
    template.hasResourceProperties('AWS::EC2::Instance', { InstanceType: 't3.small' });
    synthesize({ instanceType: 'm7i.large' }).template.hasResourceProperties('AWS::EC2::Instance', { InstanceType: 'm7i.large' });
  });

  test('IMDSv2 required', () => {
    template.hasResourceProperties('AWS::EC2::Instance', {
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
    });
  });

  test('every volume is encrypted gp3; the root volume is 20 GiB', () => {
    const { properties } = onlyResource(template, 'AWS::EC2::Instance');
    expect(properties.BlockDeviceMappings).toEqual([
      { DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeType: 'gp3', VolumeSize: 20, DeleteOnTermination: true } },
    ]);
    template.resourceCountIs('AWS::EC2::Volume', 0);
  });

  test('detailed monitoring on', () => {
    template.hasResourceProperties('AWS::EC2::Instance', { Monitoring: true });
  });

  test('CloudFormation waits for one success signal from the first boot, with a timeout', () => {
    template.hasResource('AWS::EC2::Instance', {
      CreationPolicy: { ResourceSignal: { Count: 1, Timeout: 'PT30M' } },
    });
  });
});

describe('instance role', () => {
  test('has AmazonSSMManagedInstanceCore for SSM Agent and Session Manager', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'ec2.amazonaws.com' } })],
      }),
      ManagedPolicyArns: [
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/AmazonSSMManagedInstanceCore']] },
      ],
    });
  });

  test('no statement anywhere in the stack allows a wildcard action', () => {
    for (const statement of iamStatements()) {
      for (const action of [statement.Action].flat()) {
        expect(action).not.toMatch(/\*/);
      }
    }
  });

  test('reads exactly four asset objects (the engine bundle, the Jenkins bundle, the artifact and the metadata guard) and the jars the operator command uploads', () => {
    const s3 = iamStatements().filter((statement) => [statement.Action].flat().some((action) => action.startsWith('s3:')));
    expect(s3).toHaveLength(1);
    expect(s3[0]!.Action).toBe('s3:GetObject');
    const objects = (s3[0]!.Resource as unknown[]).map(renderValue);
    const assets = objects.filter((arn) => arn.includes(':s3:::cdk-'));
    expect(assets).toHaveLength(4);
    for (const object of assets) {
      expect(object).toMatch(/^arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>\/[0-9a-f]{64}\.(zip|jar|sh)$/);
    }
    expect(assets.map((arn) => /\.[a-z]+$/.exec(arn)![0]).sort()).toEqual(['.jar', '.sh', '.zip', '.zip']);
    expect(objects.filter((arn) => !assets.includes(arn))).toEqual([expect.stringMatching(/^<ArtifactBucket[0-9A-F]{8}\.Arn>\/cli-releases\/\*$/)]);
  });

  test('writes deploy output only to the document log group', () => {
    const { logicalId } = onlyResource(template, 'AWS::SSM::Document');
    const logGroupId = Object.keys(template.findResources('AWS::Logs::LogGroup')).find((id) => id.startsWith('DeployDocument'));
    expect(logicalId).toMatch(/^DeployDocument/);
    expect(iamStatements()).toContainEqual({
      Action: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
      Effect: 'Allow',
      Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
    });
  });

  test('signals only its own stack, and reads only its own two parameters: the first release and the Jenkins settings', () => {
    const parameters = ['HostFirstRelease', 'HostJenkinsSettings'].map(
      (prefix) => `arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/<${resourceById(template, 'AWS::SSM::Parameter', prefix).logicalId}>`,
    );
    const statements = iamStatements().map((statement) => ({
      ...statement,
      Resource: Array.isArray(statement.Resource) ? statement.Resource.map(renderValue) : renderValue(statement.Resource),
    }));
    expect(statements).toContainEqual(
      expect.objectContaining({ Action: 'cloudformation:SignalResource', Resource: '<AWS::StackId>' }),
    );
    const parameterReads = statements.filter((statement) => [statement.Action].flat().includes('ssm:GetParameter'));
    expect(parameterReads.flatMap((statement) => [statement.Resource].flat()).sort()).toEqual(parameters.sort());
  });
});

describe('first release', () => {
  test('the parameter names the engine bundle, the artifact, its checksum, version and health timeout', () => {
    const { properties } = resourceById(template, 'AWS::SSM::Parameter', 'HostFirstRelease');
    const lines = renderValue(properties.Value).split('\n');
    const artifact = stack.host!.artifact;
    expect(lines).toEqual([
      expect.stringMatching(/^engineUri=s3:\/\/cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>\/[0-9a-f]{64}\.zip$/),
      expect.stringMatching(/^artifactUri=s3:\/\/cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>\/[0-9a-f]{64}\.jar$/),
      `sha256=${artifact.sha256}`,
      `version=${artifact.version}`,
      'healthTimeout=120',
      // The default t3.small's slot budget (lib/memory-budget.ts), which the first boot adds to the engine's configuration.
      'BLUEGREEN_SLOT_HEAP_MIB=320',
      'BLUEGREEN_SLOT_MEMORY_MIB=448',
    ]);
  });

  test('the engine is one zipped asset of assets/instance, the artifact one file asset', () => {
    const assets = stack.node.findAll().filter((node) => node.node.id === 'EngineBundle' || node.node.id === 'Artifact');
    expect(assets.map((node) => node.node.path).sort()).toEqual(['Ec2BlueGreen/Host/Artifact', 'Ec2BlueGreen/Host/EngineBundle']);
    expect(stack.host!.engineAsset.isZipArchive).toBe(true);
    expect(stack.host!.artifactAsset.isFile).toBe(true);
  });

  test('every deploy asks for the engine bundle, whose location and content hash the document holds, so an engine change reaches the running host', () => {
    const deployment = onlyResource(template, 'Custom::BlueGreenDeployment').properties;
    const engineUri = resolvePseudo(deployment[DEPLOYMENT_PROPERTIES.engineUri]) as string;
    expect(engineUri).toMatch(new RegExp(`/${stack.host!.engineAsset.assetHash}\\.zip$`));
    const script = documentContent(template).mainSteps[0].inputs.runCommand as string[];
    expect(script).toContain(`readonly ENGINE_URI='${engineUri}'`);
    expect(script).toContain(`readonly ENGINE_HASH='${engineTreeHash(projectPath('assets', 'instance'))}'`);
  });
});

describe('outputs', () => {
  const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
  const output = (name: string) => renderValue(outputs[name]?.Value);
  const instance = onlyResource(template, 'AWS::EC2::Instance').logicalId;
  const documentId = onlyResource(template, 'AWS::SSM::Document').logicalId;

  test('site URL and instance id', () => {
    expect(output('SiteUrl')).toBe(`http://<${instance}.PublicDnsName>/`);
    expect(output('InstanceId')).toBe(`<${instance}>`);
  });

  test('Jenkins access is a port-forward command: no network reaches its plain HTTP', () => {
    expect(output('JenkinsAccess')).toBe(
      `aws ssm start-session --region <AWS::Region> --target <${instance}> --document-name AWS-StartPortForwardingSession ` +
        `--parameters '{"portNumber":["8080"],"localPortNumber":["8080"]}' # then open http://localhost:8080/`,
    );
  });

  test('document name and a ready send-command line for the document, with output to its log group', () => {
    expect(output('DeployDocumentName')).toBe(`<${documentId}>`);
    const artifact = stack.host!.artifact;
    expect(output('DeployCommand')).toMatch(
      new RegExp(
        `^aws ssm send-command --region <AWS::Region> --document-name <${documentId}> --targets Key=InstanceIds,Values=<${instance}> ` +
          `--parameters '\\{"action":\\["deploy"\\],"artifactUri":\\["s3://cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>/[0-9a-f]{64}\\.jar"\\],` +
          `"sha256":\\["${artifact.sha256}"\\],"version":\\["${artifact.version}"\\]\\}' ` +
          `--cloud-watch-output-config CloudWatchOutputEnabled=true,CloudWatchLogGroupName=<DeployDocumentOutputLogGroup[0-9A-F]+>$`,
      ),
    );
  });
});

describe('jenkins', () => {
  const withJob = {
    appRepositoryUrl: 'https://github.com/acme/shop.git',
    appRepositoryBranch: 'release/1.x',
    githubTokenSecret: 'ci/github-token',
  };
  const adminSecretId = () => resourceById(template, 'AWS::SecretsManager::Secret', 'HostJenkinsAdminPassword').logicalId;

  /** The resources the instance role may call GetSecretValue on, rendered. */
  function readableSecrets(t = template): string[] {
    return iamStatements(t)
      .filter((statement) => [statement.Action].flat().includes('secretsmanager:GetSecretValue'))
      .flatMap((statement) => [statement.Resource].flat())
      .map(renderValue)
      .sort();
  }

  function settingsOf(t = template): Record<string, string> {
    const text = renderValue(resourceById(t, 'AWS::SSM::Parameter', 'HostJenkinsSettings').properties.Value);
    return Object.fromEntries(text.split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  }

  test('the stack generates the admin password in Secrets Manager, letters and digits, and deletes it with the stack', () => {
    template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    template.hasResource('AWS::SecretsManager::Secret', {
      Properties: {
        GenerateSecretString: { PasswordLength: 32, ExcludePunctuation: true },
        SecretString: Match.absent(),
      },
      DeletionPolicy: 'Delete',
    });
  });

  test('the instance may read exactly that secret in Secrets Manager, and nothing else there', () => {
    expect(readableSecrets()).toEqual([`<${adminSecretId()}>`]);
    const secretActions = iamStatements().flatMap((statement) => [statement.Action].flat()).filter((action) => action.startsWith('secretsmanager:'));
    expect([...new Set(secretActions)].sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
  });

  test('with a GitHub token secret, the instance may read that one secret too: by name (ARN suffix matched) or by ARN', () => {
    expect(readableSecrets(synthesize(withJob).template)).toEqual([
      `<${adminSecretId()}>`,
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:ci/github-token-??????',
    ]);
    const arn = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:ci/github-token-AbCdEf';
    expect(readableSecrets(synthesize({ githubTokenSecret: arn }).template)).toEqual([arn, `<${adminSecretId()}>`].sort());
  });

  test('the settings parameter: every key configure-jenkins reads, secrets by ARN only, no job and port-forward by default', () => {
    const settings = settingsOf();
    expect(Object.keys(settings)).toEqual([...JENKINS_SETTINGS_KEYS]);
    expect(settings).toEqual({
      bundleUri: expect.stringMatching(/^s3:\/\/cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>\/[0-9a-f]{64}\.zip$/),
      adminUser: 'admin',
      adminPasswordSecret: `<${adminSecretId()}>`,
      githubTokenSecret: '',
      jobName: '',
      repositoryUrl: '',
      repositoryBranch: '',
      jenkinsPort: '8080',
      jenkinsReachedThrough: 'port-forward',
      jenkinsHeapMiB: '256',
      jenkinsMemoryMiB: '448',
      buildHeapMiB: '256',
      buildMemoryMiB: '448',
    });
  });

  test('the settings parameter with a job: its name from the repository, the URL, the branch, the token secret, reached through the port forward', () => {
    expect(settingsOf(synthesize(withJob).template)).toMatchObject({
      githubTokenSecret: 'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:ci/github-token',
      jobName: 'shop',
      repositoryUrl: 'https://github.com/acme/shop.git',
      repositoryBranch: 'release/1.x',
      jenkinsReachedThrough: 'port-forward',
    });
  });

  test('the Jenkins tree is one zipped asset of assets/jenkins, and changing the settings does not change the user data', () => {
    expect(stack.host!.jenkinsAsset.isZipArchive).toBe(true);
    expect(settingsOf().bundleUri).toContain(`${stack.host!.jenkinsAsset.assetHash}.zip`);
    const userData = (t: typeof template) => renderValue(onlyResource(t, 'AWS::EC2::Instance').properties.UserData);
    expect(userData(synthesize(withJob).template)).toBe(userData(template));
  });

  test.each([
    ['https://github.com/acme/shop.git', 'shop'],
    ['https://github.com/acme/shop', 'shop'],
    ['https://git.example.com/team/shop/', 'shop'],
    ['git@github.com:acme/my.app.git', 'my.app'],
    ['git@example.com:shop', 'shop'],
    ['ssh://git@example.com:2222/team/.hidden.git', 'hidden'],
  ])('names the job for %s %s', (url, name) => {
    expect(jenkinsJobName(url)).toBe(name);
  });
});

describe('jenkins outputs', () => {
  const outputsOf = (t = template) => {
    const outputs = t.toJSON().Outputs as Record<string, { Value: unknown }>;
    return (name: string) => renderValue(outputs[name]?.Value);
  };
  const output = outputsOf();

  test('the admin password is printed by a Secrets Manager command: the output holds the secret ARN, never the value', () => {
    const secretId = resourceById(template, 'AWS::SecretsManager::Secret', 'HostJenkinsAdminPassword').logicalId;
    expect(output('JenkinsAdminPasswordCommand')).toBe(
      `aws secretsmanager get-secret-value --region <AWS::Region> --secret-id <${secretId}> --query SecretString --output text`,
    );
    expect(Object.keys(template.toJSON().Outputs)).not.toContain('JenkinsInitialPasswordCommand');
  });

  test('without an app repository, the job output says there is none and how to get one', () => {
    expect(output('JenkinsJob')).toBe(
      'none: deploy with -c appRepositoryUrl=https://github.com/OWNER/REPO (and -c appRepositoryBranch, default main) to create it',
    );
  });

  test('with a job but Jenkins closed to the network, it says the job polls', () => {
    expect(outputsOf(synthesize({ appRepositoryUrl: 'git@github.com:acme/shop.git' }).template)('JenkinsJob')).toBe(
      "'shop' builds git@github.com:acme/shop.git (branch main) with its Jenkinsfile; GitHub cannot reach this Jenkins " +
        '(jenkinsAllowedCidrs is empty), so the job looks for new commits every 2 minutes',
    );
  });

  test('with a job, Jenkins is never opened for webhooks: synth refuses jenkinsAllowedCidrs', () => {
    const open = { appRepositoryUrl: 'https://github.com/acme/shop.git', githubTokenSecret: 'ci/github-token', jenkinsAllowedCidrs: '203.0.113.0/24' };
    expect(() => synthesize(open)).toThrow(/'jenkinsAllowedCidrs' = "203.0.113.0\/24": .*plain HTTP.*GitHub webhooks.*your own TLS endpoint/);
  });
});
