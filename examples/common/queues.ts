/**
 * Queue setup shared by the examples: create a queue, or bring an existing one up to the options
 * the example was started with, so running an example twice (or several workers at once) is safe.
 */

import { type FlotillaClient, isFlotillaError, type QueueOptionsPatch } from '@flotilla/client';

/** Creates `name` with `options`, or updates its options if it exists already. */
export async function ensureQueue(
  client: FlotillaClient,
  name: string,
  options: QueueOptionsPatch = {},
): Promise<void> {
  try {
    await client.createQueue(name, options);
  } catch (error) {
    if (!isFlotillaError(error, 'QUEUE_EXISTS')) throw error;
    // Priority levels are fixed at creation; everything else can follow the flags.
    const { priorityLevels: _fixed, ...patch } = options;
    if (Object.keys(patch).length > 0) await client.updateQueue(name, patch);
  }
}
