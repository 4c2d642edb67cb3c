/**
 * Parts every host of the app is built from, whichever construct builds it: the single host
 * (`BlueGreenHost`), the fleet's app hosts (`BlueGreenFleet`) and the fleet's Jenkins
 * (`JenkinsHost`). Each function creates its resources in the scope it is given, under the ids
 * the single host has always used, so moving them here changed no logical id.
 */
import { Aws, Duration, RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import type { ArtifactFile } from '../artifact.js';
import { HOST_PATHS } from '../contract.js';
import { engineTreeHash } from '../engine-bundle.js';
import { projectPath } from '../paths.js';
import { renderScript } from '../template.js';
import type { MetadataGuardSettings } from './metadata-guard.js';

/** Ports a host listens on. The app slots (8081/8082) bind to 127.0.0.1 and are never opened. */
export const HOST_PORTS = { http: 80, https: 443, jenkins: 8080, ssh: 22 } as const;

/** Jenkins' one user, created by its configuration as code with the stack's generated password. */
export const JENKINS_ADMIN_USER = 'admin';

/** Where a host installs `assets/jenkins/` (configure-jenkins, bluegreen-pipeline, the templates). */
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

/**
 * Settings only Jenkins on its own instance (fleet mode) has: its pipeline sends the deploy
 * document to the fleet instead of running `bluegreen` locally. Absent on the single host,
 * where the pipeline deploys on the host itself.
 */
export const JENKINS_FLEET_SETTINGS_KEYS = [
  /** `fleet`. */
  'deployMode',
  'region',
  'documentName',
  /** `tag:KEY=VALUE`. */
  'fleetTarget',
  'maxConcurrency',
  'releaseParameter',
  /** `s3://BUCKET/PREFIX/` for the jars the pipeline uploads. */
  'uploadLocation',
  'outputLogGroup',
] as const;
export type JenkinsFleetSettings = Record<(typeof JENKINS_FLEET_SETTINGS_KEYS)[number], string>;

/** What the first boot does: the single host, an app host of the fleet, or the fleet's Jenkins. */
export type HostRole = 'single' | 'fleet' | 'jenkins';

const USER_DATA_SHEBANG = '#!/bin/bash';

const AL2023_AMI_PARAMETER = {
  [ec2.InstanceArchitecture.X86_64]: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
  [ec2.InstanceArchitecture.ARM_64]: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64',
} as const;

/** The host's role (id `Role`): SSM Agent's managed policy, and nothing else until granted. */
export function newHostRole(scope: Construct, description: string): iam.Role {
  const role = new iam.Role(scope, 'Role', {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description,
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
  });
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
    reason:
      "AmazonSSMManagedInstanceCore is AWS's minimal policy for SSM Agent (Run Command, Session Manager); AWS " +
      'updates it as the agent changes, and its ssm/ssmmessages/ec2messages actions do not support resource scoping.',
  });
  return role;
}

/** Lets `role` read exactly this asset's object (an artifact or bundle), nothing else in the bucket. */
export function grantAssetRead(role: iam.IRole, asset: s3assets.Asset): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)] }),
  );
}

/** The engine bundle, the first artifact, and the parameter naming them, which the first boot reads. */
export interface ReleaseBundle {
  /** The zipped `assets/instance/` tree. */
  readonly engineAsset: s3assets.Asset;
  /** Content hash of that tree (lib/engine-bundle.ts), which the deploy document checks. */
  readonly engineHash: string;
  /** The jar deployed on first boot. */
  readonly artifactAsset: s3assets.Asset;
  /** Holds the engine and first-release locations the first boot reads. */
  readonly firstReleaseParameter: ssm.StringParameter;
}

/** Creates the engine and artifact assets (ids `EngineBundle`, `Artifact`) and `FirstRelease`, readable by `role`. */
export function newReleaseBundle(
  scope: Construct,
  role: iam.IRole,
  props: {
    readonly engineDir?: string;
    readonly artifact: ArtifactFile;
    readonly healthTimeoutSeconds?: number;
    readonly tlsCertificateSecret?: secretsmanager.ISecret;
    readonly description: string;
  },
): ReleaseBundle {
  const engineDir = props.engineDir ?? projectPath('assets', 'instance');
  const engineAsset = new s3assets.Asset(scope, 'EngineBundle', { path: engineDir });
  const artifactAsset = new s3assets.Asset(scope, 'Artifact', { path: props.artifact.path });
  grantAssetRead(role, engineAsset);
  grantAssetRead(role, artifactAsset);
  props.tlsCertificateSecret?.grantRead(role);
  const firstReleaseParameter = new ssm.StringParameter(scope, 'FirstRelease', {
    description: props.description,
    stringValue: [
      `engineUri=${engineAsset.s3ObjectUrl}`,
      `artifactUri=${artifactAsset.s3ObjectUrl}`,
      `sha256=${props.artifact.sha256}`,
      `version=${props.artifact.version}`,
      `healthTimeout=${props.healthTimeoutSeconds ?? 120}`,
      ...(props.tlsCertificateSecret === undefined ? [] : [`tlsSecret=${props.tlsCertificateSecret.secretArn}`]),
    ].join('\n'),
  });
  firstReleaseParameter.grantRead(role);
  return { engineAsset, engineHash: engineTreeHash(engineDir), artifactAsset, firstReleaseParameter };
}

/** The pipeline job Jenkins runs for the app's repository. */
export interface JenkinsJobSettings {
  /** The app's repository: `https://…`, `git@host:owner/repo` or `ssh://…` (checked by lib/config.ts). */
  readonly repositoryUrl: string;
  /** The branch whose pushes are built and deployed. */
  readonly branch: string;
}

/** Jenkins' job, GitHub access and bundle. */
export interface JenkinsPartsProps {
  /**
   * The pipeline job: builds the repository's Jenkinsfile on each push to the branch.
   * @default - no job; Jenkins runs with its admin user only
   */
  readonly job?: JenkinsJobSettings;

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

/** What the first boot configures Jenkins from. */
export interface JenkinsParts {
  /** The zipped `assets/jenkins/` tree. */
  readonly jenkinsAsset: s3assets.Asset;
  /** Generated password of Jenkins' admin user; the instance may read it, nothing else in the stack does. */
  readonly adminPassword: secretsmanager.Secret;
  /** What the first boot configures Jenkins with (KEY=VALUE lines, no secret values). */
  readonly settingsParameter: ssm.StringParameter;
  /** The pipeline job's name, when there is a job. */
  readonly jobName?: string;
  /** Whether GitHub (and people) reach Jenkins over the network, or only through a port forward. */
  readonly reachedThrough: 'network' | 'port-forward';
}

/**
 * Jenkins' bundle (`JenkinsBundle`), admin password (`JenkinsAdminPassword`) and settings
 * (`JenkinsSettings`), readable by `role`. `fleet` adds the settings of a pipeline that deploys
 * through the SSM document.
 */
export function newJenkinsParts(
  scope: Construct,
  role: iam.IRole,
  props: JenkinsPartsProps & {
    readonly jenkinsAllowedCidrs?: readonly string[];
    readonly fleet?: JenkinsFleetSettings;
    readonly passwordDescription: string;
    readonly settingsDescription: string;
  },
): JenkinsParts {
  const reachedThrough = (props.jenkinsAllowedCidrs ?? []).length > 0 ? 'network' : 'port-forward';
  const jobName = props.job === undefined ? undefined : jenkinsJobName(props.job.repositoryUrl);
  const jenkinsAsset = new s3assets.Asset(scope, 'JenkinsBundle', { path: props.jenkinsDir ?? projectPath('assets', 'jenkins') });
  grantAssetRead(role, jenkinsAsset);
  const adminPassword = new secretsmanager.Secret(scope, 'JenkinsAdminPassword', {
    description: props.passwordDescription,
    // Letters and digits only: nothing in it needs escaping in JCasC or in curl's config syntax.
    generateSecretString: { passwordLength: 32, excludePunctuation: true },
    // The password is only good for this host's Jenkins, which the stack also deletes.
    removalPolicy: RemovalPolicy.DESTROY,
  });
  adminPassword.grantRead(role);
  Validations.of(adminPassword).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason:
      "Jenkins reads its admin password into its own user database at start (JCasC), so a rotation Lambda " +
      'could not change the live password; rotate by putting a new value and restarting Jenkins ' +
      '(or replacing the host), which re-reads it.',
  });
  const githubTokenSecret = props.githubTokenSecret;
  if (githubTokenSecret !== undefined) {
    githubTokenSecret.grantRead(role);
    acknowledgeSecretNameWildcard(role, githubTokenSecret);
  }
  const settings: JenkinsSettings = {
    bundleUri: jenkinsAsset.s3ObjectUrl,
    adminUser: JENKINS_ADMIN_USER,
    adminPasswordSecret: adminPassword.secretArn,
    githubTokenSecret: githubTokenSecret?.secretArn ?? '',
    jobName: jobName ?? '',
    repositoryUrl: props.job?.repositoryUrl ?? '',
    repositoryBranch: props.job?.branch ?? '',
    jenkinsPort: String(HOST_PORTS.jenkins),
    jenkinsReachedThrough: reachedThrough,
  };
  const lines = JENKINS_SETTINGS_KEYS.map((key) => `${key}=${settings[key]}`);
  if (props.fleet !== undefined) lines.push(...JENKINS_FLEET_SETTINGS_KEYS.map((key) => `${key}=${props.fleet![key]}`));
  const settingsParameter = new ssm.StringParameter(scope, 'JenkinsSettings', {
    description: props.settingsDescription,
    stringValue: lines.join('\n'),
  });
  settingsParameter.grantRead(role);
  return { jenkinsAsset, adminPassword, settingsParameter, jobName, reachedThrough };
}

/**
 * A secret imported by name is granted as `NAME-??????` (Secrets Manager appends six random
 * characters to the ARN); that wildcard matches this one secret's ARN and nothing else.
 */
function acknowledgeSecretNameWildcard(role: iam.IRole, secret: secretsmanager.ISecret): void {
  if (secret.secretFullArn !== undefined) return;
  const partialArn = renderArnForFinding(Stack.of(role).resolve(secret.secretArn));
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${partialArn}-??????]`,
    reason:
      "The GitHub token secret is named, not given by its full ARN; Secrets Manager ends every secret's ARN " +
      'with six random characters, which the policy matches with ??????. It matches that one secret only.',
  });
}

/** The Amazon Linux 2023 image for the instance type's architecture, resolved by EC2 at launch. */
export function al2023Image(instanceType: ec2.InstanceType, owner: string): ec2.IMachineImage {
  const architecture = instanceType.architecture;
  if (architecture !== ec2.InstanceArchitecture.X86_64 && architecture !== ec2.InstanceArchitecture.ARM_64) {
    throw new Error(`${owner}: instanceType ${instanceType} has no Amazon Linux 2023 image`);
  }
  // Resolved by EC2 at launch: a newer AMI does not replace a running host on the next deploy.
  return ec2.MachineImage.resolveSsmParameterAtLaunch(AL2023_AMI_PARAMETER[architecture], { os: ec2.OperatingSystemType.LINUX });
}

/** The encrypted gp3 root volume (Jenkins workspaces and kept releases live there). */
export function rootVolume(size: Size | undefined): ec2.BlockDevice {
  return {
    deviceName: '/dev/xvda',
    volume: ec2.BlockDeviceVolume.ebs((size ?? Size.gibibytes(20)).toGibibytes(), {
      volumeType: ec2.EbsDeviceVolumeType.GP3,
      encrypted: true,
      deleteOnTermination: true,
    }),
  };
}

/** Empty Linux user data with the first-boot script's shebang; `bootScript` fills it. */
export function emptyUserData(): ec2.UserData {
  return ec2.UserData.forLinux({ shebang: USER_DATA_SHEBANG });
}

/** What the first boot of one kind of host is told; every other placeholder is the same for all. */
export interface BootSettings {
  readonly role: HostRole;
  /** The logical id cfn-signal reports to: the instance, or the Auto Scaling group. */
  readonly signalResource: string;
  /** @default '' (the fleet's Jenkins deploys nothing) */
  readonly firstReleaseParameter?: string;
  /** @default '' (no Jenkins on this host) */
  readonly jenkinsSettingsParameter?: string;
  /** @default '' (not a fleet host) */
  readonly fleetReleaseParameter?: string;
  /** The guard that lets only root and its users reach the metadata service (`newMetadataGuard`). */
  readonly metadataGuard: MetadataGuardSettings;
}

/**
 * The first-boot script (`path`, default `assets/userdata/bootstrap.sh`) with its placeholders
 * filled for `boot`, without its shebang: the body of `emptyUserData()`.
 */
export function bootScript(path: string | undefined, boot: BootSettings, owner: string): string {
  const script = renderScript(path ?? projectPath('assets', 'userdata', 'bootstrap.sh'), {
    STACK_NAME: Aws.STACK_NAME,
    REGION: Aws.REGION,
    SIGNAL_RESOURCE: boot.signalResource,
    FIRST_RELEASE_PARAMETER: boot.firstReleaseParameter ?? '',
    ENGINE_DIR: HOST_PATHS.libDir,
    ENGINE_COMMAND: HOST_PATHS.command,
    ENGINE_CONFIG: HOST_PATHS.configFile,
    SLOT_UNIT: HOST_PATHS.slotUnit,
    SITE_PORT: String(HOST_PORTS.http),
    JENKINS_SETTINGS_PARAMETER: boot.jenkinsSettingsParameter ?? '',
    JENKINS_TOOLS_DIR,
    HOST_ROLE: boot.role,
    FLEET_RELEASE_PARAMETER: boot.fleetReleaseParameter ?? '',
    METADATA_GUARD_URI: boot.metadataGuard.uri,
    METADATA_USERS: boot.metadataGuard.users.join(' '),
  });
  if (!script.startsWith(`${USER_DATA_SHEBANG}\n`)) {
    throw new Error(`${owner}: the user-data script must start with ${USER_DATA_SHEBANG}`);
  }
  return script.slice(USER_DATA_SHEBANG.length + 1);
}

/** An instance that one construct owns and its first boot sets up (the single host, the fleet's Jenkins). */
export interface BootedInstanceProps {
  readonly vpc: ec2.IVpc;
  /** @default - the VPC's public subnets */
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly instanceType: ec2.InstanceType;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly role: iam.IRole;
  /** @default - no key pair */
  readonly keyPair?: ec2.IKeyPair;
  /** @default Size.gibibytes(20) */
  readonly rootVolumeSize?: Size;
  /** How long CloudFormation waits for the boot's signal. @default Duration.minutes(30) */
  readonly bootTimeout?: Duration;
  /** @default - `assets/userdata/bootstrap.sh` */
  readonly userDataPath?: string;
  /** What its first boot is told, but the resource to signal: that is the instance itself. */
  readonly boot: Omit<BootSettings, 'signalResource'>;
  /** Why it has no termination protection (cdk-nag AwsSolutions-EC29). */
  readonly withoutTerminationProtection: string;
  /** The construct, for error messages. */
  readonly owner: string;
}

/**
 * An Amazon Linux 2023 instance (id `Instance`: IMDSv2 only, detailed monitoring, encrypted root
 * volume) whose first boot runs the boot script and signals it under a CreationPolicy, so the
 * stack fails instead of keeping a half-built host.
 */
export function newBootedInstance(scope: Construct, props: BootedInstanceProps): ec2.Instance {
  const instance = new ec2.Instance(scope, 'Instance', {
    vpc: props.vpc,
    vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PUBLIC },
    instanceType: props.instanceType,
    machineImage: al2023Image(props.instanceType, props.owner),
    securityGroup: props.securityGroup,
    role: props.role,
    keyPair: props.keyPair,
    userData: emptyUserData(),
    httpTokens: ec2.HttpTokens.REQUIRED,
    httpEndpoint: true,
    detailedMonitoring: true,
    blockDevices: [rootVolume(props.rootVolumeSize)],
  });
  Validations.of(instance).acknowledge({ id: 'AwsSolutions-EC29', reason: props.withoutTerminationProtection });
  Validations.of(instance).acknowledge({
    id: 'CloudFormation-Validate::E1152',
    reason:
      'ImageId is `resolve:ssm:<public AL2023 parameter>`, which EC2 resolves at launch (RunInstances accepts ' +
      'Systems Manager parameters as image ids); the linter only knows literal ami- ids.',
  });
  const cfnInstance = instance.instance;
  cfnInstance.cfnOptions.creationPolicy = {
    resourceSignal: { count: 1, timeout: (props.bootTimeout ?? Duration.minutes(30)).toIsoString() },
  };
  instance.addToRolePolicy(new iam.PolicyStatement({ actions: ['cloudformation:SignalResource'], resources: [Aws.STACK_ID] }));
  // Rendered after the instance exists: the script signals the instance's own logical id.
  instance.userData.addCommands(
    bootScript(props.userDataPath, { ...props.boot, signalResource: Stack.of(scope).getLogicalId(cfnInstance) }, props.owner),
  );
  return instance;
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
  throw new Error(`cannot name the IAM finding for ${JSON.stringify(value)}`);
}
