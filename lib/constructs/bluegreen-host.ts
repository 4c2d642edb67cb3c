import { type Duration, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { ArtifactFile } from '../artifact.js';
import { budgetFor, engineMemorySettings, type MemoryBudget } from '../memory-budget.js';
import { checkedHealthTimeoutSeconds, DEFAULT_HEALTH_TIMEOUT } from './health-timeout.js';
import { newBootedInstance } from './host-parts/booted-instance.js';
import { newJenkinsParts, type JenkinsJobSettings, type JenkinsPartsProps } from './host-parts/jenkins-parts.js';
import { JENKINS_ADMIN_USER } from './host-parts/jenkins-settings.js';
import { type HostSsh, type InstanceHostProps } from './host-parts/host-props.js';
import { HOST_PORTS } from './host-parts/ports.js';
import { newReleaseBundle } from './host-parts/release-bundle.js';
import { grantAssetRead, newHostRole } from './host-parts/role.js';
import { appHostMetadataUsers, newMetadataGuard, warnAppInstanceRoleAccess } from './metadata-guard.js';

export {
  JENKINS_ADMIN_USER,
  JENKINS_FLEET_SETTINGS_KEYS,
  JENKINS_POLL_MINUTES,
  JENKINS_SETTINGS_KEYS,
  JENKINS_TOOLS_DIR,
  jenkinsJobName,
  type JenkinsFleetSettings,
  type JenkinsSettings,
} from './host-parts/jenkins-settings.js';
export { HOST_PORTS } from './host-parts/ports.js';

/** SSH to the host. */
export type BlueGreenHostSsh = HostSsh;

/** The pipeline job Jenkins runs for the app's repository. */
export type BlueGreenHostJenkinsJob = JenkinsJobSettings;

/** Jenkins' job, GitHub access and bundle. */
export type BlueGreenHostJenkins = JenkinsPartsProps;

export interface BlueGreenHostProps extends InstanceHostProps {
  /**
   * Sources allowed on port 80 (and 443 with `tlsCertificateSecret`).
   * @default ['0.0.0.0/0']
   */
  readonly httpAllowedCidrs?: readonly string[];

  /**
   * Secret holding the TLS certificate and key for Nginx; port 443 opens and the instance may
   * read this one secret.
   * @default - no TLS, port 443 closed
   */
  readonly tlsCertificateSecret?: secretsmanager.ISecret;

  /** The jar deployed on first boot. */
  readonly artifact: ArtifactFile;

  /**
   * Health timeout of the first deploy (whole seconds, 1 to 999).
   * @default Duration.seconds(120)
   */
  readonly healthTimeout?: Duration;

  /**
   * Lets the app (user `bluegreen`) reach the instance metadata service, and so use the instance
   * role: whoever takes over the app can then do all the role may. Synth warns when it is set.
   * @default false - only root reaches the metadata service
   */
  readonly appInstanceRoleAccess?: boolean;

  /**
   * The host engine tree, shipped as one zipped asset.
   * @default - `assets/instance/` from this repository
   */
  readonly engineDir?: string;
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
  /** Content hash of that tree, which the deploy document checks before it installs the bundle. */
  public readonly engineHash: string;
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
  /** How the instance's memory is shared out (lib/memory-budget.ts). */
  public readonly memoryBudget: MemoryBudget;

  constructor(scope: Construct, id: string, props: BlueGreenHostProps) {
    super(scope, id);
    this.artifact = props.artifact;
    const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL);
    this.memoryBudget = budgetFor('single', instanceType.toString(), props.instanceMemoryMiB, 'BlueGreenHost');

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

    this.role = newHostRole(this, 'Blue/green host: SSM agent, its own artifacts, deploy output logs');
    const release = newReleaseBundle(this, this.role, {
      engineDir: props.engineDir,
      artifact: props.artifact,
      healthTimeoutSeconds: checkedHealthTimeoutSeconds('BlueGreenHost', props.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT),
      tlsCertificateSecret: props.tlsCertificateSecret,
      engineSettings: engineMemorySettings(this.memoryBudget),
      description: 'Engine bundle and first release the blue/green host installs on first boot (KEY=VALUE lines)',
    });
    this.engineAsset = release.engineAsset;
    this.engineHash = release.engineHash;
    this.artifactAsset = release.artifactAsset;
    this.firstReleaseParameter = release.firstReleaseParameter;

    const jenkins = newJenkinsParts(this, this.role, {
      ...props.jenkins,
      jenkinsAllowedCidrs: props.jenkinsAllowedCidrs,
      memory: this.memoryBudget,
      passwordDescription: `Password of Jenkins' '${JENKINS_ADMIN_USER}' user on the blue/green host (generated; the host reads it at boot)`,
      settingsDescription: 'Jenkins settings the blue/green host applies on first boot (KEY=VALUE lines; names of secrets, not their values)',
    });
    this.jenkinsAsset = jenkins.jenkinsAsset;
    this.jenkinsAdminPassword = jenkins.adminPassword;
    this.jenkinsSettingsParameter = jenkins.settingsParameter;
    this.jenkinsJobName = jenkins.jobName;
    this.jenkinsReachedThrough = jenkins.reachedThrough;

    const metadataGuard = newMetadataGuard(this, this.role, appHostMetadataUsers(props.appInstanceRoleAccess ?? false));
    if (props.appInstanceRoleAccess === true) {
      const secrets = [
        "Jenkins' admin password",
        ...(props.jenkins?.githubTokenSecret === undefined ? [] : ['the GitHub token']),
        ...(props.tlsCertificateSecret === undefined ? [] : ["the TLS certificate's private key"]),
      ];
      warnAppInstanceRoleAccess(this, [
        `read ${[secrets.slice(0, -1).join(', '), secrets.at(-1)].filter(Boolean).join(' and ')} from Secrets Manager`,
        'read every SSM parameter in the region (AmazonSSMManagedInstanceCore)',
        "read the stack's jars and engine bundle",
        'act as this instance toward Systems Manager and CloudFormation',
      ]);
    }

    this.instance = newBootedInstance(this, {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      instanceType,
      securityGroup: this.securityGroup,
      role: this.role,
      keyPair: props.ssh?.keyPair,
      rootVolumeSize: props.rootVolumeSize,
      bootTimeout: props.bootTimeout,
      userDataPath: props.userDataPath,
      // Nginx, the app and Jenkins, as it always has; no fleet release to read.
      boot: {
        role: 'single',
        firstReleaseParameter: this.firstReleaseParameter.parameterName,
        jenkinsSettingsParameter: this.jenkinsSettingsParameter.parameterName,
        metadataGuard,
      },
      withoutTerminationProtection:
        'A single host whose life the stack owns: `cdk destroy` must be able to remove it, and a replacement is ' +
        'rebuilt by its user data. Termination protection would make every teardown a manual console step.',
      owner: 'BlueGreenHost',
    });
  }

  /** Lets the host read exactly this asset's object (an artifact or bundle), nothing else in the bucket. */
  public grantArtifactRead(asset: s3assets.Asset): void {
    grantAssetRead(this.role, asset);
  }

  /** `http://<public DNS name>/`. */
  public get siteUrl(): string {
    return `http://${this.instance.instancePublicDnsName}/`;
  }
}
