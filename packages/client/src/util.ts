/**
 * Small runtime helpers shared by the SDK's modules: deferred promises, the per-turn scheduler
 * that batching relies on, jittered backoff, deadlines and random ids. Everything here runs in
 * browsers and Node alike (no Node-only globals).
 */

import { type ErrorCode, FlotillaError } from '@flotilla/shared';

/** A promise with its resolve/reject exposed, for waiters that something else completes. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Scheduler = (callback: () => void) => void;

/**
 * Runs a callback after the current event-loop turn, once every promise continuation of this turn
 * has run: that is what lets N `publish()` calls of one turn share one frame. `setImmediate` in
 * Node; `setTimeout(0)` elsewhere.
 */
export const afterTurn: Scheduler = (() => {
  const g = globalThis as { setImmediate?: (cb: () => void) => unknown };
  if (typeof g.setImmediate === 'function') {
    const immediate = g.setImmediate;
    return (callback: () => void) => {
      immediate(callback);
    };
  }
  return (callback: () => void) => {
    setTimeout(callback, 0);
  };
})();

/** Reconnect/retry backoff: exponential from `initialMs` up to `maxMs`. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/**
 * Delay before retry number `attempt` (1-based): exponential, capped, with "equal jitter" (half
 * fixed, half random) so that many clients losing the same leader do not reconnect in lockstep.
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const ceilingMs = Math.min(options.maxMs, options.initialMs * 2 ** exponent);
  return Math.round(ceilingMs / 2 + (random() * ceilingMs) / 2);
}

/** Resolves after `ms`, or as soon as `abort` resolves (whichever comes first). */
export function sleep(ms: number, abort?: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    abort?.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

/**
 * One deadline for one logical request across all its attempts (a single timer, not one per
 * attempt). `race` rejects with TIMEOUT once the deadline passes and runs the cancel hook so the
 * attempt in flight forgets its pending entry. `cancel(error)` ends it early the same way, with
 * that error (the caller's AbortSignal fired).
 */
export class Deadline {
  private readonly timer: ReturnType<typeof setTimeout>;
  private readonly onExpire = new Set<() => void>();
  private expiredFlag = false;
  private cancelledWith: FlotillaError | null = null;

  constructor(
    readonly timeoutMs: number,
    private readonly describe: () => string,
  ) {
    this.timer = setTimeout(() => this.expire(), timeoutMs);
  }

  get expired(): boolean {
    return this.expiredFlag;
  }

  /** The TIMEOUT error this deadline rejects with. `sent` says whether a request had gone out. */
  error(sent: boolean): FlotillaError {
    return new FlotillaError('TIMEOUT', `${this.describe()}: no outcome within ${this.timeoutMs} ms`, {
      timeoutMs: this.timeoutMs,
      sent,
    });
  }

  race<T>(promise: Promise<T>, sent: boolean, cancel?: () => void): Promise<T> {
    if (this.expiredFlag) {
      cancel?.();
      return Promise.reject(this.cancelledWith ?? this.error(sent));
    }
    return new Promise<T>((resolve, reject) => {
      const onExpire = () => {
        cancel?.();
        reject(this.cancelledWith ?? this.error(sent));
      };
      this.onExpire.add(onExpire);
      promise.then(
        (value) => {
          this.onExpire.delete(onExpire);
          resolve(value);
        },
        (error: unknown) => {
          this.onExpire.delete(onExpire);
          reject(error);
        },
      );
    });
  }

  /** Ends the deadline now: pending and later races reject with `error` instead of TIMEOUT. */
  cancel(error: FlotillaError): void {
    if (this.expiredFlag) return;
    this.cancelledWith = error;
    clearTimeout(this.timer);
    this.expire();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.onExpire.clear();
  }

  private expire(): void {
    this.expiredFlag = true;
    const listeners = [...this.onExpire];
    this.onExpire.clear();
    for (const listener of listeners) listener();
  }
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** `byteCount` random bytes as base64url without padding (Web Crypto: browsers and Node 20). */
export function randomBase64Url(byteCount: number): string {
  const bytes = new Uint8Array(byteCount);
  globalThis.crypto.getRandomValues(bytes);
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += BASE64URL[(value >>> bits) & 63];
    }
  }
  if (bits > 0) out += BASE64URL[(value << (6 - bits)) & 63];
  return out;
}

/**
 * Idempotency keys for publishes that carry none: a random 128-bit prefix per client plus a
 * counter. As unique as a random 128-bit key per message, without a crypto call per message.
 */
export class IdempotencyKeys {
  private readonly prefix = randomBase64Url(16);
  private counter = 0;

  next(): string {
    this.counter++;
    return `${this.prefix}.${this.counter.toString(36)}`;
  }
}

/** The error of a request its caller cancelled through an AbortSignal; the signal's reason is the cause. */
export function cancelledError(
  what: string,
  signal: AbortSignal,
  details: Record<string, unknown> = {},
): FlotillaError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : String(reason);
  return new FlotillaError('CANCELLED', `${what} cancelled: ${why}`, details, { cause: reason });
}

/** Coerces anything thrown into a FlotillaError (unknown throws are INTERNAL, with the cause kept). */
export function toFlotillaError(error: unknown): FlotillaError {
  if (error instanceof FlotillaError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FlotillaError('INTERNAL', message, {}, { cause: error });
}

/** One failed attempt of a request, as listed in `details.attempts` of an outcome-unknown error. */
export interface FailedAttempt {
  code: ErrorCode;
  message: string;
}

/**
 * The error for a request whose last attempt failed with `last` after the failed attempts
 * `earlier` (oldest first). Reporting `last` as it is would tell the caller "nothing was applied"
 * when its code is definite (UNAVAILABLE, NOT_LEADER, QUEUE_NOT_FOUND...), which is not known if an
 * earlier attempt ended with a maybe-applied code (CONNECTION_LOST, TIMEOUT...): that attempt may
 * have been applied. So the error then takes the code of the latest such attempt, with `last` as
 * its cause and every attempt in `details.attempts`. `last` is returned unchanged when it is
 * maybe-applied itself or when no earlier attempt was.
 */
export function outcomeUnknown(
  what: string,
  last: FlotillaError,
  earlier: readonly FlotillaError[],
): FlotillaError {
  if (last.maybeApplied) return last;
  const uncertain = earlier.findLast((attempt) => attempt.maybeApplied);
  if (uncertain === undefined) return last;
  const attempts = [...earlier, last].map(({ code, message }): FailedAttempt => ({ code, message }));
  return new FlotillaError(
    uncertain.code,
    `${what}: outcome unknown: an earlier attempt ended with ${uncertain.code} and may have been applied ` +
      `(${uncertain.message}); the last attempt failed with ${last.code}: ${last.message}`,
    { sent: true, attempts },
    { cause: last },
  );
}

/**
 * The last attempt's own error inside `error`: its cause when `error` lists the request's
 * attempts (an outcome-unknown error from `outcomeUnknown`, or a TIMEOUT after failed attempts),
 * else `error` itself. For reading the server's answer (which message it refused), not for
 * reporting: the outer error is what the caller must be told.
 */
export function lastAttemptError(error: FlotillaError): FlotillaError {
  const wrapped = error.maybeApplied && Array.isArray(error.details.attempts);
  return wrapped && error.cause instanceof FlotillaError ? error.cause : error;
}
