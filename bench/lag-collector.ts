/**
 * Every lag the journal sync records, in order, although journal-sync.json keeps only its last 2000: the file is
 * read often and each read's new tail kept. The new list is lined up with the previous one (the fewest entries
 * dropped from its front that make the rest a prefix of the new list), so nothing is counted twice or skipped as
 * long as fewer than 2000 batches come between two reads.
 */
export class LagCollector {
  readonly all: Array<{ at: number; ms: number }> = [];
  private prev: number[] = [];

  /** The file's `lags` as read at `at` (ms since epoch). */
  feed(lags: number[], at: number): void {
    const prev = this.prev;
    let kept = 0;
    for (let k = 0; k <= prev.length; k++) {
      const overlap = prev.length - k;
      if (overlap > lags.length) continue;
      let j = 0;
      while (j < overlap && lags[j] === prev[k + j]) j++;
      if (j === overlap) {
        kept = overlap;
        break;
      }
    }
    for (const ms of lags.slice(kept)) this.all.push({ at, ms });
    this.prev = lags;
  }
}
