import { Aws, Duration, RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { ArtifactFile } from '../artifact.js';
import { HOST_PATHS } from '../contract.js';
import { projectPath } from '../paths.js';
import { renderScript } from '../template.js';

/** Ports the host listens on. The app slots (8081/8082) bind to 127.0.0.1 and are never opened. */
export const HOST_PORTS = { http: 80, https: 443, jenkins: 8080, ssh: 22 } as const;

/** Jenkins' one user, created by its configuration as code with the stack's generated password. */
export const JENKINS_ADMIN_USER = 'admin';

/** Where the host installs `assets/jenkins/` (configure-jenkins, bluegreen-pipeline, the templates). */
export const JENKINS_TOOLS_DIR = '/usr/local/lib/bluegreen-jenkins';

/** How often the job looks for new commits when GitHub cannot reach Jenkins (jenkins.yaml.tmpl). */
export const JENKINS_POLL_MINUTES = 2;

/**
 * Keys of the Jenkins settings parameter, read on the host by `assets/jenkins/configure-jenkins`
 * (its SETTING_KEYS) and by the first boot (`bundleUri`). Values name secrets, never hold them.
 */
export const JENKINS_SETTINGS_KEYS = [
  'bundleUri',
  'adminUser',
  'adminPasswordSecret',
  'githubTokenSecret',
  'jobName',
  'repositoryUrl',
  'repositoryBranch',
  'jenkinsPort',
  'jenkinsReachedThrough',
] as const;
export type JenkinsSettings = Record<(typeof JENKINS_SETTINGS_KEYS)[number], string>;

const USER_DATA_SHEBANG = '#!/bin/bash';

const AL2023_AMI_PARAMETER = {
  [ec2.InstanceArchitecture.X86_64]: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
  [ec2.InstanceArchitecture.ARM_64]: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64',
} as const;

export interface BlueGreenHostSsh {
  /** Key pair installed for `ec2-user`. */
  readonly keyPair: ec2.IKeyPair;
  /** Sources allowed on port 22; may be empty (the key then serves SSH over Session Manager). */
  readonly allowedCidrs: readonly string[];
}

/** The pipeline job Jenkins runs for the app's repository. */
export interface BlueGreenHostJenkinsJob {
  /** The app's repository: `https://…`, `git@host:owner/repo` or `ssh://…` (checked by lib/config.ts). */
  readonly repositoryUrl: string;
  /** The branch whose pushes are built and deployed. */
  readonly branch: string;
}

export interface BlueGreenHostJenkins {
  /**
   * The pipeline job: builds the repository's Jenkinsfile on each push to the branch.
   * @default - no job; Jenkins runs with its admin user only
   */
  readonly job?: BlueGreenHostJenkinsJob;

  /**
   * An existing secret whose value is a GitHub token: Jenkins checks out over HTTPS with it and,
   * when GitHub can reach Jenkins, registers the push webhook. The instance may read this secret.
   * @default - no GitHub credentials: a public repository, or an SSH deploy key set up by hand
   */
  readonly githubTokenSecret?: secretsmanager.ISecret;

  /**
   * The Jenkins tree (JCasC template, plugin list, sudoers rule, scripts), shipped as one zipped asset.
   * @default - `assets/jenkins/` from this repository
   */
  readonly jenkinsDir?: string;
}

export interface BlueGreenHostProps {
  readonly vpc: ec2.IVpc;

  /**
   * Where the instance goes; it needs a route to the internet for packages and SSM.
   * @default - the VPC's public subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * @default t3.small
   */
  readonly instanceType?: ec2.InstanceType;

  /**
   * Sources allowed on port 80 (and 443 with `tlsCertificateSecret`).
   * @default ['0.0.0.0/0']
   */
  readonly httpAllowedCidrs?: readonly string[];

  /**
   * Sources allowed on Jenkins' port 8080. The caller decides whether the whole internet may
   * be one of them (`lib/config.ts` refuses it unless asked explicitly).
   * @default - none: Jenkins is reached through a Session Manager port-forwarding session
   */
  readonly jenkinsAllowedCidrs?: readonly string[];

  /**
   * SSH access.
   * @default - no key pair and no port 22: shell access is Session Manager
   */
  readonly ssh?: BlueGreenHostSsh;

  /**
   * Secret holding the TLS certificate and key for Nginx; port 443 opens and the instance may
   * read this one secret.
   * @default - no TLS, port 443 closed
   */
  readonly tlsCertificateSecret?: secretsmanager.ISecret;

  /** The jar deployed on first boot. */
  readonly artifact: ArtifactFile;

  /**
   * Health timeout of the first deploy, in seconds.
   * @default 120
   */
  readonly healthTimeoutSeconds?: number;

  /**
   * How long CloudFormation waits for the first boot to signal success before it fails the stack.
   * @default Duration.minutes(30)
   */
  readonly bootTimeout?: Duration;

  /**
   * Size of the encrypted gp3 root volume (Jenkins workspaces and kept releases live there).
   * @default Size.gibibytes(20)
   */
  readonly rootVolumeSize?: Size;

  /**
   * Jenkins' job and GitHub access.
   * @default - Jenkins with its admin user, no job and no GitHub credentials
   */
  readonly jenkins?: BlueGreenHostJenkins;

  /**
   * The host engine tree, shipped as one zipped asset.
   * @default - `assets/instance/` from this repository
   */
  readonly engineDir?: string;

  /**
   * The first-boot script (with `@@...@@` placeholders).
   * @default - `assets/userdata/bootstrap.sh` from this repository
   */
  readonly userDataPath?: string;
}

/**
 * One Amazon Linux 2023 instance running Nginx, the blue/green app slots and Jenkins, set up by
 * a user-data script under a CreationPolicy, with its security group and least-privilege role.
 */
export class BlueGreenHost extends Construct {
  public readonly instance: ec2.Instance;
  public readonly role: iam.Role;
  public readonly securityGroup: ec2.SecurityGroup;
  /** The zipped `assets/instance/` tree. */
  public readonly engineAsset: s3assets.Asset;
  /** The jar deployed on first boot. */
  public readonly artifactAsset: s3assets.Asset;
  /** The artifact file's checksum and label. */
  public readonly artifact: ArtifactFile;
  /** Holds the engine and first-release locations the first boot reads. */
  public readonly firstReleaseParameter: ssm.StringParameter;
  /** The zipped `assets/jenkins/` tree. */
  public readonly jenkinsAsset: s3assets.Asset;
  /** Generated password of Jenkins' admin user; the instance may read it, nothing else in the stack does. */
  public readonly jenkinsAdminPassword: secretsmanager.Secret;
  /** What the first boot configures Jenkins with (KEY=VALUE lines, no secret values). */
  public readonly jenkinsSettingsParameter: ssm.StringParameter;
  /** The pipeline job's name, when there is a job. */
  public readonly jenkinsJobName?: string;
  /** Whether GitHub (and people) reach Jenkins over the network, or only through a port forward. */
  public readonly jenkinsReachedThrough: 'network' | 'port-forward';

  constructor(scope: Construct, id: string, props: BlueGreenHostProps) {
    super(scope, id);
    this.artifact = props.artifact;
    const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL);

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Blue/green host: HTTP(S) to Nginx, Jenkins only where allowed, no SSH unless configured',
      // The host runs CI jobs (git, package registries): outbound stays open.
      allowAllOutbound: true,
    });
    const inbound: Array<{ cidr: string; port: number; purpose: string }> = [
      ...(props.httpAllowedCidrs ?? ['0.0.0.0/0']).flatMap((cidr) => [
        { cidr, port: HOST_PORTS.http, purpose: 'HTTP to Nginx' },
        ...(props.tlsCertificateSecret === undefined ? [] : [{ cidr, port: HOST_PORTS.https, purpose: 'HTTPS to Nginx' }]),
      ]),
      ...(props.jenkinsAllowedCidrs ?? []).map((cidr) => ({ cidr, port: HOST_PORTS.jenkins, purpose: 'Jenkins' })),
      ...(props.ssh?.allowedCidrs ?? []).map((cidr) => ({ cidr, port: HOST_PORTS.ssh, purpose: 'SSH' })),
    ];
    for (const { cidr, port, purpose } of inbound) {
      this.securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), `${purpose} from ${cidr}`);
    }
    if (inbound.some(({ cidr }) => cidr.endsWith('/0'))) {
      Validations.of(this.securityGroup).acknowledge({
        id: 'AwsSolutions-EC23',
        reason:
          'The host serves a public site: 80 (and 443 with TLS) are open to httpAllowedCidrs, by default anywhere. ' +
          'Jenkins is open to anywhere only when jenkinsAllowAnywhere is set explicitly, and lib/config.ts never ' +
          'opens SSH to anywhere; the app slots (8081/8082) bind to 127.0.0.1 and are never opened.',
      });
    }

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'Blue/green host: SSM agent, its own artifacts, deploy output logs',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      reason:
        "AmazonSSMManagedInstanceCore is AWS's minimal policy for SSM Agent (Run Command, Session Manager); AWS " +
        'updates it as the agent changes, and its ssm/ssmmessages/ec2messages actions do not support resource scoping.',
    });

    this.engineAsset = new s3assets.Asset(this, 'EngineBundle', {
      path: props.engineDir ?? projectPath('assets', 'instance'),
    });
    this.artifactAsset = new s3assets.Asset(this, 'Artifact', { path: props.artifact.path });
    this.grantArtifactRead(this.engineAsset);
    this.grantArtifactRead(this.artifactAsset);
    props.tlsCertificateSecret?.grantRead(this.role);

    this.firstReleaseParameter = new ssm.StringParameter(this, 'FirstRelease', {
      description: 'Engine bundle and first release the blue/green host installs on first boot (KEY=VALUE lines)',
      stringValue: [
        `engineUri=${this.engineAsset.s3ObjectUrl}`,
        `artifactUri=${this.artifactAsset.s3ObjectUrl}`,
        `sha256=${props.artifact.sha256}`,
        `version=${props.artifact.version}`,
        `healthTimeout=${props.healthTimeoutSeconds ?? 120}`,
        ...(props.tlsCertificateSecret === undefined ? [] : [`tlsSecret=${props.tlsCertificateSecret.secretArn}`]),
      ].join('\n'),
    });
    this.firstReleaseParameter.grantRead(this.role);

    this.jenkinsReachedThrough = (props.jenkinsAllowedCidrs ?? []).length > 0 ? 'network' : 'port-forward';
    this.jenkinsJobName = props.jenkins?.job === undefined ? undefined : jenkinsJobName(props.jenkins.job.repositoryUrl);
    this.jenkinsAsset = new s3assets.Asset(this, 'JenkinsBundle', {
      path: props.jenkins?.jenkinsDir ?? projectPath('assets', 'jenkins'),
    });
    this.grantArtifactRead(this.jenkinsAsset);
    this.jenkinsAdminPassword = new secretsmanager.Secret(this, 'JenkinsAdminPassword', {
      description: `Password of Jenkins' '${JENKINS_ADMIN_USER}' user on the blue/green host (generated; the host reads it at boot)`,
      // Letters and digits only: nothing in it needs escaping in JCasC or in curl's config syntax.
      generateSecretString: { passwordLength: 32, excludePunctuation: true },
      // The password is only good for this host's Jenkins, which the stack also deletes.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.jenkinsAdminPassword.grantRead(this.role);
    Validations.of(this.jenkinsAdminPassword).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        "Jenkins reads its admin password into its own user database at start (JCasC), so a rotation Lambda " +
        'could not change the live password; rotate by putting a new value and restarting Jenkins ' +
        '(or replacing the host), which re-reads it.',
    });
    const githubTokenSecret = props.jenkins?.githubTokenSecret;
    if (githubTokenSecret !== undefined) {
      githubTokenSecret.grantRead(this.role);
      this.acknowledgeSecretNameWildcard(githubTokenSecret);
    }
    const job = props.jenkins?.job;
    const settings: JenkinsSettings = {
      bundleUri: this.jenkinsAsset.s3ObjectUrl,
      adminUser: JENKINS_ADMIN_USER,
      adminPasswordSecret: this.jenkinsAdminPassword.secretArn,
      githubTokenSecret: githubTokenSecret?.secretArn ?? '',
      jobName: this.jenkinsJobName ?? '',
      repositoryUrl: job?.repositoryUrl ?? '',
      repositoryBranch: job?.branch ?? '',
      jenkinsPort: String(HOST_PORTS.jenkins),
      jenkinsReachedThrough: this.jenkinsReachedThrough,
    };
    this.jenkinsSettingsParameter = new ssm.StringParameter(this, 'JenkinsSettings', {
      description: 'Jenkins settings the blue/green host applies on first boot (KEY=VALUE lines; names of secrets, not their values)',
      stringValue: JENKINS_SETTINGS_KEYS.map((key) => `${key}=${settings[key]}`).join('\n'),
    });
    this.jenkinsSettingsParameter.grantRead(this.role);

    const architecture = instanceType.architecture;
    if (architecture !== ec2.InstanceArchitecture.X86_64 && architecture !== ec2.InstanceArchitecture.ARM_64) {
      throw new Error(`BlueGreenHost: instanceType ${instanceType} has no Amazon Linux 2023 image`);
    }
    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PUBLIC },
      instanceType,
      // Resolved by EC2 at launch: a newer AMI does not replace the running host on the next deploy.
      machineImage: ec2.MachineImage.resolveSsmParameterAtLaunch(AL2023_AMI_PARAMETER[architecture], {
        os: ec2.OperatingSystemType.LINUX,
      }),
      securityGroup: this.securityGroup,
      role: this.role,
      keyPair: props.ssh?.keyPair,
      userData: ec2.UserData.forLinux({ shebang: USER_DATA_SHEBANG }),
      httpTokens: ec2.HttpTokens.REQUIRED,
      httpEndpoint: true,
      detailedMonitoring: true,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs((props.rootVolumeSize ?? Size.gibibytes(20)).toGibibytes(), {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });

    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-EC29',
      reason:
        'A single host whose life the stack owns: `cdk destroy` must be able to remove it, and a replacement is ' +
        'rebuilt by its user data. Termination protection would make every teardown a manual console step.',
    });
    Validations.of(this.instance).acknowledge({
      id: 'CloudFormation-Validate::E1152',
      reason:
        'ImageId is `resolve:ssm:<public AL2023 parameter>`, which EC2 resolves at launch (RunInstances accepts ' +
        'Systems Manager parameters as image ids); the linter only knows literal ami- ids.',
    });

    const cfnInstance = this.instance.instance;
    cfnInstance.cfnOptions.creationPolicy = {
      resourceSignal: { count: 1, timeout: (props.bootTimeout ?? Duration.minutes(30)).toIsoString() },
    };
    this.instance.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['cloudformation:SignalResource'], resources: [Aws.STACK_ID] }),
    );

    // Rendered after the instance exists: the script signals the instance's own logical id.
    const script = renderScript(props.userDataPath ?? projectPath('assets', 'userdata', 'bootstrap.sh'), {
      STACK_NAME: Aws.STACK_NAME,
      REGION: Aws.REGION,
      SIGNAL_RESOURCE: cfnInstance.logicalId,
      FIRST_RELEASE_PARAMETER: this.firstReleaseParameter.parameterName,
      ENGINE_DIR: HOST_PATHS.libDir,
      ENGINE_COMMAND: HOST_PATHS.command,
      ENGINE_CONFIG: HOST_PATHS.configFile,
      SLOT_UNIT: HOST_PATHS.slotUnit,
      SITE_PORT: String(HOST_PORTS.http),
      JENKINS_SETTINGS_PARAMETER: this.jenkinsSettingsParameter.parameterName,
      JENKINS_TOOLS_DIR,
    });
    if (!script.startsWith(`${USER_DATA_SHEBANG}\n`)) {
      throw new Error(`BlueGreenHost: the user-data script must start with ${USER_DATA_SHEBANG}`);
    }
    this.instance.userData.addCommands(script.slice(USER_DATA_SHEBANG.length + 1));
  }

  /** Lets the host read exactly this asset's object (an artifact or bundle), nothing else in the bucket. */
  public grantArtifactRead(asset: s3assets.Asset): void {
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)],
      }),
    );
  }

  /**
   * A secret imported by name is granted as `NAME-??????` (Secrets Manager appends six random
   * characters to the ARN); that wildcard matches this one secret's ARN and nothing else.
   */
  private acknowledgeSecretNameWildcard(secret: secretsmanager.ISecret): void {
    if (secret.secretFullArn !== undefined) return;
    const partialArn = renderArnForFinding(Stack.of(this).resolve(secret.secretArn));
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${partialArn}-??????]`,
      reason:
        "The GitHub token secret is named, not given by its full ARN; Secrets Manager ends every secret's ARN " +
        'with six random characters, which the policy matches with ??????. It matches that one secret only.',
    });
  }

  /** `http://<public DNS name>/`. */
  public get siteUrl(): string {
    return `http://${this.instance.instancePublicDnsName}/`;
  }
}

/**
 * The job's name: the repository's name (`shop` for `git@github.com:acme/shop.git`), in the
 * characters a Jenkins item name and the settings parameter accept.
 */
export function jenkinsJobName(repositoryUrl: string): string {
  const last = repositoryUrl.replace(/\/+$/, '').split(/[/:]/).pop() ?? '';
  const name = last.replace(/\.git$/, '').replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[.-]+/, '');
  return name === '' ? 'app' : name;
}

/** A CloudFormation value as cdk-nag names it in a finding: pseudo parameters as `<AWS::Name>`. */
function renderArnForFinding(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if ('Ref' in object) return `<${String(object.Ref)}>`;
    if ('Fn::Join' in object) {
      const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
      return parts.map(renderArnForFinding).join(separator);
    }
  }
  throw new Error(`BlueGreenHost: cannot name the IAM finding for ${JSON.stringify(value)}`);
}
