/**
 * A host's IAM role and the one kind of grant every host needs on top of it: reading its own
 * assets. Used by the single host, the fleet's app hosts and the fleet's Jenkins.
 */
import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type { Construct } from 'constructs';

/** The host's role (id `Role`): SSM Agent's managed policy, and nothing else until granted. */
export function newHostRole(scope: Construct, description: string): iam.Role {
  const role = new iam.Role(scope, 'Role', {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description,
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
  });
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
    reason:
      "AmazonSSMManagedInstanceCore is AWS's minimal policy for SSM Agent (Run Command, Session Manager); AWS " +
      'updates it as the agent changes, and its ssm/ssmmessages/ec2messages actions do not support resource scoping.',
  });
  return role;
}

/** Lets `role` read exactly this asset's object (an artifact or bundle), nothing else in the bucket. */
export function grantAssetRead(role: iam.IRole, asset: s3assets.Asset): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)] }),
  );
}
