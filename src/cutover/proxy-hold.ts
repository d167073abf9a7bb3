/**
 * One hold over every live write proxy: it is in effect only once each of them granted it, and it ends on all of
 * them together. A hold a stopped run left behind on a proxy (this process holds the migration lock, so that run
 * is gone) is released first and asked again, rather than waited out. Each proxy keeps the deadline itself: a
 * release that does not arrive costs the application nothing but the wait.
 */
import { randomUUID } from 'node:crypto';
import type { ProxyFleet } from '../proxy/attach.js';
import {
  type HoldGranted,
  type HoldRecord,
  HoldRefused,
  type ProxyInfo,
  type ReleaseRequest,
} from '../proxy/control.js';
import type { JournalPos } from '../proxy/journal.js';
import type { AuditLog } from '../store/audit.js';

export interface ReleaseSummary {
  heldRequests: number;
  longestWaitMs: number;
  /** how each proxy's hold ended: by this release ('runner'), or by the proxy at its deadline */
  releasedBy: string[];
}

export class FleetHold {
  readonly holdId = randomUUID();
  private readonly granted: Array<{ info: ProxyInfo; g: HoldGranted }> = [];
  private done = false;

  constructor(
    private readonly fleet: ProxyFleet,
    private readonly budgetMs: number,
    private readonly say: { audit: AuditLog; warn: (m: string) => void; info: (m: string) => void },
  ) {}

  /** Ask every proxy to hold; the first refusal's message, or undefined once all of them hold. */
  async take(proxies: readonly ProxyInfo[]): Promise<string | undefined> {
    const results = await Promise.allSettled(
      proxies.map(async (info) => {
        const ctl = this.fleet.control(info);
        const g = await ctl
          .hold({ holdId: this.holdId, budgetMs: this.budgetMs })
          .catch(async (e: unknown) => {
            if (!(e instanceof HoldRefused) || !e.holding || e.holding.holdId === this.holdId) throw e;
            await ctl.release({ holdId: e.holding.holdId });
            this.say.audit.record({
              event: 'orphan-hold-released',
              proxy: info.id,
              holdId: e.holding.holdId,
            });
            this.say.info(
              `released a hold a stopped run left on proxy ${info.id} (${e.holding.queued} request(s) waiting)`,
            );
            return ctl.hold({ holdId: this.holdId, budgetMs: this.budgetMs });
          });
        this.granted.push({ info, g });
      }),
    );
    const refused = results.find((r) => r.status === 'rejected');
    return refused ? `a proxy did not grant the hold (${(refused.reason as Error).message})` : undefined;
  }

  /** The journal's end once every proxy held: every write any of them forwarded before is journaled up to it. */
  get journalEnd(): JournalPos {
    return this.granted.map((x) => x.g.journalEnd).reduce((a, b) => (b.seq > a.seq ? b : a));
  }

  /** The longest any proxy waited for the writes it had forwarded to return before it granted (its own clock). */
  get inflightWaitMs(): number {
    return Math.max(0, ...this.granted.map((x) => x.g.inflightWaitMs));
  }

  holds(id: string): boolean {
    return this.granted.some((g) => g.info.id === id);
  }

  get released(): boolean {
    return this.done;
  }

  /** End the hold on every proxy that granted it; one that does not confirm releases at its own deadline. */
  async release(how: Omit<ReleaseRequest, 'holdId'> = {}): Promise<ReleaseSummary> {
    this.done = true;
    const records = await Promise.all(
      this.granted.map(({ info }) =>
        this.fleet
          .control(info)
          .release({ holdId: this.holdId, ...how })
          .catch((e: Error): HoldRecord | undefined => {
            this.say.warn(
              `proxy ${info.id} did not confirm the release (${e.message}); it releases by itself at its deadline`,
            );
            return undefined;
          }),
      ),
    );
    const out: ReleaseSummary = { heldRequests: 0, longestWaitMs: 0, releasedBy: [] };
    for (const r of records) {
      if (!r) continue;
      out.heldRequests += r.heldRequests;
      out.longestWaitMs = Math.max(out.longestWaitMs, r.longestWaitMs);
      out.releasedBy.push(r.releasedBy);
    }
    return out;
  }
}
