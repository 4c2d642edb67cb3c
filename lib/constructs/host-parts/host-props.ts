/**
 * The props every kind of EC2 host shares (the single host and the fleet's Jenkins): where it
 * runs, how big it is, how it is reached and how its first boot is judged.
 */
import type { Duration, Size } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { JenkinsPartsProps } from './jenkins-parts.js';

/** SSH to a host. */
export interface HostSsh {
  /** Key pair installed for `ec2-user`. */
  readonly keyPair: ec2.IKeyPair;
  /** Sources allowed on port 22; may be empty (the key then serves SSH over Session Manager). */
  readonly allowedCidrs: readonly string[];
}

export interface InstanceHostProps {
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
   * The instance type's memory in MiB, from which each process's memory budget is derived
   * (lib/memory-budget.ts). Needed only for a type that budget's table does not know.
   * @default - the table's figure for `instanceType`
   */
  readonly instanceMemoryMiB?: number;

  /**
   * Sources allowed on Jenkins' port 8080. Jenkins speaks plain HTTP there, so any entry is
   * refused (`newJenkinsParts`): reach it through a Session Manager port-forwarding session.
   * @default - none: Jenkins is reached through a Session Manager port-forwarding session
   */
  readonly jenkinsAllowedCidrs?: readonly string[];

  /**
   * SSH access.
   * @default - no key pair and no port 22: shell access is Session Manager
   */
  readonly ssh?: HostSsh;

  /**
   * Jenkins' job and GitHub access.
   * @default - Jenkins with its admin user, no job and no GitHub credentials
   */
  readonly jenkins?: JenkinsPartsProps;

  /**
   * How long CloudFormation waits for the first boot to signal success before it fails the stack.
   * @default Duration.minutes(30)
   */
  readonly bootTimeout?: Duration;

  /**
   * Size of the encrypted gp3 root volume (Jenkins workspaces, and on an app host the kept releases).
   * @default Size.gibibytes(20)
   */
  readonly rootVolumeSize?: Size;

  /**
   * The first-boot script (with `@@...@@` placeholders).
   * @default - `assets/userdata/bootstrap.sh` from this repository
   */
  readonly userDataPath?: string;
}
