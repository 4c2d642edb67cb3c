import { describe, expect, test } from 'vitest';
import { parseCommandLine } from '../../cli/args.js';
import { CLI_EXIT_CODES, CliError } from '../../cli/errors.js';

const SHA = 'a'.repeat(64);

function failure(argv: string[]): CliError {
  try {
    parseCommandLine(argv);
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error(`expected ${argv.join(' ')} to fail`);
}

describe('parseCommandLine', () => {
  test.each([
    [['deploy', 'build/libs/app.jar', '--stack', 'Ec2BlueGreen'], { command: 'deploy', stackName: 'Ec2BlueGreen', artifact: { kind: 'file', path: 'build/libs/app.jar' } }],
    [
      ['deploy', 's3://my-bucket/releases/app-1.2.jar', '--stack', 'Ec2BlueGreen', '--region', 'eu-west-1', '--version', 'v1.2', '--sha256', SHA, '--health-timeout', '60'],
      { command: 'deploy', stackName: 'Ec2BlueGreen', region: 'eu-west-1', artifact: { kind: 's3', uri: 's3://my-bucket/releases/app-1.2.jar' }, version: 'v1.2', sha256: SHA, healthTimeoutSeconds: 60 },
    ],
    [['rollback', '--stack=Prod-Stack'], { command: 'rollback', stackName: 'Prod-Stack' }],
    [['status', '--stack', 'S', '--json'], { command: 'status', stackName: 'S', json: true }],
    [['history', '--stack', 'S', '--limit', '5'], { command: 'history', stackName: 'S', json: false, limit: 5 }],
    [
      ['deploy', 'app.jar', '--fleet-from-env', '--version', 'v2', '--requested-by', 'Jenkins shop #42', '--recorded-by', 'jenkins'],
      { command: 'deploy', fleetFromEnvironment: true, artifact: { kind: 'file', path: 'app.jar' }, version: 'v2', requestedBy: 'Jenkins shop #42', recordedBy: 'jenkins' },
    ],
    [['status', '--fleet-from-env', '--region', 'eu-west-1'], { command: 'status', fleetFromEnvironment: true, region: 'eu-west-1', json: false }],
    [['rollback', '--stack', 'S', '--recorded-by', 'cli'], { command: 'rollback', stackName: 'S', recordedBy: 'cli' }],
    [['--help'], { command: 'help' }],
    [['deploy', '-h'], { command: 'help' }],
    [[], { command: 'help' }],
  ])('%j', (argv, expected) => {
    expect(parseCommandLine(argv)).toEqual(expected);
  });

  test.each([
    [['ship', '--stack', 'S'], /unknown command 'ship': expected one of deploy, rollback, status, history\./],
    [['status'], /'status' needs --stack NAME/],
    [['status', '--stack'], /Option '--stack <value>' argument missing/],
    [['status', '--stak', 'S'], /Unknown option '--stak'/],
    [['status', '--stack', 'my_stack'], /--stack "my_stack" is not a CloudFormation stack name/],
    [['status', '--stack', 'S', '--region', 'Europe'], /--region "Europe" is not an AWS region such as us-east-1\./],
    [['deploy', '--stack', 'S'], /'deploy' needs the jar: a path on this machine .* or s3:\/\/BUCKET\/KEY\./],
    [['deploy', 'a.jar', 'b.jar', '--stack', 'S'], /unexpected argument 'b\.jar' for 'deploy'\./],
    [['status', 'extra', '--stack', 'S'], /unexpected argument 'extra' for 'status'\./],
    [['deploy', 'a.jar', '--stack', 'S', '--version', 'v 1'], /--version "v 1" is not a release label/],
    [['deploy', 'a.jar', '--stack', 'S', '--sha256', 'ABC'], /--sha256 "ABC" is not 64 lower-case hex digits/],
    [['deploy', 'a.jar', '--stack', 'S', '--health-timeout', '0'], /--health-timeout "0" is not a whole number of seconds from 1 to 999\./],
    [['deploy', 's3://Bad_Bucket/app.jar', '--stack', 'S'], /"s3:\/\/Bad_Bucket\/app\.jar" is not an s3:\/\/BUCKET\/KEY the deploy document accepts/],
    [['deploy', 'https://example.com/app.jar', '--stack', 'S'], /deploy takes a jar on this machine or an s3:\/\/BUCKET\/KEY/],
    [['status', '--stack', 'S', '--version', 'v1'], /--version does not apply to 'status' \(it takes: --stack, --region, --json\)\./],
    [['rollback', '--stack', 'S', '--json'], /--json does not apply to 'rollback'/],
    [['history', '--stack', 'S', '--limit', '31'], /--limit "31" is not a whole number from 1 to 30/],
    [['status', '--stack', 'S', '--fleet-from-env'], /--stack and --fleet-from-env both name the target: give one/],
    [['deploy', 'a.jar', '--stack', 'S', '--recorded-by', 'cloudformation'], /--recorded-by "cloudformation" is not one of cli, jenkins/],
    [['deploy', 'a.jar', '--stack', 'S', '--requested-by', 'two\nlines'], /--requested-by "two\\nlines" is not one line of 1 to 64 printable characters\./],
    [['status', '--stack', 'S', '--recorded-by', 'jenkins'], /--recorded-by does not apply to 'status'/],
  ])('%j fails with exit code 2: %s', (argv, message) => {
    const error = failure(argv);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/Run 'npx ec2-bluegreen --help' for usage\.$/);
    expect(error.exitCode).toBe(CLI_EXIT_CODES.usage);
  });
});
