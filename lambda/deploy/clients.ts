/**
 * The AWS clients, made once per Lambda container and reused by every invocation. The endpoint,
 * region and credentials come from the environment (AWS_REGION, AWS_ENDPOINT_URL_SSM, ...).
 */
import { SSMClient } from '@aws-sdk/client-ssm';

export const ssm = new SSMClient({});
