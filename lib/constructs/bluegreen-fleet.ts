import { Aws, Duration, Stack, Tags, Validations, type Size } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { ArtifactFile } from '../artifact.js';
import { FLEET_RELEASE_UNSET, FLEET_TAG_KEY } from '../contract.js';
import { budgetFor, engineMemorySettings, type MemoryBudget } from '../memory-budget.js';
import { checkedHealthTimeoutSeconds, DEFAULT_HEALTH_TIMEOUT } from './health-timeout.js';
import { bootScript, emptyUserData } from './host-parts/boot-script.js';
import { al2023Image, rootVolume } from './host-parts/machine.js';
import { HOST_PORTS } from './host-parts/ports.js';
import { newReleaseBundle } from './host-parts/release-bundle.js';
import { grantAssetRead, newHostRole } from './host-parts/role.js';
import { appHostMetadataUsers, newMetadataGuard, warnAppInstanceRoleAccess } from './metadata-guard.js';

export interface BlueGreenFleetSsh {
  /** Key pair installed for `ec2-user`. */
  readonly keyPair: ec2.IKeyPair;
  /** Sources allowed on port 22; may be empty (the key then serves SSH over Session Manager). */
  readonly allowedCidrs: readonly string[];
}

export interface BlueGreenFleetProps {
  readonly vpc: ec2.IVpc;

  /** How many app hosts: the Auto Scaling group's minimum and desired capacity. At least 2. */
  readonly hosts: number;

  /**
   * Where the hosts and the load balancer go; they need a route to the internet for packages and SSM.
   * @default - the VPC's public subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * @default t3.small
   */
  readonly instanceType?: ec2.InstanceType;

  /**
   * The instance type's memory in MiB, from which the app slots' memory budget is derived
   * (lib/memory-budget.ts). Needed only for a type that budget's table does not know.
   * @default - the table's figure for `instanceType`
   */
  readonly instanceMemoryMiB?: number;

  /**
   * Sources allowed on the load balancer's port 80 (and 443 with `certificateArn`). The hosts
   * accept port 80 from the load balancer only.
   * @default ['0.0.0.0/0']
   */
  readonly httpAllowedCidrs?: readonly string[];

  /**
   * ACM certificate for an HTTPS listener on 443; port 80 then redirects to it.
   * @default - HTTP on port 80 only
   */
  readonly certificateArn?: string;

  /**
   * SSH access to the hosts.
   * @default - no key pair and no port 22: shell access is Session Manager
   */
  readonly ssh?: BlueGreenFleetSsh;

  /** The jar every host deploys on first boot until a roll-out records another. */
  readonly artifact: ArtifactFile;

  /**
   * Health timeout of a host's first deploy (whole seconds, 1 to 999).
   * @default Duration.seconds(120)
   */
  readonly healthTimeout?: Duration;

  /**
   * The app's health path, which the load balancer asks through each host's Nginx.
   * @default '/actuator/health'
   */
  readonly healthCheckPath?: string;

  /**
   * How long CloudFormation waits for each host's boot to signal success.
   * @default Duration.minutes(30)
   */
  readonly bootTimeout?: Duration;

  /**
   * Size of each host's encrypted gp3 root volume.
   * @default Size.gibibytes(20)
   */
  readonly rootVolumeSize?: Size;

  /**
   * The value of the `BlueGreenFleet` tag that names this fleet's hosts for SSM.
   * @default - the stack name and this construct's path
   */
  readonly fleetTagValue?: string;

  /**
   * Lets the app (user `bluegreen`) on every host reach the instance metadata service, and so
   * use the hosts' instance role: whoever takes over the app can then do all the role may.
   * Synth warns when it is set.
   * @default false - only root reaches the metadata service
   */
  readonly appInstanceRoleAccess?: boolean;

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

/** How long the load balancer keeps sending in-flight requests to a host it takes out of service. */
const DEREGISTRATION_DELAY = Duration.seconds(30);

/**
 * Several Amazon Linux 2023 app hosts behind an internet-facing Application Load Balancer: an
 * Auto Scaling group built from one launch template whose user data boots a host into the
 * release the fleet runs (recorded in `releaseParameter`), each host with Nginx and the two app
 * slots, tagged so that one SSM command reaches them all. The per-host swap is the single host's;
 * the load balancer never sees it (Nginx keeps serving through it).
 */
export class BlueGreenFleet extends Construct {
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  public readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  public readonly targetGroup: elbv2.ApplicationTargetGroup;
  public readonly role: iam.Role;
  /** The hosts' security group: port 80 from the load balancer only. */
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly loadBalancerSecurityGroup: ec2.SecurityGroup;
  /** The zipped `assets/instance/` tree. */
  public readonly engineAsset: s3assets.Asset;
  /** Content hash of that tree, which the deploy document checks before it installs the bundle. */
  public readonly engineHash: string;
  /** The jar deployed on first boot until a roll-out records another. */
  public readonly artifactAsset: s3assets.Asset;
  /** The artifact file's checksum and label. */
  public readonly artifact: ArtifactFile;
  /** Engine bundle and first release (KEY=VALUE lines). */
  public readonly firstReleaseParameter: ssm.StringParameter;
  /** The release the fleet runs, written after every roll-out that succeeded on all hosts; new hosts boot it. */
  public readonly releaseParameter: ssm.StringParameter;
  /** The tag that names the hosts (`FLEET_TAG_KEY`) and its value. */
  public readonly tagKey: string = FLEET_TAG_KEY;
  public readonly tagValue: string;
  public readonly hosts: number;
  /** How each host's memory is shared out between Nginx and the two app slots (lib/memory-budget.ts). */
  public readonly memoryBudget: MemoryBudget;

  constructor(scope: Construct, id: string, props: BlueGreenFleetProps) {
    super(scope, id);
    if (!Number.isInteger(props.hosts) || props.hosts < 2) {
      throw new Error(`BlueGreenFleet: hosts must be a whole number of at least 2 (use BlueGreenHost for one), got ${props.hosts}`);
    }
    this.hosts = props.hosts;
    this.artifact = props.artifact;
    const stack = Stack.of(this);
    this.tagValue = props.fleetTagValue ?? `${Aws.STACK_NAME}/${this.node.path}`;
    const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL);
    this.memoryBudget = budgetFor('fleet', instanceType.toString(), props.instanceMemoryMiB, 'BlueGreenFleet');
    const vpcSubnets = props.vpcSubnets ?? { subnetType: ec2.SubnetType.PUBLIC };
    const healthCheckPath = props.healthCheckPath ?? '/actuator/health';

    this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: props.vpc,
      description: 'Blue/green fleet load balancer: HTTP(S) from the allowed sources',
      allowAllOutbound: false,
    });
    const httpAllowedCidrs = props.httpAllowedCidrs ?? ['0.0.0.0/0'];
    for (const cidr of httpAllowedCidrs) {
      this.loadBalancerSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(HOST_PORTS.http), `HTTP from ${cidr}`);
      if (props.certificateArn !== undefined) {
        this.loadBalancerSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(HOST_PORTS.https), `HTTPS from ${cidr}`);
      }
    }
    if (httpAllowedCidrs.some((cidr) => cidr.endsWith('/0'))) {
      Validations.of(this.loadBalancerSecurityGroup).acknowledge({
        id: 'AwsSolutions-EC23',
        reason: 'The load balancer serves a public site: 80 (and 443 with a certificate) are open to httpAllowedCidrs, by default anywhere.',
      });
    }

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Blue/green fleet hosts: HTTP from the load balancer only, no SSH unless configured',
      // Packages, S3 and the SSM endpoints.
      allowAllOutbound: true,
    });
    this.securityGroup.addIngressRule(this.loadBalancerSecurityGroup, ec2.Port.tcp(HOST_PORTS.http), 'HTTP to Nginx from the load balancer');
    for (const cidr of props.ssh?.allowedCidrs ?? []) {
      this.securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(HOST_PORTS.ssh), `SSH from ${cidr}`);
    }

    this.role = newHostRole(this, 'Blue/green fleet host: SSM agent, its own artifacts, deploy output logs');
    const release = newReleaseBundle(this, this.role, {
      engineDir: props.engineDir,
      artifact: props.artifact,
      healthTimeoutSeconds: checkedHealthTimeoutSeconds('BlueGreenFleet', props.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT),
      engineSettings: engineMemorySettings(this.memoryBudget),
      description: 'Engine bundle and first release every blue/green fleet host installs on first boot (KEY=VALUE lines)',
    });
    this.engineAsset = release.engineAsset;
    this.engineHash = release.engineHash;
    this.artifactAsset = release.artifactAsset;
    this.firstReleaseParameter = release.firstReleaseParameter;
    // CloudFormation writes it once; from then on roll-outs own its value (the stack's value
    // never changes, so an update never overwrites what a roll-out recorded).
    this.releaseParameter = new ssm.StringParameter(this, 'Release', {
      description: 'The release the blue/green fleet runs, recorded after a roll-out succeeded on every host; new hosts deploy it at boot',
      stringValue: FLEET_RELEASE_UNSET,
    });
    this.releaseParameter.grantRead(this.role);
    const metadataGuard = newMetadataGuard(this, this.role, appHostMetadataUsers(props.appInstanceRoleAccess ?? false));
    if (props.appInstanceRoleAccess === true) {
      warnAppInstanceRoleAccess(this, [
        'read every SSM parameter in the region (AmazonSSMManagedInstanceCore)',
        "read the stack's jars and engine bundle",
        'act as any fleet host toward Systems Manager and CloudFormation',
      ]);
    }

    const userData = emptyUserData();
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType,
      machineImage: al2023Image(instanceType, 'BlueGreenFleet'),
      securityGroup: this.securityGroup,
      role: this.role,
      keyPair: props.ssh?.keyPair,
      userData,
      requireImdsv2: true,
      detailedMonitoring: true,
      blockDevices: [rootVolume(props.rootVolumeSize)],
    });

    const bootTimeout = props.bootTimeout ?? Duration.minutes(30);
    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Hosts', {
      vpc: props.vpc,
      vpcSubnets,
      launchTemplate,
      // No desiredCapacity: CloudFormation would reset it on every update; it starts at the minimum.
      minCapacity: props.hosts,
      // One spare, so a rolling replacement of the launch template adds a host before it removes one.
      maxCapacity: props.hosts + 1,
      // The load balancer's check goes through Nginx to the app: a host whose app stops answering is replaced.
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: bootTimeout,
      }),
      signals: autoscaling.Signals.waitForCount(props.hosts, { timeout: bootTimeout }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: props.hosts,
        waitOnResourceSignals: true,
        pauseTime: bootTimeout,
      }),
    });
    Tags.of(this.autoScalingGroup).add(FLEET_TAG_KEY, this.tagValue, { applyToLaunchedInstances: true });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['cloudformation:SignalResource'], resources: [Aws.STACK_ID] }));

    this.targetGroup = new elbv2.ApplicationTargetGroup(this, 'TargetGroup', {
      vpc: props.vpc,
      port: HOST_PORTS.http,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.INSTANCE,
      deregistrationDelay: DEREGISTRATION_DELAY,
      healthCheck: {
        path: healthCheckPath,
        healthyHttpCodes: '200',
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    });
    this.autoScalingGroup.attachToApplicationTargetGroup(this.targetGroup);

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      vpcSubnets,
      internetFacing: true,
      securityGroup: this.loadBalancerSecurityGroup,
      dropInvalidHeaderFields: true,
    });
    this.loadBalancer.connections.allowTo(this.securityGroup, ec2.Port.tcp(HOST_PORTS.http), 'HTTP to the fleet hosts');
    if (props.certificateArn === undefined) {
      this.loadBalancer.addListener('Http', { port: HOST_PORTS.http, open: false, defaultTargetGroups: [this.targetGroup] });
    } else {
      this.loadBalancer.addListener('Https', {
        port: HOST_PORTS.https,
        open: false,
        certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn)],
        sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
        defaultTargetGroups: [this.targetGroup],
      });
      this.loadBalancer.addRedirect({ sourcePort: HOST_PORTS.http, targetPort: HOST_PORTS.https, open: false });
    }
    this.acknowledgeFindings(props.certificateArn !== undefined);

    // Rendered after the group exists: each host signals the group's own logical id.
    const groupLogicalId = stack.getLogicalId(this.autoScalingGroup.node.defaultChild as autoscaling.CfnAutoScalingGroup);
    userData.addCommands(
      bootScript(
        props.userDataPath,
        {
          role: 'fleet',
          signalResource: groupLogicalId,
          firstReleaseParameter: this.firstReleaseParameter.parameterName,
          fleetReleaseParameter: this.releaseParameter.parameterName,
          metadataGuard,
        },
        'BlueGreenFleet',
      ),
    );
  }

  /** `http(s)://<load balancer DNS name>/`. */
  public get siteUrl(): string {
    return `${this.loadBalancer.listeners.some((listener) => listener.port === HOST_PORTS.https) ? 'https' : 'http'}://${this.loadBalancer.loadBalancerDnsName}/`;
  }

  /** The SSM target that names every host: `tag:KEY=VALUE`. */
  public get ssmTarget(): string {
    return `tag:${this.tagKey}=${this.tagValue}`;
  }

  /** Lets the hosts read exactly this asset's object, nothing else in the bucket. */
  public grantArtifactRead(asset: s3assets.Asset): void {
    grantAssetRead(this.role, asset);
  }

  private acknowledgeFindings(tls: boolean): void {
    Validations.of(this.loadBalancer).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason:
        'Access logs would need a bucket and its policy per stack; every request is also in each host\'s Nginx access log ' +
        '(which the bake reads), and the load balancer\'s CloudWatch metrics count its own errors.',
    });
    if (!tls) {
      Validations.of(this.loadBalancer).acknowledge({
        id: 'AwsSolutions-ELB1',
        reason: 'No certificate was given (context certificateArn): the site is plain HTTP, as the single host is without one.',
      });
    }
    Validations.of(this.autoScalingGroup).acknowledge({
      id: 'AwsSolutions-AS3',
      reason: 'Scaling events are in the group\'s activity history and CloudTrail; a notification topic would have no subscriber by default.',
    });
  }
}
