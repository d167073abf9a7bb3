/**
 * Alerts and hooks: every audit record that means something to an operator (alert-events.ts) goes to the
 * configured webhooks (generic JSON, Slack, PagerDuty Events API v2) and to the executable hook of the same name.
 * An alert never stops or slows the migration: a receiver that fails is retried once and reported by number and
 * format, never by URL (a Slack or PagerDuty URL is a credential). The one hook that can change a migration is
 * `before-switch`: when it exits non-zero the switch does not happen.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { type AlertEvent, type AlertKind, alertOf } from './alert-events.js';
import type { Throttle } from './throttle.js';

export interface Webhook {
  url: string;
  format: 'json' | 'slack' | 'pagerduty';
  routingKey?: string;
  events?: AlertKind[];
}

export interface AlertsOptions {
  migration: string;
  webhooks: Webhook[];
  hooksPath?: string;
  /** facts every hook gets in its environment */
  facts: Record<string, string>;
  warn: (message: string) => void;
}

const SEND_TIMEOUT_MS = 5_000;
const HOOK_TIMEOUT_MS = 60_000;

/** The body a webhook of this format gets for the event; undefined: this format does not take it. */
export function payloadFor(w: Webhook, ev: AlertEvent): Record<string, unknown> | undefined {
  if (w.format === 'json') return { ...ev };
  if (w.format === 'slack') {
    const mark = {
      info: ':information_source:',
      warning: ':warning:',
      error: ':x:',
      critical: ':rotating_light:',
    };
    return { text: `${mark[ev.severity]} ${ev.summary}` };
  }
  if (!ev.incident) return undefined;
  const body: Record<string, unknown> = {
    routing_key: w.routingKey,
    event_action: ev.incident.action,
    dedup_key: `cutover/${ev.migration}/${ev.incident.key}`,
  };
  if (ev.incident.action === 'trigger')
    body.payload = {
      summary: ev.summary.slice(0, 1024),
      source: 'cutover',
      severity: ev.severity,
      timestamp: ev.at,
      component: ev.migration,
      group: ev.kind,
      custom_details: ev.details,
    };
  return body;
}

export class Alerts {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly o: AlertsOptions) {}

  get active(): boolean {
    return this.o.webhooks.length > 0 || this.o.hooksPath !== undefined;
  }

  /** An audit record was written: tell whoever wants to know. */
  onAudit(record: { event: string } & Record<string, unknown>): void {
    const ev = alertOf(this.o.migration, record);
    if (!ev) return;
    this.o.webhooks.forEach((w, i) => {
      if (w.events && !w.events.includes(ev.kind)) return;
      const body = payloadFor(w, ev);
      if (body) this.track(this.send(w, i, body));
    });
    if (this.o.hooksPath) this.track(this.hook(`on-${ev.kind}`, ev).then(() => undefined));
  }

  /**
   * The `before-switch` hook, if there is one: undefined when the switch may go on, else why not. A hook that
   * cannot be run vetoes too: the operator asked to be asked.
   */
  async beforeSwitch(facts: Record<string, string> = {}): Promise<string | undefined> {
    if (!this.o.hooksPath) return undefined;
    const r = await this.hook('before-switch', undefined, facts);
    if (r === undefined || r.code === 0) return undefined;
    return `the before-switch hook ${join(this.o.hooksPath, 'before-switch')} ${r.code === null ? `was stopped (${r.signal})` : `exited ${r.code}`}${r.stderr ? `: ${r.stderr}` : ''}`;
  }

  /**
   * Watch the throttle: once the copy has been below its ceiling (or paused) for `minutes`, record `throttled`
   * (which alerts), and `throttle-cleared` when it runs free again. Returns the stop function.
   */
  watchThrottle(
    t: Pick<Throttle, 'view'>,
    minutes: number,
    record: (r: { event: string } & Record<string, unknown>) => void,
  ): () => void {
    let since: number | undefined;
    let alerted = false;
    const check = () => {
      const v = t.view();
      const held = v.paused || (v.ceiling > 0 ? v.rate < v.ceiling : v.rate > 0);
      if (!held) {
        if (alerted) record({ event: 'throttle-cleared' });
        since = undefined;
        alerted = false;
        return;
      }
      since ??= Date.now();
      if (!alerted && Date.now() - since >= minutes * 60_000) {
        alerted = true;
        const reason = v.paused
          ? `paused by ${v.pausedBy.map((p) => `${p.by} (${p.why})`).join(', ')}`
          : v.reason;
        record({
          event: 'throttled',
          minutes: Math.round((Date.now() - since) / 60_000),
          reason,
          rate: v.rate,
        });
      }
    };
    const timer = setInterval(check, Math.min(15_000, Math.max(1_000, (minutes * 60_000) / 4)));
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Wait (at most a few seconds) for alerts still on their way: the last ones of a run are the important ones. */
  async close(): Promise<void> {
    await Promise.race([
      Promise.allSettled([...this.pending]),
      new Promise((r) => setTimeout(r, SEND_TIMEOUT_MS * 2).unref()),
    ]);
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private async send(w: Webhook, i: number, body: Record<string, unknown>): Promise<void> {
    let why = '';
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const r = await request(w.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          headersTimeout: SEND_TIMEOUT_MS,
          bodyTimeout: SEND_TIMEOUT_MS,
        });
        await r.body.dump();
        if (r.statusCode < 300) return;
        why = `HTTP ${r.statusCode}`;
        if (r.statusCode < 500 && r.statusCode !== 429) break;
      } catch (e) {
        why = (e as NodeJS.ErrnoException).code ?? (e as Error).name;
      }
    }
    this.o.warn(`alert to alerts.webhooks[${i}] (${w.format}) was not delivered: ${why}`);
  }

  private hook(
    name: string,
    ev: AlertEvent | undefined,
    extra: Record<string, string> = {},
  ): Promise<{ code: number | null; signal: string | null; stderr: string } | undefined> {
    const file = join(this.o.hooksPath!, name);
    try {
      accessSync(file, constants.X_OK);
    } catch {
      return Promise.resolve(undefined);
    }
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...this.o.facts,
      ...extra,
      CUTOVER_MIGRATION: this.o.migration,
      CUTOVER_EVENT: ev?.kind ?? name,
    };
    if (ev) {
      env.CUTOVER_SUMMARY = ev.summary;
      env.CUTOVER_DETAILS = JSON.stringify(ev.details);
    }
    return new Promise((resolve) => {
      const child = spawn(file, [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString('utf8')).slice(-500);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), HOOK_TIMEOUT_MS);
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ code: -1, signal: null, stderr: e.message });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code !== 0 && name !== 'before-switch')
          this.o.warn(`hook ${name} ${code === null ? `was stopped (${signal})` : `exited ${code}`}`);
        resolve({ code, signal, stderr: stderr.trim() });
      });
    });
  }
}
