/**
 * The instance builder for hosts one construct owns (the single host, the fleet's Jenkins): an
 * EC2 instance whose first boot runs the boot script and must signal success.
 */
import { Aws, Duration, Stack, Validations, type Size } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { bootScript, emptyUserData, type BootSettings } from './boot-script.js';
import { al2023Image, rootVolume } from './machine.js';

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
