/**
 * `npm run doctor [-- --url http://node:8080] [--json]` (in the image: `node dist/tools/doctor.js`):
 * checks a node's configuration and its cluster, one line per check. Exit 0 when nothing failed, 1
 * when something did, 2 for bad usage, 3 when doctor itself broke (tools/doctor/doctor-main.ts).
 */
import { doctorMain, EXIT } from './doctor/doctor-main.ts';

// Node's DEP0170 warning ("The URL redis://u:pass@… is invalid"), raised by ioredis' url.parse for a
// password holding `/` or `@`, prints the whole REDIS_URL, password included: doctor output is
// pasted into tickets, so no deprecation warning is printed.
process.noDeprecation = true;

const io = {
  stdout: (text: string) => process.stdout.write(text),
  stderr: (text: string) => process.stderr.write(text),
};

// Exits explicitly once the output is flushed: a half-open socket to a dead Redis or node must not keep doctor alive.
doctorMain(process.argv.slice(2), process.env, io).then(
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    process.stderr.write(`doctor: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`, () =>
      process.exit(EXIT.internal),
    );
  },
);
