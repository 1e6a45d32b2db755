/** Waiting for conditions with deadlines (never sleep-and-hope). */

export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Describes what was awaited, for the error message. */
  what?: string;
}

/**
 * Poll `probe` until it returns a value other than undefined/false (or stops throwing) and return it.
 * The last error or value is included in the timeout error.
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 25, what = 'condition' }: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolve when `emitterLike` fires `event`, or reject after the deadline. */
export function once<T = unknown>(
  subscribe: (resolve: (value: T) => void) => void,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
    subscribe((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
