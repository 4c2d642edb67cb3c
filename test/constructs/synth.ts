/**
 * Builds the app as bin/app.ts does, offline, with a small stand-in jar so that no JDK build
 * runs per synth. Tests share one synthesized stack per context where they can.
 */
import { readFileSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { lookupEnvironment, readConfig } from '../../lib/config.js';
import { Ec2BlueGreenStack } from '../../lib/ec2-bluegreen-stack.js';
import { projectPath } from '../../lib/paths.js';
import { fakeJar } from '../support/fake-jar.js';

export { fakeJar };

/** The feature flags and settings of cdk.json, so tests synthesize what `cdk synth` does. */
const CDK_JSON_CONTEXT = JSON.parse(readFileSync(projectPath('cdk.json'), 'utf8')).context as Record<string, unknown>;

export interface Synthesized {
  readonly app: App;
  readonly stack: Ec2BlueGreenStack;
  readonly template: Template;
}

/** Synthesizes the stack with `context` on top of cdk.json's; `artifact` defaults to `fakeJar()`. */
export function synthesize(context: Record<string, unknown> = {}, processEnv: Record<string, string> = {}): Synthesized {
  const app = new App({ context: { ...CDK_JSON_CONTEXT, artifact: fakeJar(), ...context } });
  const config = readConfig((key) => app.node.tryGetContext(key), { givenKeys: Object.keys(app.node.getAllContext()) });
  const stack = new Ec2BlueGreenStack(app, 'Ec2BlueGreen', { config, env: lookupEnvironment(config, processEnv) });
  return { app, stack, template: Template.fromStack(stack) };
}

/** A CloudFormation value with intrinsics flattened to text; `Ref`/`GetAtt` become `<Name>`. */
export function renderValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if ('Ref' in object) return `<${String(object.Ref)}>`;
    if ('Fn::GetAtt' in object) return `<${(object['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::Base64' in object) return renderValue(object['Fn::Base64']);
    if ('Fn::Sub' in object) return (object['Fn::Sub'] as string).replace(/\$\{([^}]+)\}/g, '<$1>');
    if ('Fn::Join' in object) {
      const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
      return parts.map(renderValue).join(separator);
    }
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

/** The pseudo parameters of the account and region the loopback stand-ins play (us-east-1). */
export const TEST_PSEUDO_PARAMETERS: Readonly<Record<string, string>> = {
  'AWS::AccountId': '111111111111',
  'AWS::Region': 'us-east-1',
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
};

/**
 * `value` as CloudFormation resolves it in that account: `Ref`s to pseudo parameters, `Fn::Sub`
 * over them and `Fn::Join`, anywhere inside. Any other intrinsic throws, naming it.
 */
export function resolvePseudo(value: unknown): any {
  if (Array.isArray(value)) return value.map(resolvePseudo);
  if (value === null || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  const pseudo = (name: string): string => {
    const resolved = TEST_PSEUDO_PARAMETERS[name];
    if (resolved === undefined) throw new Error(`resolvePseudo: ${name} is not a pseudo parameter`);
    return resolved;
  };
  if ('Ref' in object) return pseudo(String(object.Ref));
  if ('Fn::Sub' in object) return (object['Fn::Sub'] as string).replace(/\$\{([^}]+)\}/g, (_match, name: string) => pseudo(name));
  if ('Fn::Join' in object) {
    const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
    return parts.map((part) => String(resolvePseudo(part))).join(separator);
  }
  const intrinsic = Object.keys(object).find((key) => key.startsWith('Fn::'));
  if (intrinsic !== undefined) throw new Error(`resolvePseudo: cannot resolve ${intrinsic} in ${JSON.stringify(value)}`);
  return Object.fromEntries(Object.entries(object).map(([key, entry]) => [key, resolvePseudo(entry)]));
}

/**
 * The content of the template's one SSM document as SSM receives it from CloudFormation in the
 * stand-ins' account: every line of its script and every parameter pattern plain text.
 */
export function documentContent(template: Template): any {
  return resolvePseudo(onlyResource(template, 'AWS::SSM::Document').properties.Content);
}

/** The single resource of `type` in the template, as written. */
export function onlyResource(template: Template, type: string): { logicalId: string; properties: Record<string, any> } {
  const resources = Object.entries(template.findResources(type));
  if (resources.length !== 1) throw new Error(`expected one ${type}, found ${resources.length}`);
  const [logicalId, resource] = resources[0]!;
  return { logicalId, properties: resource.Properties };
}

/** The single resource of `type` whose logical id starts with `idPrefix` (a construct path, e.g. `HostFirstRelease`). */
export function resourceById(template: Template, type: string, idPrefix: string): { logicalId: string; properties: Record<string, any> } {
  const resources = Object.entries(template.findResources(type)).filter(([logicalId]) => logicalId.startsWith(idPrefix));
  if (resources.length !== 1) throw new Error(`expected one ${type} with a logical id starting ${idPrefix}, found ${resources.length}`);
  const [logicalId, resource] = resources[0]!;
  return { logicalId, properties: resource.Properties };
}

/** Every cdk-nag acknowledgement under `root`: construct path, rule id and reason. */
export function acknowledgements(root: IConstruct): Array<{ path: string; id: string; reason: string }> {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          // aws-cdk-lib stores acknowledgements of plugin findings with an 'Annotation::' prefix.
          id: id.replace(/^annotation::/i, ''),
          reason,
        })),
      ),
  );
}
