/**
 * The publishing engine shared by `publish` and `bench`: sends `total` messages keeping at most
 * `window` unconfirmed, optionally paced to a rate, and stops launching at the first failure or
 * when asked. Confirms of one event-loop turn launch the next messages in that same turn, so the
 * SDK packs them into shared frames.
 */

export interface PumpOptions {
  /** Messages to send. */
  total: number;
  /** Unconfirmed messages at most. */
  window: number;
  /** Messages per second at most, or null for as fast as confirms allow. */
  ratePerSec: number | null;
  /** Sends message `index` (0-based); resolves once it is confirmed. */
  send(index: number): Promise<void>;
  /** Told after each confirm, with the count so far. */
  onConfirmed?(confirmed: number): void;
  /** Milliseconds now, monotonic (injectable for tests of the pacing). */
  nowMs?(): number;
}

export interface PumpResult {
  /** Messages confirmed. */
  confirmed: number;
  /** Messages handed to `send` (confirmed + failed). */
  sent: number;
  /** The first failure, which stopped launching; null when all succeeded or the pump was stopped. */
  error: unknown;
  elapsedMs: number;
}

export interface Pump {
  /** Stops launching new messages; the result resolves once those in flight settle. */
  stop(): void;
  readonly result: Promise<PumpResult>;
}

/** Starts sending; see PumpOptions. */
export function startPump(options: PumpOptions): Pump {
  const now = options.nowMs ?? (() => performance.now());
  const startMs = now();
  const state = { next: 0, inFlight: 0, confirmed: 0, failed: false, stopped: false, error: null as unknown };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let finish!: (result: PumpResult) => void;
  const result = new Promise<PumpResult>((resolve) => {
    finish = resolve;
  });

  const done = () => state.failed || state.stopped || state.next >= options.total;
  const settle = () => {
    if (state.inFlight > 0 || !done()) return;
    if (timer !== undefined) clearTimeout(timer);
    finish({ confirmed: state.confirmed, sent: state.next, error: state.error, elapsedMs: now() - startMs });
  };
  /** How long until message `index` may go, by the rate. */
  const waitMs = (index: number) =>
    options.ratePerSec === null ? 0 : startMs + (index * 1000) / options.ratePerSec - now();

  const onTimer = () => {
    timer = undefined;
    launch();
  };
  const launch = () => {
    while (!done() && state.inFlight < options.window) {
      const wait = waitMs(state.next);
      if (wait > 0) {
        timer ??= setTimeout(onTimer, Math.max(1, Math.ceil(wait)));
        break;
      }
      const index = state.next++;
      state.inFlight++;
      options.send(index).then(
        () => {
          state.inFlight--;
          state.confirmed++;
          options.onConfirmed?.(state.confirmed);
          launch();
        },
        (error: unknown) => {
          state.inFlight--;
          if (!state.failed) state.error = error;
          state.failed = true;
          settle();
        },
      );
    }
    settle();
  };

  launch();
  return {
    stop() {
      state.stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      settle();
    },
    result,
  };
}
