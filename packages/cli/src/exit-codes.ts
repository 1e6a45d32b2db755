/**
 * Exit codes scripts can rely on, and the mapping from errors to them. The codes are part of the
 * command's contract (documented in `--help` and the README); messages are for people.
 */

import { type ErrorCode, FlotillaError } from '@flotilla/shared';

export const EXIT = {
  /** Done as asked. */
  ok: 0,
  /** The operation failed (the error code and message are printed). */
  failed: 1,
  /** Bad usage or configuration: unknown option, bad value, invalid argument. */
  usage: 2,
  /** Cannot reach the cluster: no node answered, connection lost, no quorum. */
  unreachable: 3,
  /** The queue does not exist. */
  notFound: 4,
  /** The token is missing, unknown, or not allowed to do this. */
  auth: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit-code table as printed at the end of every `--help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  operation failed (the error code and message are printed)
  2  usage or configuration error (bad option or value, INVALID_ARGUMENT)
  3  cannot reach the cluster (UNAVAILABLE, connection failures, no answer before the deadline)
  4  not found (QUEUE_NOT_FOUND)
  5  not allowed (UNAUTHORIZED, FORBIDDEN)`;

/** A problem with how a command was called; exits with 2 and the message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure the command has already explained on stderr; carries only the exit code. */
export class ExitError extends Error {
  override readonly name = 'ExitError';
  constructor(readonly exitCode: ExitCode) {
    super(`exit ${exitCode}`);
  }
}

const BY_CODE: Partial<Record<ErrorCode, ExitCode>> = {
  INVALID_ARGUMENT: EXIT.usage,
  UNAVAILABLE: EXIT.unreachable,
  CONNECTION_LOST: EXIT.unreachable,
  QUEUE_NOT_FOUND: EXIT.notFound,
  UNAUTHORIZED: EXIT.auth,
  FORBIDDEN: EXIT.auth,
};

/** The exit code for an error code of the protocol (or of the SDK). */
export function exitCodeForErrorCode(code: ErrorCode, details: Record<string, unknown> = {}): ExitCode {
  // A deadline that passed before the request ever went out means no node could be reached.
  if (code === 'TIMEOUT') return details.sent === false ? EXIT.unreachable : EXIT.failed;
  return BY_CODE[code] ?? EXIT.failed;
}

/** The exit code for anything a command may throw. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof ExitError) return error.exitCode;
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof FlotillaError) return exitCodeForErrorCode(error.code, error.details);
  return EXIT.failed;
}

/** One line for stderr: `CODE: message` for protocol errors, the message otherwise. */
export function describeError(error: unknown): string {
  if (error instanceof FlotillaError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
