/**
 * The AWS clients, made once per Lambda container and reused by every invocation. The endpoint,
 * region and credentials come from the environment (AWS_REGION, AWS_ENDPOINT_URL_SSM, ...).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';

export const ssm = new SSMClient({});
/** Tags the fleet's recorded jars (lib/deploy/retention.ts). */
export const s3 = new S3Client({});
