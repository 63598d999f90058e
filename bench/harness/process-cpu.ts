/** CPU time of another process (the node under test), read from /proc: what a report costs the node. */
import { readFileSync } from 'node:fs';

/**
 * User + system CPU seconds the process has used so far, or undefined where /proc is not there
 * (not Linux) or the process is gone. Fields 14 and 15 of /proc/<pid>/stat, in clock ticks.
 */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
}

/** `getconf CLK_TCK` is 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/** Starts a CPU stopwatch on `pid`; `stop()` gives the CPU seconds spent since, or undefined. */
export function cpuStopwatch(pid: number | undefined): { stop(): number | undefined } {
  const start = processCpuSeconds(pid);
  return {
    stop: () => {
      const end = processCpuSeconds(pid);
      return start === undefined || end === undefined ? undefined : end - start;
    },
  };
}
