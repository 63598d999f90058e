/**
 * A log line budget: at most `perWindow` log lines every `windowMs` milliseconds, so a hostile
 * peer or a failing dependency cannot flood the logs. `admit()` says whether to log now and how many lines were held back before.
 */
export class LogThrottle {
  private windowStart = Number.NEGATIVE_INFINITY;
  private logged = 0;
  private held = 0;

  constructor(
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** undefined = do not log this one; else how many were suppressed since the last line logged. */
  admit(): number | undefined {
    const now = this.clock();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.logged = 0;
    }
    if (this.logged >= this.perWindow) {
      this.held++;
      return undefined;
    }
    this.logged++;
    const suppressed = this.held;
    this.held = 0;
    return suppressed;
  }
}
