/**
 * Plain, line-oriented logging for the examples: a time, the component, the message. Library
 * modules take a `Logger` so tests can silence them or collect what they said.
 */

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Writes `HH:MM:SS.mmm component  message` lines to stdout (warnings and errors to stderr). */
export function plainLogger(component: string): Logger {
  const line = (level: string, message: string) => {
    const time = new Date().toISOString().slice(11, 23);
    return `${time} ${component.padEnd(14)} ${level}${message}\n`;
  };
  return {
    info: (message) => process.stdout.write(line('', message)),
    warn: (message) => process.stderr.write(line('WARN ', message)),
    error: (message) => process.stderr.write(line('ERROR ', message)),
  };
}

/** A logger that keeps every line in memory (for tests), with its level. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (message) => lines.push(`info ${message}`),
    warn: (message) => lines.push(`warn ${message}`),
    error: (message) => lines.push(`error ${message}`),
  };
}
