/**
 * The deployment construct in a small stack of its own, with the project's real deploy document:
 * what it synthesizes (functions, IAM, timeouts, dependency on the instance), what it refuses at
 * synth time. That the bundle it ships loads and exports the handlers it names is checked by
 * deployment-bundle.e2e.test.ts (bundling starts esbuild, which unit tests do not).
 */
import { App, type CfnResource, Duration, Lazy, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, test } from 'vitest';
import { acknowledgements } from './synth.js';
import { BlueGreenDeployment, type BlueGreenDeploymentProps } from '../../lib/constructs/bluegreen-deployment.js';
import { DeployDocument } from '../../lib/constructs/deploy-document.js';
import { DEPLOY_FUNCTION_ENV, DEPLOY_HANDLERS, DEPLOYMENT_PROPERTIES as P } from '../../lib/contract.js';
import { projectPath } from '../../lib/paths.js';

const SHA = 'ab'.repeat(32);
const INSTANCE_ID = 'i-0123456789abcdef0';

interface Built {
  readonly app: App;
  readonly stack: Stack;
  readonly deployment: BlueGreenDeployment;
  readonly document: DeployDocument;
  readonly template: Template;
}

/** GIVEN a stack with the real deploy document and a deployment with `overrides`. */
function build(overrides: Partial<BlueGreenDeploymentProps> = {}): Built {
  const app = new App();
  const stack = new Stack(app, 'DeploymentTest');
  const document = new DeployDocument(stack, 'DeployDocument');
  const deployment = new BlueGreenDeployment(stack, 'Deployment', {
    instance: INSTANCE_ID,
    document,
    artifact: { uri: 's3://artifacts-bucket/releases/app.jar', sha256: SHA, version: 'v2' },
    ...overrides,
  });
  return { app, stack, deployment, document, template: Template.fromStack(stack) };
}

/** Share the default stack between the tests that only read it. */
let defaultBuilt: Built | undefined;
const built = () => (defaultBuilt ??= build());

/** The inline policy statements of the role behind the function with `handler`. */
function statementsOf(template: Template, handler: string): Array<Record<string, unknown>> {
  const [, fn] = Object.entries(template.findResources('AWS::Lambda::Function', { Properties: { Handler: `index.${handler}` } }))[0]!;
  const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => (policy.Properties.Roles as Array<{ Ref: string }>).some((role) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

describe('BlueGreenDeployment', () => {
  test('creates two Node.js 22 functions from one ESM bundle, with the handler names of the contract', () => {
    const { template } = built();
    for (const handler of Object.values(DEPLOY_HANDLERS)) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Handler: `index.${handler}`,
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
      });
    }
    template.resourcePropertiesCountIs('AWS::Lambda::Function', { Runtime: 'nodejs22.x' }, 2);
  });

  test('tells the functions the timeouts and the output log group', () => {
    const { template } = built();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: `index.${DEPLOY_HANDLERS.onEvent}`,
      Timeout: 360,
      Environment: {
        Variables: {
          [DEPLOY_FUNCTION_ENV.onlineWaitSeconds]: '300',
          [DEPLOY_FUNCTION_ENV.deliveryTimeoutSeconds]: '300',
          [DEPLOY_FUNCTION_ENV.executionTimeoutSeconds]: '2499',
          [DEPLOY_FUNCTION_ENV.outputLogGroupName]: { Ref: Match.stringLikeRegexp('^DeployDocumentOutputLogGroup') },
        },
      },
    });
    template.hasResourceProperties('AWS::Lambda::Function', { Handler: `index.${DEPLOY_HANDLERS.isComplete}`, Timeout: 60 });
  });

  test('creates the custom resource with the artifact as properties and a one-hour service timeout', () => {
    const { template } = built();
    template.hasResourceProperties('Custom::BlueGreenDeployment', {
      ServiceToken: Match.anyValue(),
      ServiceTimeout: '3600',
      [P.instanceId]: INSTANCE_ID,
      [P.documentName]: { Ref: 'DeployDocumentPinnedEngineE8C7CFFB' },
      [P.artifactUri]: 's3://artifacts-bucket/releases/app.jar',
      [P.sha256]: SHA,
      [P.version]: 'v2',
    });
  });

  test('polls every queryInterval for totalTimeout (the waiter state machine)', () => {
    const { template } = built();
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    const definition = JSON.stringify(machine!.Properties.DefinitionString);
    expect(definition).toContain('\\"IntervalSeconds\\":5,\\"MaxAttempts\\":600');
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { LoggingConfiguration: Match.objectLike({ Level: 'ALL' }) });
  });

  test('passes a health timeout as whole seconds', () => {
    const { template } = build({ healthTimeout: Duration.seconds(90) });
    template.hasResourceProperties('Custom::BlueGreenDeployment', { [P.healthTimeout]: '90' });
  });

  test('leaves version and health timeout out when not given (the host and the document decide)', () => {
    const { template } = build({ artifact: { uri: '/opt/app.jar', sha256: SHA } });
    const [resource] = Object.values(template.findResources('Custom::BlueGreenDeployment'));
    expect(resource!.Properties).not.toHaveProperty(P.version);
    expect(resource!.Properties).not.toHaveProperty(P.healthTimeout);
  });

  describe('IAM', () => {
    test('onEvent may send commands only with this document, to this instance', () => {
      const statements = statementsOf(built().template, DEPLOY_HANDLERS.onEvent);
      const send = statements.filter((statement) => JSON.stringify(statement.Action).includes('ssm:SendCommand'));
      expect(send).toEqual([
        {
          Effect: 'Allow',
          Action: 'ssm:SendCommand',
          Resource: [
            {
              'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ssm:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':document/', { Ref: 'DeployDocumentPinnedEngineE8C7CFFB' }]],
            },
            {
              'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:instance/${INSTANCE_ID}`]],
            },
          ],
        },
      ]);
    });

    test("'*' only for the reads that support nothing narrower, and no write anywhere else", () => {
      const { template } = built();
      const wildcards = (handler: string) =>
        statementsOf(template, handler)
          .filter((statement) => statement.Resource === '*')
          .map((statement) => statement.Action);
      // ListCommands: finding a command whose SendCommand answer was lost, instead of sending it twice.
      expect(wildcards(DEPLOY_HANDLERS.onEvent)).toEqual([['ssm:DescribeInstanceInformation', 'ssm:ListCommands']]);
      expect(wildcards(DEPLOY_HANDLERS.isComplete)).toEqual([['ssm:GetCommandInvocation', 'ssm:ListCommandInvocations']]);
      const allActions = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((policy) =>
        (policy.Properties.PolicyDocument.Statement as Array<{ Action: string | string[] }>).flatMap((statement) => statement.Action),
      );
      expect(allActions.filter((action) => action.startsWith('ssm:'))).toEqual([
        'ssm:SendCommand',
        'ssm:DescribeInstanceInformation',
        'ssm:ListCommands',
        'ssm:GetCommandInvocation',
        'ssm:ListCommandInvocations',
      ]);
    });

    test('no function uses the AWSLambdaBasicExecutionRole managed policy; each writes only its own log group', () => {
      const { template } = built();
      for (const role of Object.values(template.findResources('AWS::IAM::Role'))) {
        expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      }
      const logWrites = statementsOf(template, DEPLOY_HANDLERS.onEvent).filter((statement) =>
        JSON.stringify(statement.Action).includes('logs:PutLogEvents'),
      );
      expect(logWrites).toEqual([
        {
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: { 'Fn::GetAtt': [expect.stringMatching(/^DeploymentOnEventLogs/), 'Arn'] },
        },
      ]);
    });
  });

  describe('the instance', () => {
    function withInstance(): { template: Template; instance: ec2.Instance; deployment: BlueGreenDeployment; stack: Stack } {
      const app = new App();
      const stack = new Stack(app, 'WithInstance');
      const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 1, natGateways: 0, subnetConfiguration: [{ name: 'Public', subnetType: ec2.SubnetType.PUBLIC }] });
      const instance = new ec2.Instance(stack, 'Instance', {
        vpc,
        instanceType: new ec2.InstanceType('t3.small'),
        machineImage: ec2.MachineImage.genericLinux({ 'us-east-1': 'ami-0123456789abcdef0' }),
      });
      instance.instance.cfnOptions.creationPolicy = { resourceSignal: { count: 1, timeout: 'PT30M' } };
      const deployment = new BlueGreenDeployment(stack, 'Deployment', {
        instance,
        document: new DeployDocument(stack, 'DeployDocument'),
        artifact: { uri: 's3://artifacts-bucket/app.jar', sha256: SHA },
      });
      return { template: Template.fromStack(stack), instance, deployment, stack };
    }

    test('given as a construct, the deploy depends on it (and so on its creation signal) and targets its id', () => {
      const { template } = withInstance();
      const [resource] = Object.values(template.findResources('Custom::BlueGreenDeployment'));
      expect(resource!.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^Instance/)]));
      expect(resource!.Properties[P.instanceId]).toEqual({ Ref: expect.stringMatching(/^Instance/) });
    });

    test('waitFor adds further dependencies', () => {
      const app = new App();
      const stack = new Stack(app, 'WaitFor');
      const other = new ec2.CfnEIP(stack, 'SomethingFirst');
      const deployment = new BlueGreenDeployment(stack, 'Deployment', {
        instance: INSTANCE_ID,
        document: { documentName: 'Doc', executionTimeout: Duration.minutes(30) },
        artifact: { uri: 's3://artifacts-bucket/app.jar', sha256: SHA },
      });
      deployment.waitFor(other);
      const [resource] = Object.values(Template.fromStack(stack).findResources('Custom::BlueGreenDeployment'));
      expect(resource!.DependsOn).toEqual(['SomethingFirst']);
    });
  });

  describe('fails at synth time', () => {
    test.each<[string, Partial<BlueGreenDeploymentProps>, string]>([
      [
        'if the document can run longer than the provider waits',
        { totalTimeout: Duration.minutes(40) },
        "the document's executionTimeout (2499s) + deliveryTimeout (300s) + queryInterval (5s) = 2804s must be less than totalTimeout (2400s)",
      ],
      [
        'if the provider can outlast CloudFormation',
        { serviceTimeout: Duration.minutes(55) },
        'onlineWait (300s) + 60s to send + totalTimeout (3000s) = 3360s must not exceed serviceTimeout (3300s)',
      ],
      ['if the service timeout is over one hour', { serviceTimeout: Duration.minutes(90) }, 'serviceTimeout (5400s) must be at most 3600s'],
      ['if the delivery timeout is below what SendCommand takes', { deliveryTimeout: Duration.seconds(10) }, 'deliveryTimeout (10s) must be from 30s'],
      [
        'if the online wait cannot fit in a Lambda function',
        { onlineWait: Duration.minutes(15), totalTimeout: Duration.minutes(44) },
        'onlineWait (900s) plus 60s to send the command must fit',
      ],
    ])('%s, naming the props and values', (_name, overrides, message) => {
      expect(() => build(overrides)).toThrow(`BlueGreenDeployment: the timeouts do not nest: ${message}`);
    });

    test('if a longer document execution timeout no longer fits the defaults', () => {
      expect(() =>
        build({ document: { documentName: 'Doc', executionTimeout: Duration.minutes(50) } }),
      ).toThrow(/executionTimeout \(3000s\) \+ deliveryTimeout \(300s\) \+ queryInterval \(5s\) = 3305s must be less than totalTimeout \(3000s\)/);
    });

    test.each<[string, Partial<BlueGreenDeploymentProps>, RegExp]>([
      ['the sha256 is not 64 hex digits', { artifact: { uri: 's3://artifacts-bucket/app.jar', sha256: 'ABC' } }, /artifact\.sha256 "ABC" is not accepted/],
      ['the version has blanks', { artifact: { uri: 's3://artifacts-bucket/app.jar', sha256: SHA, version: 'v 2' } }, /artifact\.version "v 2" is not accepted/],
      ['the artifact is a plain http URL', { artifact: { uri: 'http://example.com/app.jar', sha256: SHA } }, /artifact\.uri "http:\/\/example\.com\/app\.jar" is not accepted/],
      ['the health timeout is zero', { healthTimeout: Duration.seconds(0) }, /healthTimeout must be whole seconds from 1 to 999, got 0 seconds/],
      ['the health timeout is over 999 s', { healthTimeout: Duration.minutes(20) }, /healthTimeout must be whole seconds from 1 to 999, got 20 minutes/],
      ['the health timeout is not whole seconds', { healthTimeout: Duration.millis(1500) }, /healthTimeout must be whole seconds/],
      ['the health timeout is only known at deploy time', { healthTimeout: Duration.seconds(Lazy.number({ produce: () => 60 })) }, /healthTimeout must be known at synth time/],
    ])('if %s', (_name, overrides, message) => {
      expect(() => build(overrides)).toThrow(message);
    });
  });

  test('accepts an artifact location that is only known at deploy time (an asset URL)', () => {
    const app = new App();
    const stack = new Stack(app, 'Asset');
    const asset = new s3assets.Asset(stack, 'Jar', { path: projectPath('package.json') });
    const deployment = new BlueGreenDeployment(stack, 'Deployment', {
      instance: INSTANCE_ID,
      document: { documentName: 'Doc', executionTimeout: Duration.minutes(30) },
      artifact: BlueGreenDeployment.artifactFromAsset(asset, { sha256: SHA, version: 'v2' }),
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('Custom::BlueGreenDeployment', {
      [P.artifactUri]: { 'Fn::Sub': Match.stringLikeRegexp('^s3://cdk-[a-z0-9]+-assets-') },
    });
    // The construct's `resource` is that custom resource, and it names the asset's own object.
    const [[logicalId, resource]] = Object.entries(template.findResources('Custom::BlueGreenDeployment'));
    expect(logicalId).toBe(stack.getLogicalId(deployment.resource.node.defaultChild as CfnResource));
    expect(resource!.Properties[P.artifactUri]).toEqual(stack.resolve(asset.s3ObjectUrl));
  });

  describe('cdk-nag AwsSolutions', () => {
    test('no unacknowledged finding', () => {
      const { app, stack } = built();
      const report = new AwsSolutionsChecks(app, { verbose: true }).validateScope(stack);
      expect(report.violations).toEqual([]);
    });

    test('synth with the checks registered, as bin/app.ts does, passes', () => {
      const { app } = build();
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      expect(() => app.synth({ force: true })).not.toThrow();
    });

    test('every acknowledgement of this construct gives a reason a reviewer can check', () => {
      const acknowledged = acknowledgements(built().deployment);
      expect(acknowledged.map(({ id }) => id).sort()).toEqual([
        'AwsSolutions-IAM5[Resource::*]',
        'AwsSolutions-IAM5[Resource::*]',
        'AwsSolutions-IAM5[Resource::*]',
        'AwsSolutions-IAM5[Resource::<DeploymentIsCompleteFunction7E731695.Arn>:*]',
        'AwsSolutions-IAM5[Resource::<DeploymentOnEventFunctionBA7E3266.Arn>:*]',
        'AwsSolutions-IAM5[Resource::<DeploymentProviderframeworkisComplete9109ECF2.Arn>:*]',
        'AwsSolutions-IAM5[Resource::<DeploymentProviderframeworkonTimeout1A2F7DF5.Arn>:*]',
        'AwsSolutions-L1',
        'AwsSolutions-L1',
        'AwsSolutions-SF2',
      ]);
      for (const { reason } of acknowledged) expect(reason.length).toBeGreaterThan(80);
    });
  });

});

