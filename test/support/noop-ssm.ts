/**
 * The SSM stand-in with one no-op document and one unreachable instance, and a real SDK client
 * pointed at it: the fixture of the tests that exercise sending a command over the wire.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { LoopbackSsm } from './ssm-server.js';

export const NOOP_INSTANCE_ID = 'i-0123456789abcdef0';
export const NOOP_DOCUMENT_NAME = 'Ec2BlueGreen-DeployDocument-Loopback';

export async function startNoopSsm(): Promise<{ ssm: LoopbackSsm; client: SSMClient }> {
  const ssm = await LoopbackSsm.start({
    documents: {
      [NOOP_DOCUMENT_NAME]: { schemaVersion: '2.2', mainSteps: [{ action: 'aws:runShellScript', name: 'noop', inputs: { runCommand: ['true'] } }] },
    },
    instances: { [NOOP_INSTANCE_ID]: 'ConnectionLost' },
    environment: {},
  });
  const client = new SSMClient({ region: 'us-east-1', endpoint: ssm.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  return { ssm, client };
}
