/** The queue runtime: the application the replicated log drives, and the leader's delivery duties. */
export type { PullRequest, Subscription } from './consumers.js';
export { QueueRuntime, type QueueRuntimeOptions } from './runtime.js';
export { LocalLog, type LocalLogOptions } from './testing/local-log.js';
export type { CommandOwner, ConsumerPort, RuntimeLimits } from './types.js';
export { DEFAULT_RUNTIME_LIMITS } from './types.js';
