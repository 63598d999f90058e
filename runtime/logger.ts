/** The one root pino logger; components take children of it, never one per message. */
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerConfig {
  /** pino level: trace, debug, info, warn, error, fatal, silent. */
  readonly level: string;
  /** Bound into every line, e.g. `{ node: 'n1' }`. */
  readonly base?: Record<string, unknown>;
}

export function createRootLogger(config: LoggerConfig): Logger {
  return pino({ level: config.level, base: config.base ?? {} });
}

/** A logger that discards everything (tests, benchmarks). */
export const silentLogger: Logger = pino({ level: 'silent' });
