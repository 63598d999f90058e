/** Doctor as a command: arguments in, lines out, an exit code that tells a finding from a usage error or a doctor bug. */
import { exitCodeOf, messageOf, type CheckResult } from './check-result.ts';
import { parseDoctorArgs, UsageError, USAGE } from './doctor-args.ts';
import { formatJson, formatText } from './format-results.ts';
import { runDoctor, type DoctorOptions } from './run-doctor.ts';

/** Exit codes: 0 nothing failed, 1 a check failed, 2 bad usage, 3 doctor itself broke (no verdict on the cluster). */
export const EXIT = { ok: 0, failed: 1, usage: 2, internal: 3 } as const;

export interface DoctorIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** Runs doctor over `argv` (without node and the script) and `env`; returns the exit code. `run` is replaceable for tests. */
export async function doctorMain(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: DoctorIo,
  run: (opts: DoctorOptions) => Promise<CheckResult[]> = runDoctor,
): Promise<number> {
  let args;
  try {
    args = parseDoctorArgs(argv, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr(`doctor: ${err.message}\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (args.help) {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  let results: CheckResult[];
  try {
    results = await run({ env, redisUrl: args.redisUrl, url: args.url, token: args.token });
  } catch (err) {
    // A bug in doctor says nothing about the cluster: not exit 1, which scripts read as "the cluster is broken".
    io.stderr(`doctor: internal error, no verdict on the cluster: ${err instanceof Error ? (err.stack ?? err.message) : messageOf(err)}\n`);
    return EXIT.internal;
  }
  io.stdout(`${args.json ? formatJson(results) : formatText(results)}\n`);
  return exitCodeOf(results);
}
