import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { BlueGreenConfig } from './config.js';
import { DOCUMENT_PARAMS, RELEASE_RETENTION_TAG, STACK_OUTPUTS } from './contract.js';
import { BlueGreenDeployment } from './constructs/bluegreen-deployment.js';
import { BlueGreenFleet } from './constructs/bluegreen-fleet.js';
import { BlueGreenHost } from './constructs/bluegreen-host.js';
import { DeployDocument } from './constructs/deploy-document.js';
import { JENKINS_ADMIN_USER, JENKINS_POLL_MINUTES } from './constructs/host-parts/jenkins-settings.js';
import { HOST_PORTS } from './constructs/host-parts/ports.js';
import { JenkinsHost } from './constructs/jenkins-host.js';

export interface Ec2BlueGreenStackProps extends StackProps {
  /** Validated settings (`readConfig` in lib/config.ts). */
  readonly config: BlueGreenConfig;
}

/** Where Jenkins runs and how it is reached, for the outputs. */
interface JenkinsOutputs {
  readonly publicDnsName: string;
  readonly instanceId: string;
  readonly adminPassword: secretsmanager.ISecret;
  readonly jobName?: string;
  readonly reachedThrough: 'network' | 'port-forward';
}

/**
 * One EC2 host with Nginx, blue/green app slots and Jenkins, the SSM document that deploys to it,
 * and the custom resource that runs that document whenever the artifact changes. With context
 * `hosts` > 1, a fleet of such hosts (without Jenkins) behind a load balancer instead, Jenkins on
 * its own instance, and every deploy rolled across the fleet host by host.
 */
export class Ec2BlueGreenStack extends Stack {
  /** The single host; absent in fleet mode. */
  public readonly host?: BlueGreenHost;
  /** The fleet; absent in single-host mode. */
  public readonly fleet?: BlueGreenFleet;
  /** The fleet's Jenkins; absent in single-host mode, where Jenkins runs on the host. */
  public readonly jenkinsHost?: JenkinsHost;
  public readonly deployDocument: DeployDocument;
  public readonly deployment: BlueGreenDeployment;
  /** Jars deployed outside CloudFormation (`npx ec2-bluegreen deploy JAR`), under `CLI_UPLOAD_PREFIX`. */
  public readonly artifactBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: Ec2BlueGreenStackProps) {
    super(scope, id, props);
    const { config } = props;
    if (config.ignoredContextKeys.length > 0) warnIgnoredContextKeys(this, config.ignoredContextKeys);
    // One value for the document's default, each host's first deploy and the deployment.
    const healthTimeout = Duration.seconds(config.healthTimeoutSeconds);

    const vpc = config.vpcId === undefined ? this.newVpc() : ec2.Vpc.fromLookup(this, 'Vpc', { vpcId: config.vpcId });
    // An existing VPC may be private-only; its NAT then carries packages and SSM traffic.
    const vpcSubnets = { subnetType: vpc.publicSubnets.length > 0 ? ec2.SubnetType.PUBLIC : ec2.SubnetType.PRIVATE_WITH_EGRESS };
    const ssh =
      config.ssh === undefined
        ? undefined
        : { keyPair: ec2.KeyPair.fromKeyPairName(this, 'SshKeyPair', config.ssh.keyPairName), allowedCidrs: config.ssh.allowedCidrs };
    const jenkins = {
      job:
        config.jenkins.appRepository === undefined
          ? undefined
          : { repositoryUrl: config.jenkins.appRepository.url, branch: config.jenkins.appRepository.branch },
      githubTokenSecret:
        config.jenkins.githubTokenSecret === undefined ? undefined : this.importSecret('GitHubTokenSecret', config.jenkins.githubTokenSecret),
    };

    if (config.fleet === undefined) {
      const host = new BlueGreenHost(this, 'Host', {
        vpc,
        vpcSubnets,
        instanceType: config.instanceType,
        instanceMemoryMiB: config.instanceMemoryMiB,
        httpAllowedCidrs: config.httpAllowedCidrs,
        jenkinsAllowedCidrs: config.jenkinsAllowedCidrs,
        ssh,
        tlsCertificateSecret:
          config.tlsCertificateSecretArn === undefined
            ? undefined
            : this.importSecret('TlsCertificateSecret', config.tlsCertificateSecretArn),
        artifact: config.artifact,
        healthTimeout,
        jenkins,
        appInstanceRoleAccess: config.appInstanceRoleAccess,
      });
      this.host = host;

      this.deployDocument = new DeployDocument(this, 'DeployDocument', {
        healthTimeout,
        engine: { bucketName: host.engineAsset.s3BucketName, objectKey: host.engineAsset.s3ObjectKey, hash: host.engineHash },
      });
      this.deployDocument.grantOutputLogging(host.role);

      // A new jar is a new asset hash, so a CloudFormation Update, so a blue/green deploy; the
      // same jar changes nothing and deploys nothing. It depends on the instance, so the first
      // run waits for the instance's creation signal (which the first boot's own deploy gives).
      this.deployment = new BlueGreenDeployment(this, 'Deployment', {
        instance: host.instance,
        document: this.deployDocument,
        artifact: BlueGreenDeployment.artifactFromAsset(host.artifactAsset, host.artifact),
        healthTimeout,
      });

      this.artifactBucket = this.newArtifactBucket(host.role);
      this.addSingleHostOutputs(config, host);
      return;
    }

    const fleet = new BlueGreenFleet(this, 'Fleet', {
      vpc,
      vpcSubnets,
      hosts: config.fleet.hosts,
      instanceType: config.instanceType,
      instanceMemoryMiB: config.instanceMemoryMiB,
      httpAllowedCidrs: config.httpAllowedCidrs,
      certificateArn: config.fleet.certificateArn,
      ssh,
      artifact: config.artifact,
      healthTimeout,
      appInstanceRoleAccess: config.appInstanceRoleAccess,
    });
    this.fleet = fleet;
    this.deployDocument = new DeployDocument(this, 'DeployDocument', {
      healthTimeout,
      engine: { bucketName: fleet.engineAsset.s3BucketName, objectKey: fleet.engineAsset.s3ObjectKey, hash: fleet.engineHash },
    });
    this.deployDocument.grantOutputLogging(fleet.role);
    this.artifactBucket = this.newArtifactBucket(fleet.role);

    // One command to every host carrying the fleet's tag, MaxConcurrency at a time, stopping at
    // the first failure; it waits for the group's creation signals (every host booted).
    this.deployment = new BlueGreenDeployment(this, 'Deployment', {
      fleet: {
        tagKey: fleet.tagKey,
        tagValue: fleet.tagValue,
        maxConcurrency: config.fleet.maxConcurrency,
        releaseParameter: fleet.releaseParameter,
        uploads: { bucket: this.artifactBucket, prefix: CLI_UPLOAD_PREFIX },
      },
      document: this.deployDocument,
      artifact: BlueGreenDeployment.artifactFromAsset(fleet.artifactAsset, fleet.artifact),
      healthTimeout,
    });
    this.deployment.waitFor(fleet.autoScalingGroup);

    this.jenkinsHost = new JenkinsHost(this, 'Jenkins', {
      vpc,
      vpcSubnets,
      instanceType: config.fleet.jenkinsInstanceType,
      instanceMemoryMiB: config.fleet.jenkinsInstanceMemoryMiB,
      jenkinsAllowedCidrs: config.jenkinsAllowedCidrs,
      ssh,
      jenkins,
      fleet: {
        documentName: this.deployDocument.documentName,
        tagKey: fleet.tagKey,
        tagValue: fleet.tagValue,
        maxConcurrency: config.fleet.maxConcurrency,
        releaseParameter: fleet.releaseParameter,
        outputLogGroupName: this.deployDocument.outputLogGroup.logGroupName,
      },
      uploadBucket: this.artifactBucket,
      uploadPrefix: CLI_UPLOAD_PREFIX,
    });
    this.addFleetOutputs(config, fleet, this.jenkinsHost);
  }

  /**
   * Where `npx ec2-bluegreen deploy JAR` uploads jars (cli/); the host reads objects under
   * `CLI_UPLOAD_PREFIX` and nothing else in it.
   */
  private newArtifactBucket(hostRole: iam.Role): s3.Bucket {
    const bucket = new s3.Bucket(this, 'ArtifactBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // The host keeps its own copy of every release it ran, so an upload is read while it deploys,
      // except the fleet's recorded release and the one before it: hosts the Auto Scaling group
      // adds boot the first, and a fleet rollback deploys the second where a host has no standby.
      // Uploads are tagged unrecorded and recording tags those two recorded (lib/deploy/retention.ts):
      // only unrecorded uploads expire.
      lifecycleRules: [
        {
          id: 'ExpireUnrecordedUploads',
          prefix: CLI_UPLOAD_PREFIX,
          tagFilters: { [RELEASE_RETENTION_TAG.key]: RELEASE_RETENTION_TAG.unrecorded },
          expiration: UPLOAD_EXPIRATION,
        },
      ],
      // Emptying it on delete would take another Lambda function; unrecorded uploads expire by themselves.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    iam.Grant.addToPrincipal({ grantee: hostRole, actions: ['s3:GetObject'], resourceArns: [bucket.arnForObjects(`${CLI_UPLOAD_PREFIX}*`)] });
    Validations.of(hostRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${this.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${CLI_UPLOAD_PREFIX}*]`,
      reason: 'The host reads the jars the operator command uploads; their keys (their sha256) are only known at deploy time.',
    });
    Validations.of(bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'Holds only jars uploaded by the operator command, under their sha256; who deployed what is in the Run Command history and CloudTrail.',
    });
    return bucket;
  }

  /** An existing secret by ARN (complete or partial) or by name. */
  private importSecret(id: string, nameOrArn: string): secretsmanager.ISecret {
    return nameOrArn.startsWith('arn:')
      ? secretsmanager.Secret.fromSecretAttributes(this, id, secretArnAttributes(nameOrArn))
      : secretsmanager.Secret.fromSecretNameV2(this, id, nameOrArn);
  }

  /** Public subnets only: no NAT gateway, so an idle stack costs only the instance. */
  private newVpc(): ec2.IVpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
    });
    // Rejected traffic only: a record of what the security group turned away, at little cost.
    const flowLogGroup = new logs.LogGroup(this, 'VpcFlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });
    return vpc;
  }

  private addSingleHostOutputs(config: BlueGreenConfig, host: BlueGreenHost): void {
    const instanceId = host.instance.instanceId;
    new CfnOutput(this, STACK_OUTPUTS.siteUrl, { description: 'The app, through Nginx', value: host.siteUrl });
    this.addJenkinsOutputs(config, {
      publicDnsName: host.instance.instancePublicDnsName,
      instanceId,
      adminPassword: host.jenkinsAdminPassword,
      jobName: host.jenkinsJobName,
      reachedThrough: host.jenkinsReachedThrough,
    });
    new CfnOutput(this, STACK_OUTPUTS.instanceId, { value: instanceId });
    this.addDocumentOutputs();
    new CfnOutput(this, 'DeployCommand', {
      description:
        'Deploys a jar through the document (here the first release again: put your own s3:// or https:// URI, sha256 and version)',
      value: this.deployDocument.sendCommandCli(instanceId, {
        [DOCUMENT_PARAMS.action]: 'deploy',
        [DOCUMENT_PARAMS.artifactUri]: host.artifactAsset.s3ObjectUrl,
        [DOCUMENT_PARAMS.sha256]: host.artifact.sha256,
        [DOCUMENT_PARAMS.version]: host.artifact.version,
      }),
    });
  }

  private addFleetOutputs(config: BlueGreenConfig, fleet: BlueGreenFleet, jenkins: JenkinsHost): void {
    new CfnOutput(this, STACK_OUTPUTS.siteUrl, { description: 'The app, through the load balancer', value: fleet.siteUrl });
    this.addJenkinsOutputs(config, {
      publicDnsName: jenkins.instance.instancePublicDnsName,
      instanceId: jenkins.instance.instanceId,
      adminPassword: jenkins.adminPassword,
      jobName: jenkins.jobName,
      reachedThrough: jenkins.reachedThrough,
    });
    new CfnOutput(this, STACK_OUTPUTS.fleetTarget, {
      description: 'The SSM target naming every app host (Run Command: Specify instance tags)',
      value: fleet.ssmTarget,
    });
    new CfnOutput(this, STACK_OUTPUTS.fleetMaxConcurrency, {
      description: 'How many hosts a deploy swaps at once (SSM MaxConcurrency; MaxErrors is 0)',
      value: config.fleet!.maxConcurrency,
    });
    new CfnOutput(this, STACK_OUTPUTS.fleetReleaseParameter, {
      description: 'The release the fleet runs: new hosts deploy it at boot; roll-outs record it after every host succeeded',
      value: fleet.releaseParameter.parameterName,
    });
    new CfnOutput(this, 'AutoScalingGroupName', { value: fleet.autoScalingGroup.autoScalingGroupName });
    this.addDocumentOutputs();
    new CfnOutput(this, 'DeployCommand', {
      description:
        'Rolls a jar across the fleet through the document (here the first release again: put your own URI, sha256 and ' +
        "version; then record it in the release parameter, which 'npx ec2-bluegreen deploy' does for you)",
      value: this.deployDocument.sendCommandCli(
        { tagKey: fleet.tagKey, tagValue: fleet.tagValue, maxConcurrency: config.fleet!.maxConcurrency },
        {
          [DOCUMENT_PARAMS.action]: 'deploy',
          [DOCUMENT_PARAMS.artifactUri]: fleet.artifactAsset.s3ObjectUrl,
          [DOCUMENT_PARAMS.sha256]: fleet.artifact.sha256,
          [DOCUMENT_PARAMS.version]: fleet.artifact.version,
        },
      ),
    });
  }

  private addDocumentOutputs(): void {
    new CfnOutput(this, STACK_OUTPUTS.documentName, {
      description: 'SSM Command document: deploy, rollback, status or history',
      value: this.deployDocument.documentName,
    });
    new CfnOutput(this, STACK_OUTPUTS.outputLogGroup, {
      description: 'CloudWatch log group for the document\'s command output',
      value: this.deployDocument.outputLogGroup.logGroupName,
    });
    new CfnOutput(this, STACK_OUTPUTS.artifactUploadLocation, {
      description: "Where 'npx ec2-bluegreen deploy JAR' uploads jars (the instance role reads them)",
      value: this.artifactBucket.s3UrlForObject(CLI_UPLOAD_PREFIX),
    });
  }

  private addJenkinsOutputs(config: BlueGreenConfig, jenkins: JenkinsOutputs): void {
    const startSession = `aws ssm start-session --region ${this.region} --target ${jenkins.instanceId}`;
    new CfnOutput(this, 'JenkinsAccess', {
      description: 'How to reach Jenkins',
      value:
        config.jenkinsAllowedCidrs.length > 0
          ? `http://${jenkins.publicDnsName}:${HOST_PORTS.jenkins}/`
          : `${startSession} --document-name AWS-StartPortForwardingSession ` +
            `--parameters '{"portNumber":["${HOST_PORTS.jenkins}"],"localPortNumber":["${HOST_PORTS.jenkins}"]}' ` +
            `# then open http://localhost:${HOST_PORTS.jenkins}/`,
    });
    new CfnOutput(this, 'JenkinsAdminPasswordCommand', {
      description: `Prints the password of Jenkins' '${JENKINS_ADMIN_USER}' user, generated by the stack and kept in Secrets Manager only`,
      value:
        `aws secretsmanager get-secret-value --region ${this.region} --secret-id ${jenkins.adminPassword.secretArn} ` +
        '--query SecretString --output text',
    });
    new CfnOutput(this, 'JenkinsJob', {
      description: 'The pipeline job Jenkins runs for the app repository, and how pushes reach it',
      value: this.jenkinsJobSummary(config, jenkins),
    });
  }

  private jenkinsJobSummary(config: BlueGreenConfig, jenkins: JenkinsOutputs): string {
    const repository = config.jenkins.appRepository;
    const jobName = jenkins.jobName;
    if (repository === undefined || jobName === undefined) {
      return 'none: deploy with -c appRepositoryUrl=https://github.com/OWNER/REPO (and -c appRepositoryBranch, default main) to create it';
    }
    const job = `'${jobName}' builds ${repository.url} (branch ${repository.branch}) with its Jenkinsfile`;
    if (jenkins.reachedThrough === 'port-forward') {
      return (
        `${job}; GitHub cannot reach this Jenkins (jenkinsAllowedCidrs is empty), ` +
        `so the job looks for new commits every ${JENKINS_POLL_MINUTES} minutes`
      );
    }
    const webhookUrl = `http://${jenkins.publicDnsName}:${HOST_PORTS.jenkins}/github-webhook/`;
    return config.jenkins.githubTokenSecret === undefined
      ? `${job} on each push once the repository has the webhook ${webhookUrl} (push events; add it in the repository's settings)`
      : `${job} on each push; Jenkins registers the webhook ${webhookUrl} with the GitHub token ` +
          "(GitHub's hook addresses must be in jenkinsAllowedCidrs)";
  }
}

/** The key prefix of jars uploaded by the operator command (cli/). */
const CLI_UPLOAD_PREFIX = 'cli-releases/';

/** How long an upload no fleet record names is kept. */
const UPLOAD_EXPIRATION = Duration.days(90);

/** A complete secret ARN ends in '-' and six random characters; a partial one does not. */
function secretArnAttributes(arn: string): secretsmanager.SecretAttributes {
  return /-[A-Za-z0-9]{6}$/.test(arn) ? { secretCompleteArn: arn } : { secretPartialArn: arn };
}

/**
 * Says at synth, as a warning on the stack, which context keys nothing reads. They are far from
 * every key the app reads (a close one fails synth), so they may be meant for something else;
 * a warning, not a failure, lets such a key stay while a forgotten setting still shows.
 */
function warnIgnoredContextKeys(stack: Stack, keys: readonly string[]): void {
  const one = keys.length === 1;
  Validations.of(stack).addWarning(
    'ec2-bluegreen:ignoredContextKeys',
    `Context ${keys.map((key) => `'${key}'`).join(', ')} ${one ? 'is' : 'are'} not read by this app, so ${one ? 'its value is' : 'their values are'} ` +
      `ignored. If ${one ? 'it was' : 'they were'} meant as a setting, use the key's name from docs/context-keys.md; otherwise this warning is all ${one ? 'it does' : 'they do'}.`,
  );
}
