/**
 * Structured logging: pino JSON lines carrying the node id on every line and the node's current
 * Raft term (read at the moment of logging) so lines from a cluster can be merged and ordered.
 */
import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  nodeId: string;
  level: string;
  /** Returns the current term; called for every line. */
  term?: () => number;
  /** Where lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const term = options.term;
  return pino(
    {
      level: options.level,
      base: { node: options.nodeId },
      mixin: term ? () => ({ term: term() }) : undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

/** A logger that drops everything, for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
