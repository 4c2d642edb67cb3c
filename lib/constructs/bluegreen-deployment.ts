import { CustomResource, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as ssm from 'aws-cdk-lib/aws-ssm';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct, type IDependable } from 'constructs';
import { DEFAULT_DEPLOY_SETTINGS } from '../deploy/defaults.js';
import { onEventTimeoutSeconds, timeoutProblems } from '../deploy/timeouts.js';
import {
  DEPLOY_FUNCTION_ENV,
  DEPLOY_HANDLERS,
  DEPLOYMENT_ATTRIBUTES,
  DEPLOYMENT_PROPERTIES,
  DOCUMENT_PARAM_PATTERNS,
  MAX_CONCURRENCY_PATTERN,
} from '../contract.js';
import { projectPath } from '../paths.js';
import { checkedHealthTimeoutSeconds } from './health-timeout.js';

/** The SSM Command document the deployment runs (`DeployDocument` is one). */
export interface DeploymentDocument {
  /** The document's name. */
  readonly documentName: string;
  /** Its step's execution timeout: how long one deploy may run on the host. */
  readonly executionTimeout: Duration;
  /**
   * Where the command's full output goes; failure messages point there.
   * @default - no CloudWatch output: the output stays in SSM (first 24,000 characters)
   */
  readonly outputLogGroup?: logs.ILogGroup;
  /**
   * The engine bundle the document installs when asked (its `engineUri` parameter). Each deploy
   * asks, so a host that runs another engine gets this one first, and a new bundle is an Update
   * (so a deploy) by itself.
   * @default - the document installs no engine: the engine is left as the first boot installed it
   */
  readonly engineUri?: string;
}

/** The jar to deploy. */
export interface DeploymentArtifact {
  /**
   * `s3://BUCKET/KEY` (readable by the instance's role), an `https://` URL, or an absolute path on
   * the host: whatever the document's `artifactUri` parameter accepts.
   */
  readonly uri: string;
  /** The jar's SHA-256, 64 lower-case hex digits; the host refuses a jar that differs. */
  readonly sha256: string;
  /**
   * Release label shown by `bluegreen status` and returned as the `Version` attribute.
   * @default - the host labels the release with the start of its sha256
   */
  readonly version?: string;
}

/** A fleet of hosts named by a tag: one command rolls the deploy across them. */
export interface DeploymentFleet {
  /** The tag every host carries, and its value. */
  readonly tagKey: string;
  readonly tagValue: string;
  /**
   * How many hosts swap at once (SSM `MaxConcurrency`): a number or a percentage. `MaxErrors` is
   * always 0: the first failing host stops the roll-out and the rest keep the previous release.
   * @default '1'
   */
  readonly maxConcurrency?: string;
  /** Where the release is recorded after it succeeded on every host; new hosts boot it. */
  readonly releaseParameter: ssm.IStringParameter;
  /**
   * Where the operator command uploads jars, whose lifecycle rule expires only those tagged
   * `RELEASE_RETENTION_TAG.unrecorded`: recording a release tags the jars there that the record
   * names `recorded` (a stack update's record may name one as its previous release), and the one
   * it no longer names `unrecorded`.
   * @default - none: recording tags nothing
   */
  readonly uploads?: { readonly bucket: s3.IBucket; readonly prefix: string };
}

export interface BlueGreenDeploymentProps {
  /**
   * The instance to deploy to, or the id of one that is not part of this app. Given as a
   * construct, the first deploy waits for it, including its creation signal.
   * @default - none: `fleet` must be given instead
   */
  readonly instance?: ec2.IInstance | string;

  /**
   * A fleet to roll the deploy across instead of one instance (give exactly one of the two).
   * Make the deployment wait for the fleet's creation with `waitFor`.
   * @default - none: `instance` must be given instead
   */
  readonly fleet?: DeploymentFleet;

  /** The deploy document. */
  readonly document: DeploymentDocument;

  /** The jar. A change to its location, checksum or version is a CloudFormation Update: a deploy. */
  readonly artifact: DeploymentArtifact;

  /**
   * How long the new slot may take to become healthy (whole seconds, 1 to 999).
   * @default - the document's default
   */
  readonly healthTimeout?: Duration;

  /**
   * How long a deploy waits for the instance to be Online in Systems Manager before it fails.
   * @default Duration.minutes(5)
   */
  readonly onlineWait?: Duration;

  /**
   * How long the command may wait to start on the instance (SendCommand's `TimeoutSeconds`). For a
   * fleet, hosts wait their turn under `MaxConcurrency` inside this window, so the last host of a
   * roll-out must start within it.
   * @default Duration.minutes(5) for one instance; for a fleet, as long as the timeouts nest:
   * totalTimeout minus the document's execution timeout minus one query interval (about 13 minutes)
   */
  readonly deliveryTimeout?: Duration;

  /**
   * How often the provider asks whether the command has finished. A rollback to the warm standby
   * takes about a second on the host, so this is most of what CloudFormation waits for it.
   * @default Duration.seconds(5)
   */
  readonly queryInterval?: Duration;

  /**
   * How long the provider waits for the command to finish. Must exceed the document's execution
   * timeout plus the delivery timeout plus one query interval.
   * @default Duration.minutes(50)
   */
  readonly totalTimeout?: Duration;

  /**
   * How long CloudFormation waits for the custom resource; at most one hour. Must cover the
   * online wait, one send and the provider's total timeout.
   * @default Duration.hours(1)
   */
  readonly serviceTimeout?: Duration;

  /**
   * How long the deploy functions' logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Runs the deploy document on the instance whenever the artifact changes: a Lambda-backed custom
 * resource (CDK Provider framework) whose Create and Update send `action=deploy` through SSM Run
 * Command and wait for the result. A rollback of the stack re-sends the previous artifact, which
 * the host switches back to quickly (warm standby) or finds already live. Delete touches nothing.
 */
export class BlueGreenDeployment extends Construct {
  /** The `Custom::BlueGreenDeployment` resource. */
  public readonly resource: CustomResource;
  public readonly provider: Provider;
  public readonly onEventFunction: NodejsFunction;
  public readonly isCompleteFunction: NodejsFunction;
  /** What SendCommand may reach, for the acknowledgements' reasons. */
  private readonly sendScope: string;

  constructor(scope: Construct, id: string, props: BlueGreenDeploymentProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if ((props.instance === undefined) === (props.fleet === undefined)) {
      throw new Error('BlueGreenDeployment: give exactly one of instance (one host) and fleet (hosts named by a tag)');
    }
    const instanceId = props.instance === undefined ? undefined : typeof props.instance === 'string' ? props.instance : props.instance.instanceId;
    const maxConcurrency = props.fleet === undefined ? undefined : checkMaxConcurrency(props.fleet.maxConcurrency ?? '1');
    this.sendScope = props.fleet === undefined ? 'this instance' : "the instances carrying the fleet's tag";
    checkArtifact(props.artifact);
    const healthTimeoutSeconds = props.healthTimeout === undefined ? undefined : checkedHealthTimeoutSeconds('BlueGreenDeployment', props.healthTimeout);

    const onlineWait = props.onlineWait ?? Duration.seconds(DEFAULT_DEPLOY_SETTINGS.onlineWaitSeconds);
    const queryInterval = props.queryInterval ?? Duration.seconds(5);
    const totalTimeout = props.totalTimeout ?? Duration.minutes(50);
    const deliveryTimeout = props.deliveryTimeout ?? defaultDeliveryTimeout(props.fleet !== undefined, totalTimeout, props.document.executionTimeout, queryInterval);
    const serviceTimeout = props.serviceTimeout ?? Duration.hours(1);
    checkTimeouts({
      executionTimeout: props.document.executionTimeout,
      deliveryTimeout,
      onlineWait,
      queryInterval,
      totalTimeout,
      serviceTimeout,
    });

    const environment: Record<string, string> = {
      [DEPLOY_FUNCTION_ENV.onlineWaitSeconds]: String(onlineWait.toSeconds()),
      [DEPLOY_FUNCTION_ENV.deliveryTimeoutSeconds]: String(deliveryTimeout.toSeconds()),
      [DEPLOY_FUNCTION_ENV.executionTimeoutSeconds]: String(props.document.executionTimeout.toSeconds()),
    };
    if (props.document.outputLogGroup !== undefined) {
      environment[DEPLOY_FUNCTION_ENV.outputLogGroupName] = props.document.outputLogGroup.logGroupName;
    }
    if (props.fleet?.uploads !== undefined) {
      environment[DEPLOY_FUNCTION_ENV.uploadLocation] = props.fleet.uploads.bucket.s3UrlForObject(props.fleet.uploads.prefix);
    }
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.onEventFunction = this.deployFunction('OnEvent', DEPLOY_HANDLERS.onEvent, {
      description: 'Blue/green deploy: waits until the instance is Online in SSM and sends the deploy document',
      timeout: Duration.seconds(onEventTimeoutSeconds(onlineWait.toSeconds())),
      environment,
      retention,
    });
    this.isCompleteFunction = this.deployFunction('IsComplete', DEPLOY_HANDLERS.isComplete, {
      description: 'Blue/green deploy: reads the deploy command until it ends, and explains a failure',
      timeout: Duration.minutes(1),
      environment,
      retention,
    });

    const documentArn = stack.formatArn({ service: 'ssm', resource: 'document', resourceName: props.document.documentName });
    if (instanceId !== undefined) {
      // Sending is the one write: this document, this instance, nothing else.
      this.onEventFunction.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['ssm:SendCommand'],
          resources: [documentArn, stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: instanceId })],
        }),
      );
      this.addReadPolicy(
        this.onEventFunction,
        ['ssm:DescribeInstanceInformation', 'ssm:ListCommands'],
        'tell whether the instance is Online, and find a command whose SendCommand answer was lost',
      );
      this.addReadPolicy(
        this.isCompleteFunction,
        ['ssm:GetCommandInvocation', 'ssm:ListCommandInvocations'],
        "reads the deploy command's status and output",
      );
    } else {
      this.grantFleet(props.fleet!, documentArn);
    }

    const frameworkLogs = new logs.LogGroup(this, 'ProviderLogs', { retention, removalPolicy: RemovalPolicy.DESTROY });
    this.provider = new Provider(this, 'Provider', {
      onEventHandler: this.onEventFunction,
      isCompleteHandler: this.isCompleteFunction,
      queryInterval,
      totalTimeout,
      logGroup: frameworkLogs,
      frameworkOnEventRole: this.lambdaRole('ProviderOnEventRole', 'Blue/green deploy: relays CloudFormation events', frameworkLogs),
      frameworkCompleteAndTimeoutRole: this.lambdaRole(
        'ProviderWaiterRole',
        'Blue/green deploy: relays isComplete and timeouts to CloudFormation',
        frameworkLogs,
      ),
      disableWaiterStateMachineLogging: false,
      waiterStateMachineLogOptions: {
        destination: new logs.LogGroup(this, 'WaiterLogs', { retention, removalPolicy: RemovalPolicy.DESTROY }),
        level: sfn.LogLevel.ALL,
      },
    });
    this.acknowledgeProviderFindings();

    const target: Record<string, string> =
      props.fleet === undefined
        ? { [DEPLOYMENT_PROPERTIES.instanceId]: instanceId! }
        : {
            [DEPLOYMENT_PROPERTIES.targetTagKey]: props.fleet.tagKey,
            [DEPLOYMENT_PROPERTIES.targetTagValue]: props.fleet.tagValue,
            [DEPLOYMENT_PROPERTIES.maxConcurrency]: maxConcurrency!,
            [DEPLOYMENT_PROPERTIES.releaseParameterName]: props.fleet.releaseParameter.parameterName,
          };
    const properties: Record<string, string> = {
      ...target,
      [DEPLOYMENT_PROPERTIES.documentName]: props.document.documentName,
      [DEPLOYMENT_PROPERTIES.artifactUri]: props.artifact.uri,
      [DEPLOYMENT_PROPERTIES.sha256]: props.artifact.sha256,
    };
    if (props.artifact.version !== undefined) properties[DEPLOYMENT_PROPERTIES.version] = props.artifact.version;
    if (healthTimeoutSeconds !== undefined) properties[DEPLOYMENT_PROPERTIES.healthTimeout] = String(healthTimeoutSeconds);
    if (props.document.engineUri !== undefined) properties[DEPLOYMENT_PROPERTIES.engineUri] = props.document.engineUri;
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: this.provider.serviceToken,
      resourceType: 'Custom::BlueGreenDeployment',
      properties,
      serviceTimeout,
    });
    if (props.instance !== undefined && typeof props.instance !== 'string') this.waitFor(props.instance);
  }

  /**
   * A fleet roll-out: both functions send (onEvent the roll-out, isComplete the catch-up to hosts
   * that joined meanwhile), only this document, only to instances carrying the fleet's tag;
   * isComplete records the release in the one parameter.
   */
  private grantFleet(fleet: DeploymentFleet, documentArn: string): void {
    const stack = Stack.of(this);
    const instancesArn = stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
    for (const fn of [this.onEventFunction, this.isCompleteFunction]) {
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['ssm:SendCommand'], resources: [documentArn] }));
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['ssm:SendCommand'],
          resources: [instancesArn],
          conditions: { StringEquals: { [`ssm:resourceTag/${fleet.tagKey}`]: fleet.tagValue } },
        }),
      );
      Validations.of(fn.role!).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
        reason: `ssm:SendCommand on instances only when they carry the fleet's tag (condition ssm:resourceTag/${fleet.tagKey}); the Auto Scaling group's instance ids are not known in advance.`,
      });
    }
    this.addReadPolicy(
      this.onEventFunction,
      ['ssm:DescribeInstanceInformation', 'ssm:ListCommands'],
      "tell which of the fleet's hosts are Online, and find a command whose SendCommand answer was lost",
    );
    this.addReadPolicy(
      this.isCompleteFunction,
      ['ssm:ListCommands', 'ssm:GetCommandInvocation', 'ssm:ListCommandInvocations', 'ssm:DescribeInstanceInformation'],
      'follow the roll-out on every host and find hosts that joined during it',
    );
    fleet.releaseParameter.grantRead(this.isCompleteFunction);
    fleet.releaseParameter.grantWrite(this.isCompleteFunction);
    if (fleet.uploads !== undefined) {
      const { bucket, prefix } = fleet.uploads;
      this.isCompleteFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObjectTagging'], resources: [bucket.arnForObjects(`${prefix}*`)] }));
      Validations.of(this.isCompleteFunction.role!).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${prefix}*]`,
        reason: "Tags the uploaded jars the fleet's release record names, so that the upload lifecycle rule keeps them; their keys (their sha256) are known only when recorded.",
      });
    }
  }

  /** The slot serving after the last deploy: `blue`, `green`, or `unknown` when the host's output did not say. */
  public get liveSlot(): string {
    return this.resource.getAttString(DEPLOYMENT_ATTRIBUTES.liveSlot);
  }

  /** The release label serving after the last deploy. */
  public get deployedVersion(): string {
    return this.resource.getAttString(DEPLOYMENT_ATTRIBUTES.version);
  }

  /** The SSM command id of the last deploy (`aws ssm get-command-invocation --command-id ...`). */
  public get commandId(): string {
    return this.resource.getAttString(DEPLOYMENT_ATTRIBUTES.commandId);
  }

  /**
   * Makes every deploy wait for `dependables`: for an `ec2.Instance` with a CreationPolicy, that
   * is its creation signal, so the first deploy runs only after the first boot has finished.
   */
  public waitFor(...dependables: IDependable[]): void {
    this.resource.node.addDependency(...dependables);
  }

  /** The location, checksum and label of a jar published as an S3 asset. */
  public static artifactFromAsset(asset: s3assets.Asset, jar: { readonly sha256: string; readonly version?: string }): DeploymentArtifact {
    return { uri: asset.s3ObjectUrl, sha256: jar.sha256, version: jar.version };
  }

  private deployFunction(
    id: string,
    handler: string,
    options: { description: string; timeout: Duration; environment: Record<string, string>; retention: logs.RetentionDays },
  ): NodejsFunction {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention: options.retention, removalPolicy: RemovalPolicy.DESTROY });
    const role = this.lambdaRole(`${id}Role`, options.description, logGroup);
    const fn = new NodejsFunction(this, `${id}Function`, {
      entry: projectPath('lambda', 'deploy', 'index.ts'),
      handler,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      description: options.description,
      timeout: options.timeout,
      environment: options.environment,
      role,
      logGroup,
      projectRoot: projectPath(),
      depsLockFilePath: projectPath('package-lock.json'),
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: false,
        // The runtime provides the SDK v3.
        externalModules: ['@aws-sdk/*'],
      },
    });
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is the runtime the project chose for the deploy handlers (an LTS line Lambda supports into 2027) and ' +
        'the bundle targets it (esbuild target node22); moving to a newer one is a deliberate two-line change.',
    });
    return fn;
  }

  /** A role for a Lambda function that writes only to `logGroup`: no AWSLambdaBasicExecutionRole. */
  private lambdaRole(id: string, description: string, logGroup: logs.ILogGroup): iam.Role {
    const role = new iam.Role(this, id, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }),
    );
    return role;
  }

  private addReadPolicy(fn: NodejsFunction, actions: string[], purpose: string): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ actions, resources: ['*'] }));
    Validations.of(fn.role!).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        `${actions.join(' and ')} (which ${purpose}) support no resource-level permissions: IAM only matches them on ` +
        `'*'. They read; the one write, ssm:SendCommand, is limited to this document and ${this.sendScope}.`,
    });
  }

  /**
   * Findings on what the Provider framework creates or grants (invoke permissions, its waiter
   * state machine), which this construct configures but does not shape.
   */
  private acknowledgeProviderFindings(): void {
    const stack = Stack.of(this);
    const logicalId = (fn: lambda.IFunction) => stack.resolve((fn.node.defaultChild as lambda.CfnFunction).logicalId) as string;
    // CloudFormation invokes the framework's onEvent; its other functions are invoked by roles.
    const frameworkFunctions = this.provider.node.children.filter(
      (child): child is lambda.Function => child instanceof lambda.Function && child !== this.provider.node.tryFindChild('framework-onEvent'),
    );
    for (const fn of [this.onEventFunction, this.isCompleteFunction, ...frameworkFunctions]) {
      Validations.of(this).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${logicalId(fn)}.Arn>:*]`,
        reason:
          "lambda:InvokeFunction on this one function's ARN and its versions (':*'), granted by the CDK Provider " +
          'framework so that its relay functions and waiter can call the next step; no other function.',
      });
    }
    const waiter = this.provider.node.findChild('waiter-state-machine');
    Validations.of(waiter).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'The CloudWatch Logs delivery actions that let a state machine write its execution log (logs:CreateLogDelivery, ' +
        'logs:DescribeResourcePolicies, ...) support no resource-level permissions; the waiter writes only its own log group.',
    });
    Validations.of(waiter).acknowledge({
      id: 'AwsSolutions-SF2',
      reason:
        "The Provider framework's waiter only calls isComplete until the deploy ends; its executions are logged in " +
        'full (level ALL) and the deploy functions log every step as JSON. The framework offers no X-Ray option.',
    });
  }
}

/**
 * One instance starts its command at once; a fleet's last host starts only after the others, so
 * its window is everything the provider's wait leaves once the execution timeout is counted.
 */
function defaultDeliveryTimeout(fleet: boolean, total: Duration, execution: Duration, query: Duration): Duration {
  const single = Duration.seconds(DEFAULT_DEPLOY_SETTINGS.deliveryTimeoutSeconds);
  if (!fleet || [total, execution, query].some((duration) => duration.isUnresolved())) return single;
  const room = total.toSeconds() - execution.toSeconds() - query.toSeconds() - 1;
  return room > single.toSeconds() ? Duration.seconds(room) : single;
}

function checkMaxConcurrency(value: string): string {
  if (!Token.isUnresolved(value) && !new RegExp(MAX_CONCURRENCY_PATTERN).test(value)) {
    throw new Error(`BlueGreenDeployment: fleet.maxConcurrency ${JSON.stringify(value)} is not a number of hosts or a percentage (${MAX_CONCURRENCY_PATTERN})`);
  }
  return value;
}

/** Refuses an artifact the document's patterns would refuse at deploy time, naming the prop. */
function checkArtifact(artifact: DeploymentArtifact): void {
  const checks: Array<[string, string | undefined, string]> = [
    ['artifact.uri', artifact.uri, DOCUMENT_PARAM_PATTERNS.artifactUri],
    ['artifact.sha256', artifact.sha256, DOCUMENT_PARAM_PATTERNS.sha256],
    ['artifact.version', artifact.version, DOCUMENT_PARAM_PATTERNS.version],
  ];
  for (const [name, value, pattern] of checks) {
    if (value === undefined || Token.isUnresolved(value)) continue;
    if (value === '' || !new RegExp(pattern).test(value)) {
      throw new Error(`BlueGreenDeployment: ${name} ${JSON.stringify(value)} is not accepted by the deploy document (${pattern})`);
    }
  }
}

/** Throws one error listing every timeout that does not nest (lib/deploy/timeouts.ts). */
function checkTimeouts(timeouts: Record<'executionTimeout' | 'deliveryTimeout' | 'onlineWait' | 'queryInterval' | 'totalTimeout' | 'serviceTimeout', Duration>): void {
  if (Object.values(timeouts).some((duration) => duration.isUnresolved())) return;
  const seconds = (duration: Duration) => duration.toSeconds({ integral: false });
  const problems = timeoutProblems({
    executionTimeoutSeconds: seconds(timeouts.executionTimeout),
    deliveryTimeoutSeconds: seconds(timeouts.deliveryTimeout),
    onlineWaitSeconds: seconds(timeouts.onlineWait),
    queryIntervalSeconds: seconds(timeouts.queryInterval),
    totalTimeoutSeconds: seconds(timeouts.totalTimeout),
    serviceTimeoutSeconds: seconds(timeouts.serviceTimeout),
  });
  if (problems.length > 0) throw new Error(`BlueGreenDeployment: the timeouts do not nest: ${problems.join(' ')}`);
}

