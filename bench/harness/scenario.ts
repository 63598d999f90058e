/** The contract between the benchmark runner and its scenarios: what a scenario gets and what it reports. */

/** One measured figure, next to the baseline measured in the same run (when there is one). */
export interface Figure {
  readonly name: string;
  readonly value: number;
  /** e.g. 'reports/s', 'ms', 'bytes', 'actors/s'. */
  readonly unit: string;
  /** The same quantity for the baseline (raw grpc-js echo, raw Hono, raw node:http, raw ioredis pipeline, minimal mailbox). */
  readonly baseline?: { readonly name: string; readonly value: number };
  /** value / baseline.value. */
  readonly ratio?: number;
  /** The target from the issue, as text (e.g. '≥ 100,000 reports/s'), and whether it was met. */
  readonly target?: string;
  readonly met?: boolean;
}

/** Latency percentiles in milliseconds, from an HDR histogram. */
export interface LatencySummary {
  readonly name: string;
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** A time series for plots: x = seconds since the scenario started. */
export interface Series {
  readonly name: string;
  readonly unit: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly figures: readonly Figure[];
  readonly latencies?: readonly LatencySummary[];
  readonly series?: readonly Series[];
  /** Counts that must be zero (lost / duplicated reports and commands), by name. */
  readonly integrity?: Readonly<Record<string, number>>;
  readonly notes?: readonly string[];
}

export interface ProgressHandle {
  update(done: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

export interface ScenarioContext {
  /** Seconds per measured phase (smoke: about 1). */
  readonly duration: number;
  readonly hubs: number;
  /** Reports per second for fixed-rate phases. */
  readonly rate: number;
  readonly nodes: number;
  readonly smoke: boolean;
  /** `--tracing`: the ingest scenario's nodes run with OpenTelemetry tracing on (absent: off). */
  readonly tracing?: boolean;
  /** `--kills`: SIGKILLs in the failover scenario (absent: its default, 5; 1 in smoke runs). */
  readonly kills?: number;
  /**
   * The flags the user gave on the command line. A scenario with defaults of its own (e.g. the
   * latency scenario's three rates) uses them unless the flag was given. Absent: treat every
   * value above as given.
   */
  readonly explicit?: ReadonlySet<'duration' | 'hubs' | 'rate' | 'nodes'>;
  /** A progress bar for a long phase (a no-op when stdout is not a TTY or in smoke mode). */
  progress(label: string, total: number): ProgressHandle;
  log(line: string): void;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
