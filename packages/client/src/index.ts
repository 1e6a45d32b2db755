/**
 * `@flotilla/client`: the Flotilla SDK for Node.js and browsers. The public surface is exactly
 * what this file exports; everything else is internal.
 */

export {
  type BodyFormat,
  type ClusterInfo,
  type ClusterNodeInfo,
  type DeadLetterInfo,
  type DeadLetterReason,
  ERROR_CODES,
  ERROR_INFO,
  type ErrorCode,
  type ErrorCodeInfo,
  FlotillaError,
  isFlotillaError,
  isMaybeApplied,
  isRetryable,
  type NodeRole,
  type QueueOptions,
  type QueueOptionsPatch,
  type QueueStats,
  type RetryPolicy,
  type ServerLimitsInfo,
} from '@flotilla/shared';
export {
  type CloseOptions,
  type ConsumeBatchOptions,
  type ConsumeOptions,
  connect,
  FlotillaClient,
  type PeekOptions,
  type ReceiveOptions,
  type RedriveOptions,
} from './client.js';
export type { BatchHandler, MessageHandler, MessageStream, Subscription } from './consumers.js';
export { type Listener, TypedEmitter } from './emitter.js';
export type { ClientEvents, ClientStatus } from './leader-link.js';
export { Message, MessageView, type NackOptions } from './message.js';
export { type ConnectOptions, DEFAULT_OPTIONS, normalizeServerUrl } from './options.js';
export type { BatchEntry, PublishCallOptions, PublishOptions, PublishReceipt } from './publisher.js';
export type { WebSocketFactory, WebSocketLike } from './transport.js';
