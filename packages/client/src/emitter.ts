/**
 * A small typed event emitter that works in browsers and Node (no `node:events`). Listeners are
 * called synchronously in registration order; a listener that throws does not stop the others
 * and never breaks the SDK's own bookkeeping: its error is handed to `onListenerError`.
 */

/** A listener for an event whose payload type is `T`. */
export type Listener<T> = (payload: T) => void;

/**
 * Typed emitter: `Events` maps each event name to its payload type.
 *
 * @example
 * ```ts
 * const events = new TypedEmitter<{ tick: number }>();
 * const off = events.on('tick', (n) => use(n));
 * events.emit('tick', 1);
 * off();
 * ```
 */
export class TypedEmitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** @param onListenerError receives errors thrown by listeners (default: ignored). */
  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  /** Adds a listener that runs at most once; returns a function that removes it. */
  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /** Removes a listener added with `on` (a no-op if it is not registered). */
  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener as Listener<never>);
  }

  /** Number of listeners for an event. */
  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Calls every listener of `event` with `payload`. */
  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event);
    if (set === undefined || set.size === 0) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(payload);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}
