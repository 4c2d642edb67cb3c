#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError, lookupEnvironment, readConfig } from '../lib/config.js';
import { Ec2BlueGreenStack } from '../lib/ec2-bluegreen-stack.js';

const app = new App();
try {
  const config = readConfig((key) => app.node.tryGetContext(key), { givenKeys: Object.keys(app.node.getAllContext()) });
  new Ec2BlueGreenStack(app, 'Ec2BlueGreen', { config, env: lookupEnvironment(config, process.env) });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`ec2-bluegreen: ${error.message}`);
  process.exit(1);
}
// Synth fails on any AwsSolutions finding not acknowledged (with its reason) next to its resource.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }));
