/**
 * The AWS clients, made once per run. Region, credentials and endpoints come from the usual
 * places (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_<SERVICE>, ...); `--region` wins.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { CLI_EXIT_CODES, CliError } from './errors.js';

export interface Clients {
  readonly region: string;
  readonly cloudFormation: CloudFormationClient;
  readonly ssm: SSMClient;
  readonly s3: S3Client;
  readonly logs: CloudWatchLogsClient;
}

export async function createClients(region: string | undefined): Promise<Clients> {
  const config = region === undefined ? {} : { region };
  const cloudFormation = new CloudFormationClient(config);
  let resolvedRegion: string;
  try {
    resolvedRegion = await cloudFormation.config.region();
  } catch {
    throw new CliError('no AWS region is set: pass --region REGION, or set AWS_REGION (or a region in your AWS profile).', CLI_EXIT_CODES.usage);
  }
  const regional = { region: resolvedRegion };
  return {
    region: resolvedRegion,
    cloudFormation,
    ssm: new SSMClient(regional),
    s3: new S3Client(regional),
    logs: new CloudWatchLogsClient(regional),
  };
}
