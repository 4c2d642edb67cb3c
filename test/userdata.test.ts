import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { HOST_PATHS } from '../lib/contract.js';
import { JENKINS_TOOLS_DIR } from '../lib/constructs/bluegreen-host.js';
import { projectPath } from '../lib/paths.js';
import { onlyResource, renderValue, resourceById, synthesize } from './constructs/synth.js';

// GIVEN the user data as synthesized, with CloudFormation references shown as <Name>.
const { template, stack } = synthesize();
const instance = onlyResource(template, 'AWS::EC2::Instance');
const userData = renderValue(instance.properties.UserData);
const manifest = renderValue(resourceById(template, 'AWS::SSM::Parameter', 'HostFirstRelease').properties.Value);
const parameterId = resourceById(template, 'AWS::SSM::Parameter', 'HostFirstRelease').logicalId;

const scratch = mkdtempSync(join(tmpdir(), 'bluegreen-userdata-'));
const userDataFile = join(scratch, 'user-data.sh');
writeFileSync(userDataFile, userData);

function run(command: string, args: string[], input?: string) {
  return spawnSync(command, args, { encoding: 'utf8', input });
}

/** Runs `snippet` in bash after sourcing the user data (which then does not boot anything). */
function withUserData(snippet: string, script = userData) {
  const file = join(mkdtempSync(join(scratch, 'run-')), 'user-data.sh');
  writeFileSync(file, script);
  return run('bash', ['-c', `set -Eeuo pipefail; source ${JSON.stringify(file)}; ${snippet}`]);
}

describe('rendered user data', () => {
  test('passes bash -n', () => {
    const result = run('bash', ['-n', userDataFile]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  test('passes shellcheck, as does its source in assets/userdata', () => {
    for (const file of [userDataFile, projectPath('assets', 'userdata', 'bootstrap.sh')]) {
      const result = run('shellcheck', ['--shell=bash', file]);
      expect(result.stdout).toBe('');
      expect(result.status).toBe(0);
    }
  });

  test('is the bash script from assets/userdata with every placeholder filled, within the 16 KB user-data limit', () => {
    expect(userData.startsWith('#!/bin/bash\n')).toBe(true);
    expect(userData).not.toMatch(/@@[A-Z0-9_]+@@/);
    expect(Buffer.byteLength(userData)).toBeLessThan(16 * 1024);
    const source = readFileSync(projectPath('assets', 'userdata', 'bootstrap.sh'), 'utf8');
    expect(userData.split('\n').length).toBe(source.split('\n').length);
  });

  test('names this stack, region, the instance to signal, its first-release parameter and the contract paths', () => {
    expect(userData).toContain("readonly STACK_NAME='<AWS::StackName>'");
    expect(userData).toContain("readonly REGION='<AWS::Region>'");
    expect(userData).toContain(`readonly SIGNAL_RESOURCE='${instance.logicalId}'`);
    expect(userData).toContain(`readonly FIRST_RELEASE_PARAMETER='<${parameterId}>'`);
    expect(userData).toContain(`readonly ENGINE_DIR='${HOST_PATHS.libDir}'`);
    expect(userData).toContain(`readonly ENGINE_COMMAND='${HOST_PATHS.command}'`);
    expect(userData).toContain(`readonly ENGINE_CONFIG='${HOST_PATHS.configFile}'`);
    expect(userData).toContain(`readonly SLOT_UNIT='${HOST_PATHS.slotUnit}'`);
    expect(userData).toContain("readonly SITE_PORT='80'");
    const jenkinsSettingsId = resourceById(template, 'AWS::SSM::Parameter', 'HostJenkinsSettings').logicalId;
    expect(userData).toContain(`readonly JENKINS_SETTINGS_PARAMETER='<${jenkinsSettingsId}>'`);
    expect(userData).toContain(`readonly JENKINS_TOOLS_DIR='${JENKINS_TOOLS_DIR}'`);
  });

  test('holds nothing that changes with a release, so a new artifact or engine never reboots the host', () => {
    expect(userData).not.toContain(stack.host.artifact.sha256);
    expect(userData).not.toMatch(/[0-9a-f]{64}\.(zip|jar)/);
  });

  test('installs what the issue lists: aws-cfn-bootstrap first, Nginx, Java 17 for the app, Jenkins LTS with its key', () => {
    expect(userData).toContain('dnf install -y aws-cfn-bootstrap');
    expect(userData).toContain('readonly APP_JAVA_PACKAGE=java-17-amazon-corretto-headless');
    expect(userData).toMatch(/dnf install -y nginx .*"\$APP_JAVA_PACKAGE" "\$JENKINS_JAVA_PACKAGE" jenkins/);
    expect(userData).toContain('readonly JENKINS_REPO_FILE_URL=https://pkg.jenkins.io/rpm-stable/jenkins.repo');
    expect(userData).toMatch(/rpm --import "\$JENKINS_KEY_URL"/);
  });

  test('main runs the steps in order: signal helpers first, the TLS certificate and engine init before Nginx, the app before Jenkins, Jenkins configured before it starts and verified before the signal', () => {
    const main = /\nmain\(\) \{\n([\s\S]*?)\n\}\n/.exec(userData)![1]!;
    const steps = main
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => /^[a-z_]+$/.test(line) || line.startsWith('signal_cloudformation'));
    expect(steps).toEqual([
      'install_cfn_bootstrap',
      'install_packages',
      'ensure_swap',
      'select_java',
      'read_first_release',
      'install_engine',
      'install_tls_certificate',
      'start_nginx',
      'deploy_first_release',
      'configure_jenkins',
      'start_jenkins',
      'verify_jenkins',
      'check_site',
      'signal_cloudformation 0 "serving version ${ARTIFACT_VERSION} through Nginx; Jenkins configured as code"',
    ]);
    expect(userData).toMatch(/start_nginx\(\) \{\n\s+"\$ENGINE_COMMAND" init\n\s+systemctl enable --now nginx\n/);
  });
});

describe('behaviour of its functions', () => {
  test('reads the first release the stack wrote into the parameter', () => {
    // GIVEN `aws ssm get-parameter` answering with the parameter's value from the template
    writeFileSync(join(scratch, 'manifest.txt'), manifest);
    const snippet = [
      `aws() { [[ "$*" == *"--name <${parameterId}>"* ]] && cat ${JSON.stringify(join(scratch, 'manifest.txt'))}; }`,
      'read_first_release',
      'printf "%s\\n" "$ENGINE_URI" "$ARTIFACT_URI" "$ARTIFACT_SHA256" "$ARTIFACT_VERSION" "$HEALTH_TIMEOUT"',
    ].join('; ');

    // WHEN
    const result = withUserData(snippet);

    // THEN
    expect(result.stderr).toBe('');
    const [engineUri, artifactUri, sha256, version, healthTimeout] = result.stdout.trim().split('\n');
    expect(engineUri).toMatch(/^s3:\/\/cdk-.*\.zip$/);
    expect(artifactUri).toMatch(/^s3:\/\/cdk-.*\.jar$/);
    expect(sha256).toBe(stack.host.artifact.sha256);
    expect(version).toBe(stack.host.artifact.version);
    expect(healthTimeout).toBe('120');
  });

  test('installs the TLS certificate and key from the secret the first-release parameter names, the key readable by root only', () => {
    // GIVEN a secret holding a certificate chain and a key, and scratch paths for /etc
    const dir = mkdtempSync(join(scratch, 'tls-'));
    const config = join(dir, 'bluegreen.conf');
    writeFileSync(config, 'BLUEGREEN_RUNNER=systemd\n');
    const pem = [
      '-----BEGIN CERTIFICATE-----', 'TEAFCERT', '-----END CERTIFICATE-----',
      '-----BEGIN CERTIFICATE-----', 'CHAINCERT', '-----END CERTIFICATE-----',
      '-----BEGIN PRIVATE KEY-----', 'SECRETKEYMATERIAL', '-----END PRIVATE KEY-----',
    ].join('\n');
    writeFileSync(join(dir, 'secret.txt'), pem);
    const script = userData
      .replace('readonly TLS_DIR=/etc/bluegreen/tls', `readonly TLS_DIR=${dir}/tls`)
      .replace(/readonly ENGINE_CONFIG='[^']*'/, `readonly ENGINE_CONFIG='${config}'`);

    // WHEN
    const result = withUserData(
      `aws() { [[ "$*" == *"--secret-id arn:tls"* ]] && cat ${JSON.stringify(join(dir, 'secret.txt'))}; }; TLS_SECRET=arn:tls; install_tls_certificate`,
      script,
    );

    // THEN
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(dir, 'tls', 'cert.pem'), 'utf8')).toBe(pem.split('\n').slice(0, 6).join('\n') + '\n');
    expect(readFileSync(join(dir, 'tls', 'key.pem'), 'utf8')).toContain('SECRETKEYMATERIAL');
    expect(statSync(join(dir, 'tls', 'key.pem')).mode & 0o777).toBe(0o600);
    expect(result.stdout + result.stderr).not.toContain('SECRETKEYMATERIAL');
    expect(readFileSync(config, 'utf8')).toContain(`BLUEGREEN_NGINX_TLS_CERT=${dir}/tls/cert.pem\nBLUEGREEN_NGINX_TLS_KEY=${dir}/tls/key.pem\n`);
  });

  test('refuses a TLS secret without a private key, leaving no files', () => {
    const dir = mkdtempSync(join(scratch, 'tls-bad-'));
    const script = userData.replace('readonly TLS_DIR=/etc/bluegreen/tls', `readonly TLS_DIR=${dir}/tls`);
    const result = withUserData(
      `aws() { printf -- '-----BEGIN CERTIFICATE-----\\nX\\n-----END CERTIFICATE-----\\n'; }; TLS_SECRET=arn:tls; install_tls_certificate`,
      script,
    );
    expect(result.status).not.toBe(0);
    expect(result.stdout).toContain('must hold a PEM certificate and a PEM private key');
    expect(spawnSync('ls', ['-A', join(dir, 'tls')], { encoding: 'utf8' }).stdout).toBe('');
  });

  test('refuses a first-release parameter with a value missing', () => {
    const result = withUserData(`aws() { printf 'engineUri=s3://b/e.zip\\nartifactUri=s3://b/a.jar\\n'; }; read_first_release`);
    expect(result.status).not.toBe(0);
    expect(result.stdout).toContain('has no value for ARTIFACT_SHA256');
  });

  test('on any failure it signals CloudFormation with a failure and the line, then exits non-zero', () => {
    // GIVEN a cfn-signal stand-in that records its arguments
    const recorder = join(scratch, 'cfn-signal');
    writeFileSync(recorder, `#!/bin/bash\nprintf '%s\\n' "$@" > ${JSON.stringify(join(scratch, 'signal-args'))}\n`);
    chmodSync(recorder, 0o755);
    const script = userData.replace('readonly CFN_SIGNAL=/opt/aws/bin/cfn-signal', `readonly CFN_SIGNAL=${recorder}`);

    // WHEN a step fails under the script's ERR trap
    const result = withUserData(`trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR; false`, script);

    // THEN
    expect(result.status).toBe(1);
    const args = readFileSync(join(scratch, 'signal-args'), 'utf8').trim().split('\n');
    expect(args).toEqual([
      '--exit-code', '1',
      '--reason', expect.stringMatching(/^first boot failed at line \d+ \(exit 1\); see \/var\/log\/cloud-init-output.log$/),
      '--stack', '<AWS::StackName>',
      '--resource', instance.logicalId,
      '--region', '<AWS::Region>',
    ]);
  });

  test('configure_jenkins fetches the settings, installs the Jenkins bundle with its scripts executable, and runs configure-jenkins install', () => {
    // GIVEN the settings parameter's value, and a bundle of assets/jenkins whose configure-jenkins records its call
    const jenkinsSettingsId = resourceById(template, 'AWS::SSM::Parameter', 'HostJenkinsSettings').logicalId;
    const settings = renderValue(resourceById(template, 'AWS::SSM::Parameter', 'HostJenkinsSettings').properties.Value);
    const work = mkdtempSync(join(scratch, 'jenkins-'));
    const bundleDir = join(work, 'bundle');
    cpSync(projectPath('assets', 'jenkins'), bundleDir, { recursive: true });
    const record = join(work, 'configure-call');
    writeFileSync(join(bundleDir, 'configure-jenkins'), `#!/bin/bash\nprintf '%s\\n' "$AWS_DEFAULT_REGION" "$@" > ${JSON.stringify(record)}\n`);
    chmodSync(join(bundleDir, 'configure-jenkins'), 0o644);
    chmodSync(join(bundleDir, 'bluegreen-pipeline'), 0o644);
    expect(spawnSync('zip', ['-q', '-r', join(work, 'bundle.zip'), '.'], { cwd: bundleDir }).status).toBe(0);
    writeFileSync(join(work, 'settings.txt'), settings);
    const toolsDir = join(work, 'tools');
    const settingsFile = join(work, 'etc', 'settings');
    const script = userData
      .replace(`readonly JENKINS_TOOLS_DIR='${JENKINS_TOOLS_DIR}'`, `readonly JENKINS_TOOLS_DIR=${toolsDir}`)
      .replace('readonly JENKINS_SETTINGS_FILE=/etc/bluegreen-jenkins/settings', `readonly JENKINS_SETTINGS_FILE=${settingsFile}`);
    const aws = [
      'aws() {',
      `  if [[ "$*" == *"ssm get-parameter"*"--name <${jenkinsSettingsId}>"* ]]; then cat ${JSON.stringify(join(work, 'settings.txt'))};`,
      `  elif [[ "$1 $2" == "s3 cp" ]]; then cp ${JSON.stringify(join(work, 'bundle.zip'))} "\${@: -1}";`,
      '  else return 64; fi',
      '}',
    ].join('\n');

    // WHEN
    const result = withUserData(`${aws}\nconfigure_jenkins`, script);

    // THEN
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(readFileSync(settingsFile, 'utf8').trim()).toBe(settings);
    expect(readFileSync(record, 'utf8').trim().split('\n')).toEqual(['<AWS::Region>', 'install', settingsFile]);
    for (const executable of ['configure-jenkins', 'bluegreen-pipeline']) {
      expect(statSync(join(toolsDir, executable)).mode & 0o777).toBe(0o755);
    }
    expect(statSync(join(toolsDir, 'jenkins.yaml.tmpl')).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(toolsDir, 'sudoers'), 'utf8')).toBe(readFileSync(projectPath('assets', 'jenkins', 'sudoers'), 'utf8'));
  });

  test('installs what Jenkins builds need: git and a JDK 17 for the Gradle wrapper', () => {
    expect(userData).toContain('readonly BUILD_PACKAGES=(git java-17-amazon-corretto-devel)');
    expect(userData).toMatch(/dnf install -y .* jenkins "\$\{BUILD_PACKAGES\[@\]\}"\n/);
  });

  test.each([
    ['200', 0],
    ['404', 0],
    ['502', 1],
    ['000', 1],
  ])('the site check through Nginx treats HTTP %s as exit %i', (status, exitCode) => {
    const result = withUserData(`curl() { printf '${status}'; }; check_site`);
    expect(result.status).toBe(exitCode);
  });
});
