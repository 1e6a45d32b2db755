/**
 * Safety limits of the queue state machine. The wire protocol enforces the user-facing limits at
 * the edge; these only make sure that no command that slipped through (or came from an older or
 * newer node) can push the state machine into arithmetic overflow or unbounded work in one apply.
 */

/** Longest duration any option or command may name: 10 years keeps `timeMs + duration` far below 2^53. */
export const MAX_DURATION_MS = 10 * 365 * 24 * 3600 * 1000;

/** Counts (maxMessages, maxDeliveries, deliver max...) stay within a 32-bit range; larger is a typo. */
export const MAX_COUNT = 2 ** 31 - 1;

/** Per-queue byte limit; 2^48 bytes is far beyond any node's memory and still exact in a double. */
export const MAX_BYTES_LIMIT = 2 ** 48;

/** Priority levels: "a small number"; 255 is what fits the AMQP-style byte, and keeps the heap key small. */
export const MAX_PRIORITY_LEVELS = 255;

/**
 * Body format tags: the wire protocol defines 0..3 today; the state machine stores any small tag so
 * that a newer edge can add formats without a state machine change.
 */
export const MAX_FORMAT_TAG = 255;

/** Queue names: the wire protocol is stricter (200 chars of [A-Za-z0-9._:-]); this is the backstop. */
export const MAX_QUEUE_NAME_LENGTH = 255;

/**
 * Messages one deliver command may lease. A consumer's credit (prefetch) is far smaller; the cap
 * bounds the reply size and the time one apply can take.
 */
export const MAX_DELIVER_BATCH = 10_000;

/** Snapshot chunks aim at this size: large enough to amortise per-chunk costs, small enough to stream. */
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
