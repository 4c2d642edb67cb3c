/**
 * The Jenkins tools the fleet's Jenkins installs: `assets/jenkins/` and the operator command
 * bundled into one file (lib/jenkins-tools.ts), shipped as the Jenkins asset; the bundle runs on
 * this machine's Node.js without node_modules, and is rebuilt only when its inputs change. And
 * what the fleet Jenkins' role may do to run it: read the deploy output it follows, nothing more.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { describe, expect, test } from 'vitest';
import { CLI_BUNDLE_NAME, cliBundle, jenkinsToolsDir } from '../../lib/jenkins-tools.js';
import { projectPath } from '../../lib/paths.js';
import { renderValue, synthesize } from './synth.js';

const JENKINS_DIR = projectPath('assets', 'jenkins');

describe('the bundled operator command', () => {
  test('is reused while the files it was built from are unchanged, and rebuilt when one changed', () => {
    // GIVEN a bundle built in a directory of its own
    const outDir = mkdtempSync(join(tmpdir(), 'bluegreen-bundle-cache-'));
    cpSync(cliBundle(), join(outDir, CLI_BUNDLE_NAME));
    cpSync(join(cliBundle(), '..', 'manifest.json'), join(outDir, 'manifest.json'));
    const manifest = JSON.parse(readFileSync(join(outDir, 'manifest.json'), 'utf8')) as { inputs: Record<string, string> };
    expect(Object.keys(manifest.inputs)).toEqual(expect.arrayContaining(['cli/main.ts', 'cli/fleet.ts', 'cli/process.ts', 'lib/contract.ts']));
    expect(Object.keys(manifest.inputs).some((input) => input.includes('@aws-sdk/client-ssm'))).toBe(true);
    // A marker: a rebuild would overwrite it.
    writeFileSync(join(outDir, CLI_BUNDLE_NAME), '// cached\n');

    // WHEN its inputs are as they were, THEN the cached file is kept
    expect(readFileSync(cliBundle(outDir), 'utf8')).toBe('// cached\n');

    // WHEN an input's hash no longer matches (as after an edit), THEN it is built again
    const outDir2 = mkdtempSync(join(tmpdir(), 'bluegreen-bundle-cache-'));
    writeFileSync(join(outDir2, CLI_BUNDLE_NAME), '// cached\n');
    writeFileSync(
      join(outDir2, 'manifest.json'),
      JSON.stringify({ ...JSON.parse(readFileSync(join(outDir, 'manifest.json'), 'utf8')), inputs: { ...manifest.inputs, 'cli/fleet.ts': '0'.repeat(64) } }),
    );
    expect(readFileSync(cliBundle(outDir2), 'utf8')).toBe(readFileSync(cliBundle(), 'utf8'));
  });
});

describe('the Jenkins tools directory', () => {
  test('holds every file of assets/jenkins/ as it is (scripts still executable) and the bundle beside bluegreen-pipeline', () => {
    const dir = jenkinsToolsDir();
    const files = readdirSync(JENKINS_DIR);
    expect(readdirSync(dir).sort()).toEqual([...files, CLI_BUNDLE_NAME].sort());
    for (const file of files) {
      expect(readFileSync(join(dir, file)).equals(readFileSync(join(JENKINS_DIR, file))), file).toBe(true);
      expect(statSync(join(dir, file)).mode & 0o777, file).toBe(statSync(join(JENKINS_DIR, file)).mode & 0o777);
    }
    expect(readFileSync(join(dir, CLI_BUNDLE_NAME)).equals(readFileSync(cliBundle()))).toBe(true);
    // The same tools are the same directory: the asset's hash changes only when they do.
    expect(jenkinsToolsDir()).toBe(dir);
  });

  test("refuses a Jenkins directory with a file of the bundle's name", () => {
    const own = mkdtempSync(join(tmpdir(), 'bluegreen-jenkins-dir-'));
    writeFileSync(join(own, CLI_BUNDLE_NAME), '');
    expect(() => jenkinsToolsDir(own)).toThrow(/holds a ec2-bluegreen\.mjs of its own/);
  });
});

describe("the fleet's Jenkins", () => {
  const { stack, template } = synthesize({ hosts: 3, maxConcurrency: '1' });
  const jenkins = stack.jenkinsHost!;

  test('ships the tools with the bundled command as its Jenkins asset; the single host ships assets/jenkins/ as it is', () => {
    const hashOf = (path: string) => new s3assets.Asset(new Stack(), 'Tools', { path }).assetHash;
    expect(jenkins.jenkinsAsset.isZipArchive).toBe(true);
    expect(jenkins.jenkinsAsset.assetHash).toBe(hashOf(jenkinsToolsDir()));
    expect(jenkins.jenkinsAsset.assetHash).not.toBe(hashOf(JENKINS_DIR));
    expect(synthesize().stack.host!.jenkinsAsset.assetHash).toBe(hashOf(JENKINS_DIR));
  });

  test("may read the deploy output it follows, from that log group only; no CloudFormation call", () => {
    const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('JenkinsRole'))
      .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>);
    const reads = statements.filter((statement) => [statement.Action].flat().some((action: string) => action.startsWith('logs:')));
    expect(reads).toHaveLength(1);
    expect([reads[0]!.Action].flat().sort()).toEqual(['logs:DescribeLogStreams', 'logs:GetLogEvents']);
    expect(renderValue(reads[0]!.Resource)).toMatch(/^arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:<DeployDocumentOutputLogGroup[0-9A-F]+>:\*$/);
    // The first boot signals CloudFormation; the pipeline reads no stack (--fleet-from-env).
    expect(statements.flatMap((statement) => [statement.Action].flat()).filter((action: string) => action.startsWith('cloudformation:'))).toEqual(['cloudformation:SignalResource']);
  });
});
