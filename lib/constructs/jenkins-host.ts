import { ArnFormat, Aws, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { jenkinsToolsDir } from '../jenkins-tools.js';
import { budgetFor, type MemoryBudget } from '../memory-budget.js';
import { newBootedInstance } from './host-parts/booted-instance.js';
import { newJenkinsParts, renderArnForFinding } from './host-parts/jenkins-parts.js';
import { JENKINS_ADMIN_USER } from './host-parts/jenkins-settings.js';
import { type InstanceHostProps } from './host-parts/host-props.js';
import { HOST_PORTS } from './host-parts/ports.js';
import { newHostRole } from './host-parts/role.js';
import { JENKINS_HOST_METADATA_USERS, newMetadataGuard } from './metadata-guard.js';

/** The fleet Jenkins deploys to, through the SSM document. */
export interface JenkinsFleetTarget {
  /** The deploy document's name. */
  readonly documentName: string;
  /** The SSM tag that names every app host. */
  readonly tagKey: string;
  readonly tagValue: string;
  /** SSM `MaxConcurrency` for the pipeline's roll-outs. */
  readonly maxConcurrency: string;
  /** Where the pipeline records the release after a roll-out succeeded. */
  readonly releaseParameter: ssm.IStringParameter;
  /** The deploy document's output log group, from which the pipeline shows each host's output as it runs. */
  readonly outputLogGroupName: string;
}

export interface JenkinsHostProps extends InstanceHostProps {
  /** What the pipeline deploys to. */
  readonly fleet: JenkinsFleetTarget;

  /** Where the pipeline uploads the jars it builds; the fleet hosts read them from there. */
  readonly uploadBucket: s3.IBucket;

  /** Key prefix of the uploads in `uploadBucket`, ending in `/`. */
  readonly uploadPrefix: string;
}

/**
 * Jenkins on an instance of its own, for a fleet: app hosts come and go with the Auto Scaling
 * group, Jenkins and its workspaces must not. Its pipeline builds the app and deploys it with
 * the operator command (`ec2-bluegreen deploy`, bundled into its tools and run with the
 * instance's Node.js, as root through sudo: builds themselves never reach the instance role): the deploy document sent to the fleet by tag, followed host by host, the
 * release recorded for hosts that join later, and those that joined meanwhile caught up.
 */
export class JenkinsHost extends Construct {
  public readonly instance: ec2.Instance;
  public readonly role: iam.Role;
  public readonly securityGroup: ec2.SecurityGroup;
  /** The zipped Jenkins tools: `assets/jenkins/` and the bundled operator command (lib/jenkins-tools.ts). */
  public readonly jenkinsAsset: s3assets.Asset;
  /** Generated password of Jenkins' admin user. */
  public readonly adminPassword: secretsmanager.Secret;
  public readonly settingsParameter: ssm.StringParameter;
  /** The pipeline job's name, when there is a job. */
  public readonly jobName?: string;
  public readonly reachedThrough: 'network' | 'port-forward';
  /** How Jenkins and its build share the instance's memory (lib/memory-budget.ts). */
  public readonly memoryBudget: MemoryBudget;

  constructor(scope: Construct, id: string, props: JenkinsHostProps) {
    super(scope, id);
    const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL);
    this.memoryBudget = budgetFor('jenkins', instanceType.toString(), props.instanceMemoryMiB, 'JenkinsHost');

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Blue/green Jenkins: port 8080 only where allowed, no SSH unless configured',
      // Git, package registries, S3 and the SSM endpoints.
      allowAllOutbound: true,
    });
    for (const cidr of props.jenkinsAllowedCidrs ?? []) {
      this.securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(HOST_PORTS.jenkins), `Jenkins from ${cidr}`);
    }
    for (const cidr of props.ssh?.allowedCidrs ?? []) {
      this.securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(HOST_PORTS.ssh), `SSH from ${cidr}`);
    }
    if ((props.jenkinsAllowedCidrs ?? []).some((cidr) => cidr.endsWith('/0'))) {
      Validations.of(this.securityGroup).acknowledge({
        id: 'AwsSolutions-EC23',
        reason: 'Jenkins is open to anywhere only because jenkinsAllowAnywhere was set explicitly (lib/config.ts refuses it otherwise).',
      });
    }

    this.role = newHostRole(this, 'Blue/green Jenkins: SSM agent, its bundle, deploys to the fleet through the SSM document');
    const fleet = props.fleet;
    const jenkins = newJenkinsParts(this, this.role, {
      ...props.jenkins,
      // The pipeline's fleet mode runs the operator command, shipped beside it.
      jenkinsDir: jenkinsToolsDir(props.jenkins?.jenkinsDir),
      jenkinsAllowedCidrs: props.jenkinsAllowedCidrs,
      memory: this.memoryBudget,
      fleet: {
        deployMode: 'fleet',
        region: Aws.REGION,
        documentName: fleet.documentName,
        fleetTarget: `tag:${fleet.tagKey}=${fleet.tagValue}`,
        maxConcurrency: fleet.maxConcurrency,
        releaseParameter: fleet.releaseParameter.parameterName,
        uploadLocation: props.uploadBucket.s3UrlForObject(props.uploadPrefix),
        outputLogGroup: fleet.outputLogGroupName,
      },
      passwordDescription: `Password of Jenkins' '${JENKINS_ADMIN_USER}' user on the blue/green fleet's Jenkins (generated; the host reads it at boot)`,
      settingsDescription: "Jenkins settings the fleet's Jenkins applies on first boot (KEY=VALUE lines; names of secrets, not their values)",
    });
    this.jenkinsAsset = jenkins.jenkinsAsset;
    this.adminPassword = jenkins.adminPassword;
    this.settingsParameter = jenkins.settingsParameter;
    this.jobName = jenkins.jobName;
    this.reachedThrough = jenkins.reachedThrough;
    this.grantFleetDeploy(props);

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
      boot: {
        role: 'jenkins',
        jenkinsSettingsParameter: this.settingsParameter.parameterName,
        metadataGuard: newMetadataGuard(this, this.role, JENKINS_HOST_METADATA_USERS),
      },
      withoutTerminationProtection:
        "Jenkins' instance lives and dies with the stack: `cdk destroy` must be able to remove it, and a replacement is " +
        'rebuilt by its user data (jobs are configuration as code).',
      owner: 'JenkinsHost',
    });
    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-EC26',
      reason:
        "cdk-nag 3.0.2's EBS encryption rule throws for an instance without a launch template in a stack that has one " +
        "(the fleet's); the root volume is encrypted gp3 (host-parts rootVolume), which the fleet template test asserts.",
    });
  }

  /**
   * What the pipeline's fleet deploy (the operator command) needs: upload a jar, send the
   * document to the tagged hosts, follow the command and read its output as it streams, record
   * the release. Nothing on any other instance, no other log group, no CloudFormation call.
   */
  private grantFleetDeploy(props: JenkinsHostProps): void {
    const stack = Stack.of(this);
    const fleet = props.fleet;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ssm:SendCommand'],
        resources: [stack.formatArn({ service: 'ssm', resource: 'document', resourceName: fleet.documentName })],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ssm:SendCommand'],
        resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
        conditions: { StringEquals: { [`ssm:resourceTag/${fleet.tagKey}`]: fleet.tagValue } },
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ssm:ListCommands', 'ssm:ListCommandInvocations', 'ssm:GetCommandInvocation', 'ssm:DescribeInstanceInformation'],
        resources: ['*'],
      }),
    );
    // Each host's output, live, in the build log: the streams SSM writes for each command.
    const outputLogGroupArn = stack.formatArn({
      service: 'logs',
      resource: 'log-group',
      resourceName: `${fleet.outputLogGroupName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['logs:DescribeLogStreams', 'logs:GetLogEvents'], resources: [outputLogGroupArn] }));
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${renderArnForFinding(stack.resolve(outputLogGroupArn))}]`,
      reason:
        "Reading the deploy document's output log group only: SSM names a stream per command and host " +
        '(COMMAND/INSTANCE/STEP/stdout), known only once the command is sent.',
    });
    fleet.releaseParameter.grantRead(this.role);
    fleet.releaseParameter.grantWrite(this.role);
    const uploads = props.uploadBucket.arnForObjects(`${props.uploadPrefix}*`);
    // Tagging: uploads start `unrecorded`, and recording a release marks its jars `recorded`, so that
    // the upload location's lifecycle rule never expires a jar the fleet's record names.
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:PutObjectTagging'], resources: [uploads] }));
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(props.uploadBucket.node.defaultChild as s3.CfnBucket)}.Arn>/${props.uploadPrefix}*]`,
      reason: 'The pipeline uploads each jar it builds under its sha256, known only at build time, and only under the upload prefix, and tags the jars the release record names.',
    });
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ssm:ListCommands, ssm:ListCommandInvocations and ssm:GetCommandInvocation (following a roll-out) and ' +
        'ssm:DescribeInstanceInformation (finding hosts that joined during it) support no resource-level permissions. ' +
        "SendCommand is limited to the deploy document and to instances carrying the fleet's tag.",
    });
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]`,
      reason: `ssm:SendCommand on instances only when they carry the fleet's tag (condition ssm:resourceTag/${fleet.tagKey}); the Auto Scaling group's instance ids are not known in advance.`,
    });
  }
}
