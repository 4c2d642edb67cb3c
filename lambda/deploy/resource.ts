/**
 * The custom resource as the CDK Provider framework sees it: the events the handlers receive,
 * what they answer, the command `onEvent` hands to every `isComplete`, and the error whose
 * message CloudFormation shows.
 */
import type { FleetDeployTarget } from '../../lib/deploy/send-command.js';

/** A CloudFormation custom resource request, as the Provider framework passes it on. */
export interface CustomResourceEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly LogicalResourceId: string;
  readonly RequestId: string;
  readonly StackId: string;
  readonly ResourceType: string;
  readonly ResourceProperties: Readonly<Record<string, unknown>>;
  readonly OldResourceProperties?: Readonly<Record<string, unknown>>;
  /** Absent on Create. */
  readonly PhysicalResourceId?: string;
}

/** The command `onEvent` sent; the framework hands it to every `isComplete` call. */
export interface SentCommand {
  readonly commandId: string;
  /** The one instance; absent for a fleet. */
  readonly instanceId?: string;
  /** The fleet the command targets by tag; absent for one instance. */
  readonly fleet?: FleetDeployTarget;
  /** Epoch milliseconds. */
  readonly sentAt: number;
  readonly version?: string;
}

export interface OnEventResult {
  readonly PhysicalResourceId: string;
  /** Absent on Delete: nothing was sent. */
  readonly BlueGreenCommand?: SentCommand;
}

export type IsCompleteEvent = CustomResourceEvent & OnEventResult;

export interface IsCompleteResult {
  readonly IsComplete: boolean;
  readonly Data?: Readonly<Record<string, string>>;
}

/** The part of the Lambda context the handlers read. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/**
 * A deploy that failed: its message is the whole CloudFormation reason. The stack is left out
 * because the framework appends the function's trace to the reason, and CloudFormation's 4 KB
 * are better spent on the host's output.
 */
export class DeployFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployFailedError';
    this.stack = `${this.name}: ${message}`;
  }
}
