/**
 * One fleet deploy request, as CloudFormation sends its properties: shared by the tests of the
 * pure fleet logic (test/deploy/) and of the fleet handlers (test/lambda/), so both speak of the
 * same fleet.
 */
import type { CommandInvocationStatus } from '@aws-sdk/client-ssm';
import { DEPLOYMENT_PROPERTIES as P, FLEET_TAG_KEY } from '../../lib/contract.js';

export const COMMAND_ID = 'c0ffee00-1111-2222-3333-444455556666';
export const SHA = 'cd'.repeat(32);
export const TAG_VALUE = 'Shop/Ec2BlueGreen/Fleet';
export const RELEASE_PARAMETER = 'Ec2BlueGreen-FleetRelease-AbC';
export const HOSTS = ['i-0aaaaaaaaaaaaaaa1', 'i-0aaaaaaaaaaaaaaa2', 'i-0aaaaaaaaaaaaaaa3'];

export const PROPERTIES = {
  ServiceToken: 'arn:aws:lambda:us-east-1:111111111111:function:framework-onEvent',
  [P.targetTagKey]: FLEET_TAG_KEY,
  [P.targetTagValue]: TAG_VALUE,
  [P.maxConcurrency]: '1',
  [P.releaseParameterName]: RELEASE_PARAMETER,
  [P.documentName]: 'Ec2BlueGreen-DeployDocument-AbCdEf123456',
  [P.artifactUri]: 's3://assets-bucket/1f3c.jar',
  [P.sha256]: SHA,
  [P.version]: 'v3',
};

/** ListCommandInvocations' answer: no response codes (those are per plugin); a host past the error limit is Cancelled/Terminated. */
export function invocations(statuses: ReadonlyArray<[string, CommandInvocationStatus, number?]>) {
  return {
    CommandInvocations: statuses.map(([instanceId, status]) => ({
      CommandId: COMMAND_ID,
      InstanceId: instanceId,
      Status: status,
      StatusDetails: status === 'Cancelled' ? 'Terminated' : status,
    })),
  };
}
