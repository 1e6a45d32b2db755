/**
 * Stopping an example cleanly on Ctrl-C (SIGINT) or SIGTERM: the first signal runs the example's
 * own stop sequence (stop taking work, let work in progress finish, close the client so
 * unconfirmed publishes and pending acks drain); a second signal exits at once.
 */

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from './log.js';

/** Runs `stop` on the first SIGINT/SIGTERM and then exits; a second signal exits immediately. */
export function stopOnSignal(stop: () => Promise<void>, log: Logger): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without draining`);
      process.exit(130);
    }
    stopping = true;
    log.info(`${signal}: draining (press Ctrl-C again to exit at once)`);
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error(`stop failed: ${describeError(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** A one-line description of anything thrown: `CODE: message` for Flotilla errors. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

/** Whether the module with this `import.meta.url` is the script node (or tsx) was started with. */
export function isMainModule(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(resolve(entry)).href === moduleUrl;
}
