import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { BlueGreenConfig } from './config.js';
import { DOCUMENT_PARAMS, STACK_OUTPUTS } from './contract.js';
import { BlueGreenDeployment } from './constructs/bluegreen-deployment.js';
import { BlueGreenHost, HOST_PORTS, JENKINS_ADMIN_USER, JENKINS_POLL_MINUTES } from './constructs/bluegreen-host.js';
import { DeployDocument } from './constructs/deploy-document.js';

export interface Ec2BlueGreenStackProps extends StackProps {
  /** Validated settings (`readConfig` in lib/config.ts). */
  readonly config: BlueGreenConfig;
}

/**
 * One EC2 host with Nginx, blue/green app slots and Jenkins, the SSM document that deploys to it,
 * and the custom resource that runs that document whenever the artifact changes.
 */
export class Ec2BlueGreenStack extends Stack {
  public readonly host: BlueGreenHost;
  public readonly deployDocument: DeployDocument;
  public readonly deployment: BlueGreenDeployment;
  /** Jars deployed outside CloudFormation (`npx ec2-bluegreen deploy JAR`), under `CLI_UPLOAD_PREFIX`. */
  public readonly artifactBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: Ec2BlueGreenStackProps) {
    super(scope, id, props);
    const { config } = props;

    const vpc = config.vpcId === undefined ? this.newVpc() : ec2.Vpc.fromLookup(this, 'Vpc', { vpcId: config.vpcId });

    this.host = new BlueGreenHost(this, 'Host', {
      vpc,
      // An existing VPC may be private-only; its NAT then carries packages and SSM traffic.
      vpcSubnets: {
        subnetType: vpc.publicSubnets.length > 0 ? ec2.SubnetType.PUBLIC : ec2.SubnetType.PRIVATE_WITH_EGRESS,
      },
      instanceType: config.instanceType,
      httpAllowedCidrs: config.httpAllowedCidrs,
      jenkinsAllowedCidrs: config.jenkinsAllowedCidrs,
      ssh:
        config.ssh === undefined
          ? undefined
          : {
              keyPair: ec2.KeyPair.fromKeyPairName(this, 'SshKeyPair', config.ssh.keyPairName),
              allowedCidrs: config.ssh.allowedCidrs,
            },
      tlsCertificateSecret:
        config.tlsCertificateSecretArn === undefined
          ? undefined
          : this.importSecret('TlsCertificateSecret', config.tlsCertificateSecretArn),
      artifact: config.artifact,
      healthTimeoutSeconds: config.healthTimeoutSeconds,
      jenkins: {
        job:
          config.jenkins.appRepository === undefined
            ? undefined
            : { repositoryUrl: config.jenkins.appRepository.url, branch: config.jenkins.appRepository.branch },
        githubTokenSecret:
          config.jenkins.githubTokenSecret === undefined ? undefined : this.importSecret('GitHubTokenSecret', config.jenkins.githubTokenSecret),
      },
    });

    this.deployDocument = new DeployDocument(this, 'DeployDocument', {
      healthTimeoutSeconds: config.healthTimeoutSeconds,
    });
    this.deployDocument.grantOutputLogging(this.host.role);

    // A new jar is a new asset hash, so a CloudFormation Update, so a blue/green deploy; the
    // same jar changes nothing and deploys nothing. It depends on the instance, so the first
    // run waits for the instance's creation signal (which the first boot's own deploy gives).
    this.deployment = new BlueGreenDeployment(this, 'Deployment', {
      instance: this.host.instance,
      document: this.deployDocument,
      artifact: BlueGreenDeployment.artifactFromAsset(this.host.artifactAsset, this.host.artifact),
      healthTimeout: Duration.seconds(config.healthTimeoutSeconds),
    });

    this.artifactBucket = this.newArtifactBucket();

    this.addOutputs(config);
  }

  /**
   * Where `npx ec2-bluegreen deploy JAR` uploads jars (cli/); the host reads objects under
   * `CLI_UPLOAD_PREFIX` and nothing else in it.
   */
  private newArtifactBucket(): s3.Bucket {
    const bucket = new s3.Bucket(this, 'ArtifactBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // The host keeps its own copy of every release it ran: an upload is only read while it deploys.
      lifecycleRules: [{ prefix: CLI_UPLOAD_PREFIX, expiration: Duration.days(90) }],
      // Emptying it on delete would take another Lambda function; it empties itself within 90 days.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    iam.Grant.addToPrincipal({ grantee: this.host.role, actions: ['s3:GetObject'], resourceArns: [bucket.arnForObjects(`${CLI_UPLOAD_PREFIX}*`)] });
    Validations.of(this.host.role).acknowledge({
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

  private addOutputs(config: BlueGreenConfig): void {
    const instanceId = this.host.instance.instanceId;
    const startSession = `aws ssm start-session --region ${this.region} --target ${instanceId}`;

    new CfnOutput(this, STACK_OUTPUTS.siteUrl, { description: 'The app, through Nginx', value: this.host.siteUrl });
    new CfnOutput(this, 'JenkinsAccess', {
      description: 'How to reach Jenkins',
      value:
        config.jenkinsAllowedCidrs.length > 0
          ? `http://${this.host.instance.instancePublicDnsName}:${HOST_PORTS.jenkins}/`
          : `${startSession} --document-name AWS-StartPortForwardingSession ` +
            `--parameters '{"portNumber":["${HOST_PORTS.jenkins}"],"localPortNumber":["${HOST_PORTS.jenkins}"]}' ` +
            `# then open http://localhost:${HOST_PORTS.jenkins}/`,
    });
    new CfnOutput(this, 'JenkinsAdminPasswordCommand', {
      description: `Prints the password of Jenkins' '${JENKINS_ADMIN_USER}' user, generated by the stack and kept in Secrets Manager only`,
      value:
        `aws secretsmanager get-secret-value --region ${this.region} --secret-id ${this.host.jenkinsAdminPassword.secretArn} ` +
        '--query SecretString --output text',
    });
    new CfnOutput(this, 'JenkinsJob', {
      description: 'The pipeline job Jenkins runs for the app repository, and how pushes reach it',
      value: this.jenkinsJobSummary(config),
    });
    new CfnOutput(this, STACK_OUTPUTS.instanceId, { value: instanceId });
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
    new CfnOutput(this, 'DeployCommand', {
      description:
        'Deploys a jar through the document (here the first release again: put your own s3:// or https:// URI, sha256 and version)',
      value: this.deployDocument.sendCommandCli(instanceId, {
        [DOCUMENT_PARAMS.action]: 'deploy',
        [DOCUMENT_PARAMS.artifactUri]: this.host.artifactAsset.s3ObjectUrl,
        [DOCUMENT_PARAMS.sha256]: this.host.artifact.sha256,
        [DOCUMENT_PARAMS.version]: this.host.artifact.version,
      }),
    });
  }

  private jenkinsJobSummary(config: BlueGreenConfig): string {
    const repository = config.jenkins.appRepository;
    const jobName = this.host.jenkinsJobName;
    if (repository === undefined || jobName === undefined) {
      return 'none: deploy with -c appRepositoryUrl=https://github.com/OWNER/REPO (and -c appRepositoryBranch, default main) to create it';
    }
    const job = `'${jobName}' builds ${repository.url} (branch ${repository.branch}) with its Jenkinsfile`;
    if (this.host.jenkinsReachedThrough === 'port-forward') {
      return (
        `${job}; GitHub cannot reach this Jenkins (jenkinsAllowedCidrs is empty), ` +
        `so the job looks for new commits every ${JENKINS_POLL_MINUTES} minutes`
      );
    }
    const webhookUrl = `http://${this.host.instance.instancePublicDnsName}:${HOST_PORTS.jenkins}/github-webhook/`;
    return config.jenkins.githubTokenSecret === undefined
      ? `${job} on each push once the repository has the webhook ${webhookUrl} (push events; add it in the repository's settings)`
      : `${job} on each push; Jenkins registers the webhook ${webhookUrl} with the GitHub token ` +
          "(GitHub's hook addresses must be in jenkinsAllowedCidrs)";
  }
}

/** The key prefix of jars uploaded by the operator command (cli/). */
const CLI_UPLOAD_PREFIX = 'cli-releases/';

/** A complete secret ARN ends in '-' and six random characters; a partial one does not. */
function secretArnAttributes(arn: string): secretsmanager.SecretAttributes {
  return /-[A-Za-z0-9]{6}$/.test(arn) ? { secretCompleteArn: arn } : { secretPartialArn: arn };
}
