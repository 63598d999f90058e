/** Browser tests: Debian's chromium driven by playwright-core (never a downloaded browser), and the screenshots they save. */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PACKAGE_ROOT } from '../../tools/process/script-entry.ts';

/** Debian's `chromium` package (.ci/run installs it when it is missing). */
export const CHROMIUM = '/usr/bin/chromium';

/** Flags for a headless chromium in a container: no sandbox, GPU, first-run UI or background traffic. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches Debian's chromium (or `executablePath`) headless. Throws when the browser is missing:
 * the test fails, it is never skipped (a browser test that cannot run is a failure to see).
 */
export async function launchChromium(executablePath = CHROMIUM): Promise<Browser> {
  if (!existsSync(executablePath)) {
    throw new Error(`${executablePath} is missing: install Debian's chromium package (apt-get install chromium; .ci/run does it)`);
  }
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** Chromium's console line for a response with an error status, e.g. `… a status of 401 (Unauthorized)`. */
const FAILED_RESPONSE = /^Failed to load resource: the server responded with a status of (\d{3})\b/;

/**
 * Collects into `sink`, as they happen, what `page` reports on its own: uncaught exceptions and
 * console errors, one line each. Chromium logs every response with an error status as a console
 * error; those with a status in `expectedStatuses` (the ones a test provokes on purpose, such as a
 * 401 for a wrong token) are left out, any other status is kept. Returns `sink`.
 */
export function pageProblems(page: Page, sink: string[], expectedStatuses: readonly number[] = []): string[] {
  page.on('pageerror', (err) => sink.push(`uncaught: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const status = FAILED_RESPONSE.exec(m.text())?.[1];
    if (status !== undefined && expectedStatuses.includes(Number(status))) return;
    sink.push(`console.error: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  return sink;
}

/**
 * PNG screenshots of one browser test file: every step to `test-results/<dir>/NN-<step>.png` (test
 * artifacts, not committed); the README's pictures also to `docs/screenshots/<name>.png` when
 * UPDATE_SCREENSHOTS=1 (committed by hand after a look).
 */
export class Screenshots {
  private seq = 0;
  readonly dir: string;
  readonly updateReadme = process.env.UPDATE_SCREENSHOTS === '1';

  constructor(dir: string) {
    this.dir = join(PACKAGE_ROOT, 'test-results', dir);
  }

  /**
   * Saves the page as step `step` (and as the README's `readme` picture when updating them); returns
   * the artifact's path. The first one of a run clears what an earlier run left.
   */
  async take(page: Page, step: string, readme?: string): Promise<string> {
    const png = await page.screenshot({ fullPage: true, animations: 'disabled' });
    if (this.seq === 0) await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
    const name = step.replace(/[^\w.-]+/g, '-').slice(0, 60);
    const path = join(this.dir, `${String(++this.seq).padStart(2, '0')}-${name}.png`);
    await writeFile(path, png);
    if (readme !== undefined && this.updateReadme) {
      const docs = join(PACKAGE_ROOT, 'docs', 'screenshots');
      await mkdir(docs, { recursive: true });
      await writeFile(join(docs, `${readme}.png`), png);
    }
    return path;
  }
}
