import { describe, expect, test } from 'vitest';
import { DEFAULT_DEPLOY_SETTINGS } from '../../lib/deploy/defaults.js';
import { readDeploySettings } from '../../lambda/deploy/settings.js';
import { DEPLOY_FUNCTION_ENV as ENV } from '../../lib/contract.js';

describe('readDeploySettings', () => {
  test('defaults when the environment says nothing', () => {
    expect(readDeploySettings({})).toEqual({ ...DEFAULT_DEPLOY_SETTINGS, executionTimeoutSeconds: undefined, outputLogGroupName: undefined });
  });

  test('reads every variable the construct sets', () => {
    expect(
      readDeploySettings({
        [ENV.onlineWaitSeconds]: '120',
        [ENV.onlinePollSeconds]: '0.5',
        [ENV.deliveryTimeoutSeconds]: '60',
        [ENV.executionTimeoutSeconds]: '2199',
        [ENV.outputLogGroupName]: '/bluegreen/deploys',
      }),
    ).toEqual({
      onlineWaitSeconds: 120,
      onlinePollSeconds: 0.5,
      deliveryTimeoutSeconds: 60,
      executionTimeoutSeconds: 2199,
      outputLogGroupName: '/bluegreen/deploys',
    });
  });

  test.each(['0', '-5', 'soon'])('refuses %j, naming the variable', (raw) => {
    expect(() => readDeploySettings({ [ENV.onlineWaitSeconds]: raw })).toThrow(
      `environment variable ${ENV.onlineWaitSeconds}=${JSON.stringify(raw)} must be a positive number of seconds`,
    );
  });

  test("reads a fleet's upload location, whose recorded jars it tags; refuses anything but s3://BUCKET/PREFIX/", () => {
    expect(readDeploySettings({ [ENV.uploadLocation]: 's3://uploads-bucket/cli-releases/' }).uploadLocation).toEqual({ bucket: 'uploads-bucket', prefix: 'cli-releases/' });
    expect(() => readDeploySettings({ [ENV.uploadLocation]: 'uploads-bucket/cli-releases' })).toThrow(
      `environment variable ${ENV.uploadLocation}="uploads-bucket/cli-releases" must be s3://BUCKET/PREFIX/`,
    );
  });
});
