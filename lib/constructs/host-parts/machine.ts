/**
 * The machine every host runs on: the Amazon Linux 2023 image for its architecture and an
 * encrypted gp3 root volume. Used by owned instances and by the fleet's launch template alike.
 */
import { Size } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';

const AL2023_AMI_PARAMETER = {
  [ec2.InstanceArchitecture.X86_64]: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
  [ec2.InstanceArchitecture.ARM_64]: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64',
} as const;

/** The Amazon Linux 2023 image for the instance type's architecture, resolved by EC2 at launch. */
export function al2023Image(instanceType: ec2.InstanceType, owner: string): ec2.IMachineImage {
  const architecture = instanceType.architecture;
  if (architecture !== ec2.InstanceArchitecture.X86_64 && architecture !== ec2.InstanceArchitecture.ARM_64) {
    throw new Error(`${owner}: instanceType ${instanceType} has no Amazon Linux 2023 image`);
  }
  // Resolved by EC2 at launch: a newer AMI does not replace a running host on the next deploy.
  return ec2.MachineImage.resolveSsmParameterAtLaunch(AL2023_AMI_PARAMETER[architecture], { os: ec2.OperatingSystemType.LINUX });
}

/** The encrypted gp3 root volume (Jenkins workspaces and kept releases live there). */
export function rootVolume(size: Size | undefined): ec2.BlockDevice {
  return {
    deviceName: '/dev/xvda',
    volume: ec2.BlockDeviceVolume.ebs((size ?? Size.gibibytes(20)).toGibibytes(), {
      volumeType: ec2.EbsDeviceVolumeType.GP3,
      encrypted: true,
      deleteOnTermination: true,
    }),
  };
}
