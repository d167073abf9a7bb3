/**
 * Progress for people and for machines: on a TTY a bar with docs/s, MB/s and ETA; off a TTY, JSON lines (pino)
 * at most once a second, so log collectors get the same figures.
 */
import cliProgress from 'cli-progress';
import pino from 'pino';
import type { SliceProgress } from '../copy/slice-copier.js';
import type { Reporter } from './reporter.js';

export class Meter {
  total = 0;
  done = 0;
  bytes = 0;
  private readonly started = Date.now();
  private startDone = 0;

  start(total: number, alreadyDone: number): void {
    this.total = total;
    this.done = alreadyDone;
    this.startDone = alreadyDone;
  }

  add(docs: number, bytes: number): void {
    this.done += docs;
    this.bytes += bytes;
  }

  get seconds(): number {
    return Math.max(0.001, (Date.now() - this.started) / 1000);
  }
  get docsPerSecond(): number {
    return (this.done - this.startDone) / this.seconds;
  }
  get mbPerSecond(): number {
    return this.bytes / 1048576 / this.seconds;
  }
  get etaSeconds(): number | null {
    const rate = this.docsPerSecond;
    return rate > 0 ? Math.max(0, (this.total - this.done) / rate) : null;
  }
}

export function createReporter(opts: {
  tty: boolean;
  stream?: NodeJS.WritableStream;
  quiet?: boolean;
}): Reporter & { meter: Meter } {
  const stream = opts.stream ?? process.stderr;
  const meter = new Meter();
  if (!opts.tty) {
    const log = pino(
      { base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
      pino.destination({ dest: 2, sync: true }),
    );
    let lastEmit = 0;
    const emit = (force: boolean) => {
      const now = Date.now();
      if (!force && now - lastEmit < 1000) return;
      lastEmit = now;
      log.info(
        {
          event: 'progress',
          docs: meter.done,
          total: meter.total,
          docsPerSecond: Math.round(meter.docsPerSecond),
          mbPerSecond: Number(meter.mbPerSecond.toFixed(2)),
          etaSeconds: meter.etaSeconds === null ? null : Math.round(meter.etaSeconds),
        },
        'copy progress',
      );
    };
    return {
      meter,
      step: (name, title) => log.info({ event: 'step', step: name }, title),
      info: (m, f) => log.info({ event: 'info', ...f }, m),
      warn: (m, f) => log.warn({ event: 'warning', ...f }, m),
      copyStarted: (total, done) => {
        meter.start(total, done);
        emit(true);
      },
      copyProgress: (p: SliceProgress) => {
        meter.add(p.docs, p.bytes);
        emit(false);
      },
      copyFinished: () => emit(true),
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  const line = (s: string) => {
    if (bar) bar.stop();
    stream.write(`${s}\n`);
    bar = undefined;
  };
  return {
    meter,
    step: (_name, title) => line(`» ${title}`),
    info: (m) => line(`  ${m}`),
    warn: (m) => line(`  ! ${m}`),
    copyStarted: (total, done) => {
      meter.start(total, done);
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: '  {bar} {percentage}% | {value}/{total} docs | {dps} docs/s | {mbs} MB/s | ETA {etaText}',
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(total, 1), done, { dps: 0, mbs: '0.0', etaText: '-' });
    },
    copyProgress: (p) => {
      meter.add(p.docs, p.bytes);
      const eta = meter.etaSeconds;
      bar?.update(Math.min(meter.done, meter.total), {
        dps: Math.round(meter.docsPerSecond),
        mbs: meter.mbPerSecond.toFixed(1),
        etaText: eta === null ? '-' : `${Math.round(eta)}s`,
      });
    },
    copyFinished: () => {
      bar?.update(Math.min(meter.done, meter.total));
      bar?.stop();
      bar = undefined;
    },
  };
}
