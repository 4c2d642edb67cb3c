/**
 * What the deploy does when not told otherwise, in seconds. The construct puts these in the
 * deploy functions' environment, the functions fall back to them when a variable is absent, and
 * the operator command sends with them, so the three cannot disagree.
 */
export const DEFAULT_DEPLOY_SETTINGS = {
  /** How long the deploy waits for the instance to be Online in Systems Manager. */
  onlineWaitSeconds: 300,
  /** How often it asks whether the instance is Online. */
  onlinePollSeconds: 5,
  /** SendCommand's `TimeoutSeconds` for one instance: how long the command may wait to start there. */
  deliveryTimeoutSeconds: 300,
} as const;
