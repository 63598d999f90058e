/**
 * `npm run doctor [-- --url http://node:8080] [--token T] [--json]` (in the image: `node
 * dist/tools/doctor.js`): checks a node's configuration and its cluster, one line per check, exit 0
 * when nothing failed, 1 when something did, 2 for bad usage.
 */
import { exitCodeOf } from './doctor/check-result.ts';
import { parseDoctorArgs, UsageError, USAGE } from './doctor/doctor-args.ts';
import { formatJson, formatText } from './doctor/format-results.ts';
import { runDoctor } from './doctor/run-doctor.ts';

async function main(): Promise<number> {
  let args;
  try {
    args = parseDoctorArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`doctor: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const results = await runDoctor({ env: process.env, redisUrl: args.redisUrl, url: args.url, token: args.token });
  process.stdout.write(`${args.json ? formatJson(results) : formatText(results)}\n`);
  return exitCodeOf(results);
}

// Exits explicitly once the output is flushed: a half-open socket to a dead Redis or node must not keep doctor alive.
main().then(
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    process.stderr.write(`doctor: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`, () => process.exit(1));
  },
);
