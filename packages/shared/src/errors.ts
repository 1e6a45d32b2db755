/**
 * Error codes and the error class shared by the broker and the SDK. Codes are the stable
 * contract (clients branch on them); messages are for people and may change. Each code also says
 * whether retrying can help and whether the operation may have taken effect despite the error.
 */

export const ERROR_CODES = [
  'NOT_LEADER',
  'QUEUE_NOT_FOUND',
  'QUEUE_EXISTS',
  'QUEUE_FULL',
  'INVALID_ARGUMENT',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'FRAME_TOO_LARGE',
  'MESSAGE_TOO_LARGE',
  'OVERLOADED',
  'TIMEOUT',
  'UNAVAILABLE',
  'UNKNOWN_OP',
  'PROTOCOL_ERROR',
  'UNSUPPORTED_VERSION',
  'LEASE_EXPIRED',
  'SUBSCRIPTION_NOT_FOUND',
  'CONNECTION_LOST',
  'CLOSED',
  'CANCELLED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorCodeInfo {
  /** Sending the same request again (possibly elsewhere, possibly later) can succeed. */
  retryable: boolean;
  /** The operation may have been applied even though it failed: outcome unknown. */
  maybeApplied: boolean;
  /** One line for docs and logs. */
  meaning: string;
}

export const ERROR_INFO: Readonly<Record<ErrorCode, ErrorCodeInfo>> = Object.freeze({
  NOT_LEADER: {
    retryable: true,
    maybeApplied: false,
    meaning: 'this node is not the leader; details name leaderId and leaderUrl (null if unknown)',
  },
  QUEUE_NOT_FOUND: { retryable: false, maybeApplied: false, meaning: 'no queue with that name' },
  QUEUE_EXISTS: { retryable: false, maybeApplied: false, meaning: 'a queue with that name already exists' },
  QUEUE_FULL: {
    retryable: true,
    maybeApplied: false,
    meaning: 'the queue is at maxMessages or maxBytes with overflow "reject"; retry after consumers catch up',
  },
  INVALID_ARGUMENT: {
    retryable: false,
    maybeApplied: false,
    meaning: 'a field is missing, of the wrong type or out of range; details.field names it',
  },
  UNAUTHORIZED: { retryable: false, maybeApplied: false, meaning: 'missing or unknown token' },
  FORBIDDEN: { retryable: false, maybeApplied: false, meaning: 'the token may not perform this operation' },
  FRAME_TOO_LARGE: { retryable: false, maybeApplied: false, meaning: 'the frame exceeds maxFrameBytes' },
  MESSAGE_TOO_LARGE: { retryable: false, maybeApplied: false, meaning: 'a body exceeds maxMessageBytes' },
  OVERLOADED: {
    retryable: true,
    maybeApplied: false,
    meaning: 'the server refused the work to protect itself; retry with backoff',
  },
  TIMEOUT: {
    retryable: true,
    maybeApplied: true,
    meaning: 'no answer in time: the operation may or may not have been applied',
  },
  UNAVAILABLE: {
    retryable: true,
    maybeApplied: false,
    meaning: 'the node cannot serve now (starting, no quorum, shutting down); nothing was applied',
  },
  UNKNOWN_OP: { retryable: false, maybeApplied: false, meaning: 'the op number is not known to this server' },
  PROTOCOL_ERROR: {
    retryable: false,
    maybeApplied: false,
    meaning: 'the frame is not valid msgpack or not a valid frame; the connection may be closed',
  },
  UNSUPPORTED_VERSION: {
    retryable: false,
    maybeApplied: false,
    meaning: 'hello asked for a protocol version this server does not speak; details give the range',
  },
  LEASE_EXPIRED: {
    retryable: false,
    maybeApplied: false,
    meaning:
      'the message was delivered again since this delivery (a newer lease settles it), or the lease to extend has ended; see docs/protocol.md "What a settlement\'s outcome means"',
  },
  SUBSCRIPTION_NOT_FOUND: {
    retryable: false,
    maybeApplied: false,
    meaning: 'no subscription with that id on this connection',
  },
  CONNECTION_LOST: {
    retryable: true,
    maybeApplied: true,
    meaning: 'client side: the connection dropped after the request was sent; outcome unknown',
  },
  CLOSED: {
    retryable: false,
    maybeApplied: true,
    meaning: 'client side: the client was closed while the request was pending; outcome unknown',
  },
  CANCELLED: {
    retryable: false,
    maybeApplied: true,
    meaning: 'client side: the caller cancelled the request (its AbortSignal fired); outcome unknown',
  },
  INTERNAL: {
    retryable: false,
    maybeApplied: true,
    meaning: 'an unexpected server fault; the outcome is unknown',
  },
});

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && KNOWN_CODES.has(value);
}

/** Retrying the same request can succeed. For maybe-applied codes retry only idempotent requests. */
export function isRetryable(code: ErrorCode): boolean {
  return ERROR_INFO[code].retryable;
}

/** The request may have taken effect although it failed (outcome unknown), as opposed to a definite failure. */
export function isMaybeApplied(code: ErrorCode): boolean {
  return ERROR_INFO[code].maybeApplied;
}

/** Extra facts about an error; `field` names the offending field for INVALID_ARGUMENT and friends. */
export type ErrorDetails = Record<string, unknown>;

/** Details of NOT_LEADER and of the goingAway notice. */
export interface NotLeaderDetails {
  leaderId: string | null;
  leaderUrl: string | null;
}

/** The error every Flotilla API throws or returns; `instanceof FlotillaError` and `code` identify it. */
export class FlotillaError extends Error {
  override readonly name = 'FlotillaError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  get retryable(): boolean {
    return isRetryable(this.code);
  }

  get maybeApplied(): boolean {
    return isMaybeApplied(this.code);
  }

  /** The field named by INVALID_ARGUMENT-style errors, if any. */
  get field(): string | undefined {
    const field = this.details.field;
    return typeof field === 'string' ? field : undefined;
  }
}

export function isFlotillaError(value: unknown, code?: ErrorCode): value is FlotillaError {
  return value instanceof FlotillaError && (code === undefined || value.code === code);
}

/** Shorthand for the most common error: a bad field. */
export function invalidArgument(field: string, message: string, code: ErrorCode = 'INVALID_ARGUMENT') {
  return new FlotillaError(code, `${field}: ${message}`, { field });
}
