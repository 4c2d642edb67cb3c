// The local host lives with the scripts (the demo and the benchmark use it too).
export * from '../../scripts/lib/host.js';
