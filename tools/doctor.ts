/**
 * `npm run doctor [-- --url http://node:8080] [--json]` (in the image: `node dist/tools/doctor.js`):
 * checks a node's configuration and its cluster, one line per check. Exit 0 when nothing failed, 1
 * when something did, 2 for bad usage, 3 when doctor itself broke (tools/doctor/doctor-main.ts).
 */
import { doctorMain, EXIT } from './doctor/doctor-main.ts';

// Doctor's output is pasted into tickets: it is its check lines only. A deprecation warning from a
// dependency would add a line nobody acts on (and Node's URL warnings, DEP0170, quote the URL whole).
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
