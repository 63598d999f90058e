/** Progress bars for long phases (cli-progress), only on a TTY and never in smoke mode; elsewhere no-ops. */
import cliProgress from 'cli-progress';
import type { ProgressHandle } from './scenario.ts';

const noop: ProgressHandle = { update: () => {}, stop: () => {} };

export interface ProgressFactory {
  (label: string, total: number): ProgressHandle;
}

/** A factory of progress bars; `enabled` false (no TTY, smoke) gives no-ops. */
export function progressBars(enabled: boolean, stream: NodeJS.WriteStream = process.stderr): ProgressFactory {
  if (!enabled) return () => noop;
  return (label, total) => {
    const bar = new cliProgress.SingleBar(
      {
        format: `  ${label.padEnd(36).slice(0, 36)} [{bar}] {percentage}% {value}/{total} {extra}`,
        stream,
        hideCursor: true,
        clearOnComplete: true,
        barsize: 30,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(Math.max(1, total), 0, { extra: '' });
    let stopped = false;
    return {
      update(done, extra) {
        if (stopped) return;
        bar.update(Math.min(done, Math.max(1, total)), {
          extra: extra
            ? Object.entries(extra)
                .map(([k, v]) => `${k}=${v}`)
                .join(' ')
            : '',
        });
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  };
}
