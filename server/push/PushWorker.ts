/**
 * The delivery loop of one node. It claims due rows from the store in batches (each under a lease, so
 * rows of a node that dies come due again for any node), sends them through the PushSender (bounded
 * concurrency, pooled connections) and records the results in group commits. It also starts scheduled
 * publishes when they come due and prunes old ones.
 *
 * Results follow push.md §2.5: `sent` done; `gone` (404/410) deletes the device; `rejected` (400/401/403/
 * 413) fails without retry; `retry` (429, 5xx, network) comes back after the backoff or `Retry-After` while
 * the TTL lasts, then expires. Delivery is at-least-once: a send whose result was not recorded before a
 * crash is sent again after the lease.
 */
import type { Logger } from 'pino';
import { HeraldError } from '../errors';
import type { PushOutcome, PushSender } from './PushSender';
import type { ClaimedDelivery, DeliveryResult, PublishRecord, PushStore } from './PushStore';
import type { VapidKeyring } from './VapidKeyring';

/** How one delivery attempt ended, for metrics and the console (Metrics' `PushSendOutcome`). */
export type AttemptOutcome = 'sent' | 'gone' | 'rejected' | 'retry' | 'expired' | 'error';

export interface PushWorkerOptions {
  store: PushStore;
  sender: PushSender;
  keyring: VapidKeyring;
  /** Apps with push on. */
  appIds: readonly string[];
  /** The devices of a scheduled publish, looked up when it comes due. */
  audience(appId: string, publish: PublishRecord): Promise<string[]>;
  log: Logger;
  /** Sends in flight (the PushSender's cap); the worker keeps up to twice this many claimed. */
  concurrency: number;
  /** Attempts per delivery before it fails. */
  maxAttempts: number;
  /** How long a claim lasts; longer than the sender's request deadline. Default 60 s. */
  leaseMs?: number;
  /** Longest sleep when nothing is due (other nodes' publishes are found this fast). Default 1 s. */
  pollMs?: number;
  /** How long finished publishes are kept. */
  retentionMs: number;
  /** Devices not registered again for this long are deleted; 0: never. */
  deviceIdleMs: number;
  /** How often finished publishes and idle devices are pruned. Default 10 minutes. */
  pruneEveryMs?: number;
  /** Every attempt's outcome (metrics, console). */
  onAttempt?(appId: string, delivery: ClaimedDelivery, outcome: AttemptOutcome, detail?: string): void;
  now?: () => number;
}

const CLAIM_BATCH = 500;
const SCHEDULED_BATCH = 10;
const PRUNE_EVERY_MS = 10 * 60 * 1000;
const IDLE_DEVICE_BATCH = 500;
const RELOAD_KEYS_EVERY_MS = 60 * 1000;
const ERROR_PAUSE_MS = 1000;
const PUBLISH_CACHE = 1000;
const FLUSH_DELAY_MS = 10;
const FLUSH_BATCH = 256;

export class PushWorker {
  private readonly store: PushStore;
  private readonly sender: PushSender;
  private readonly log: Logger;
  private readonly capacity: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly now: () => number;
  private running = false;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private kicked = false;
  private waitingForRoom = false;
  private readonly tasks = new Set<Promise<void>>();
  /** Claimed and not finished: released on shutdown. */
  private readonly held = new Map<string, { appId: string; row: ClaimedDelivery }>();
  private toRelease: { appId: string; row: ClaimedDelivery }[] = [];
  private results: { appId: string; result: DeliveryResult }[] = [];
  private flushing: Promise<void> | null = null;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly publishes = new Map<string, PublishRecord>();
  private lastPrune = 0;
  private lastKeyReload = 0;

  constructor(private readonly opts: PushWorkerOptions) {
    this.store = opts.store;
    this.sender = opts.sender;
    this.log = opts.log;
    this.capacity = Math.max(1, opts.concurrency * 2);
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.pollMs = opts.pollMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Deliveries claimed and not yet finished. */
  get inFlight(): number {
    return this.held.size;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastPrune = this.now();
    this.lastKeyReload = this.now();
    this.loop = this.run().catch((err: unknown) => this.log.error({ err }, 'push worker stopped on an error'));
  }

  /** New work may be due now (a publish was just stored). */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  /**
   * Stops claiming, lets sends in flight finish until `deadline` (ms), then closes the sender: what is
   * still unsent is released at once (not counted as an attempt) for the next start or another node.
   */
  async stop(deadline: number): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    const waitMs = Math.max(0, deadline - this.now());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.tasks]), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
    this.stopping = true;
    this.sender.close();
    await Promise.allSettled([...this.tasks]);
    await this.flush();
    const release = [...this.toRelease, ...this.held.values()];
    this.toRelease = [];
    const byApp = new Map<string, { publishId: string; deviceId: string }[]>();
    for (const { appId, row } of release) {
      const list = byApp.get(appId) ?? [];
      list.push({ publishId: row.publishId, deviceId: row.deviceId });
      byApp.set(appId, list);
    }
    for (const [appId, rows] of byApp) {
      await this.store.releaseDeliveries(appId, rows, this.now()).catch((err: unknown) => this.log.warn({ err, app: appId }, 'could not release push deliveries; they come due when their lease ends'));
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.kicked = false;
      let claimed = 0;
      try {
        for (const appId of this.opts.appIds) {
          if (!this.running) break;
          await this.startScheduled(appId);
          const room = this.capacity - this.held.size;
          if (room <= 0) break;
          const now = this.now();
          const rows = await this.store.claimDeliveries(appId, now, Math.min(room, CLAIM_BATCH), now + this.leaseMs);
          claimed += rows.length;
          for (const row of rows) this.begin(appId, row);
        }
        await this.housekeeping();
      } catch (err) {
        this.log.error({ err }, 'push worker: claiming deliveries failed; retrying');
        await this.sleep(ERROR_PAUSE_MS);
        continue;
      }
      if (!this.running) break;
      if (this.held.size > this.capacity / 2) {
        // Refill in batches: wait until half the claims are done rather than claiming per finished send.
        this.waitingForRoom = true;
        await this.sleep(this.pollMs);
        this.waitingForRoom = false;
      } else if (claimed === 0 && !this.kicked) await this.sleep(await this.idleMs());
    }
  }

  /** Sleeps until `ms` pass, a kick, or (when full) a finished delivery. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  private async idleMs(): Promise<number> {
    let next = Infinity;
    for (const appId of this.opts.appIds) {
      const t = await this.store.nextDueAt(appId);
      if (t !== null) next = Math.min(next, t);
    }
    return Math.max(5, Math.min(this.pollMs, next - this.now()));
  }

  private async housekeeping(): Promise<void> {
    const now = this.now();
    if (now - this.lastKeyReload > RELOAD_KEYS_EVERY_MS) {
      this.lastKeyReload = now;
      for (const appId of this.opts.appIds) await this.opts.keyring.reload(appId);
    }
    if (now - this.lastPrune > (this.opts.pruneEveryMs ?? PRUNE_EVERY_MS)) {
      this.lastPrune = now;
      for (const appId of this.opts.appIds) {
        await this.store.prune(appId, now - this.opts.retentionMs);
        if (this.opts.deviceIdleMs > 0) await this.pruneIdleDevices(appId, now - this.opts.deviceIdleMs);
      }
    }
  }

  /** In batches, so that a first prune of a large, old store does not hold the store for long. */
  private async pruneIdleDevices(appId: string, before: number): Promise<void> {
    let deleted = 0;
    for (;;) {
      const ids = await this.store.pruneIdleDevices(appId, before, IDLE_DEVICE_BATCH);
      deleted += ids.length;
      if (ids.length < IDLE_DEVICE_BATCH) break;
    }
    if (deleted > 0) this.log.info({ app: appId, devices: deleted, idleSince: new Date(before).toISOString() }, 'push: deleted devices not registered again since');
  }

  private async startScheduled(appId: string): Promise<void> {
    const now = this.now();
    const due = await this.store.claimScheduled(appId, now, SCHEDULED_BATCH, now + this.leaseMs);
    for (const publish of due) {
      const devices = await this.opts.audience(appId, publish);
      await this.store.expandPublish(appId, publish.id, devices, this.now());
      this.log.debug({ app: appId, publish: publish.id, devices: devices.length }, 'scheduled push publish started');
    }
  }

  private begin(appId: string, row: ClaimedDelivery): void {
    const key = `${appId}\n${row.publishId}\n${row.deviceId}`;
    this.held.set(key, { appId, row });
    const task = this.deliver(appId, row)
      .then((result) => {
        if (result === 'release') this.toRelease.push({ appId, row });
        else this.record(appId, result);
      })
      .catch((err: unknown) => {
        // Unexpected (store read failed…): leave the row leased; it comes due again when the lease ends.
        this.log.error({ err, app: appId, publish: row.publishId, device: row.deviceId }, 'push delivery failed unexpectedly');
      })
      .finally(() => {
        this.held.delete(key);
        this.tasks.delete(task);
        // Room for a batch: a loop waiting because it was full claims again.
        if (this.waitingForRoom && this.held.size <= this.capacity / 2) this.wake?.();
      });
    this.tasks.add(task);
  }

  private async publishRecord(appId: string, publishId: string): Promise<PublishRecord | null> {
    const key = `${appId}\n${publishId}`;
    const hit = this.publishes.get(key);
    if (hit) return hit;
    const p = await this.store.publish(appId, publishId);
    if (!p) return null;
    if (this.publishes.size >= PUBLISH_CACHE) this.publishes.delete(this.publishes.keys().next().value as string);
    this.publishes.set(key, p);
    return p;
  }

  private async deliver(appId: string, row: ClaimedDelivery): Promise<DeliveryResult | 'release'> {
    const base = { publishId: row.publishId, deviceId: row.deviceId };
    const report = (outcome: AttemptOutcome, detail?: string) => this.opts.onAttempt?.(appId, row, outcome, detail);
    const publish = await this.publishRecord(appId, row.publishId);
    if (!publish) {
      report('error', 'publish not found');
      return { ...base, outcome: 'failed' };
    }
    if (!row.device) {
      report('error', 'device was deleted');
      return { ...base, outcome: 'failed' };
    }
    const now = this.now();
    // A TTL of 0 means "now or never": it still gets its one attempt however late the claim.
    if (now >= publish.expiresAt && !(publish.ttl === 0 && row.attempts === 0)) {
      report('expired');
      return { ...base, outcome: 'expired' };
    }
    const vapidKey = await this.opts.keyring.byId(appId, row.device.keyId);
    if (!vapidKey) {
      report('error', `unknown VAPID key ${row.device.keyId}`);
      return { ...base, outcome: 'failed' };
    }
    const ttl = publish.ttl === 0 ? 0 : Math.max(1, Math.ceil((publish.expiresAt - now) / 1000));
    let outcome: PushOutcome;
    try {
      outcome = await this.sender.send(
        { endpoint: row.device.endpoint, keys: { p256dh: row.device.p256dh, auth: row.device.auth } },
        publish.payload,
        { ttl, vapidKey, urgency: publish.urgency, topic: publish.topic, attempt: row.attempts },
      );
    } catch (err) {
      // Input no retry can fix (an endpoint refused by the SSRF guard after a config change, bad keys).
      if (err instanceof HeraldError) {
        report('rejected', err.message);
        return { ...base, outcome: 'failed' };
      }
      throw err;
    }
    if (outcome.kind === 'retry' && this.stopping) return 'release';
    switch (outcome.kind) {
      case 'sent':
        report('sent');
        return { ...base, outcome: 'sent' };
      case 'gone':
        report('gone', `push service answered ${outcome.status}: device deleted`);
        return { ...base, outcome: 'gone' };
      case 'rejected':
        report('rejected', `push service answered ${outcome.status}${outcome.reason ? `: ${outcome.reason}` : ''}`);
        return { ...base, outcome: 'failed' };
      case 'retry': {
        const nextAt = this.now() + outcome.afterMs;
        const detail = outcome.status !== undefined ? `push service answered ${outcome.status}` : outcome.error;
        if (row.attempts + 1 >= this.opts.maxAttempts) {
          report('rejected', `gave up after ${row.attempts + 1} attempts (${detail ?? 'retry'})`);
          return { ...base, outcome: 'failed' };
        }
        if (nextAt >= publish.expiresAt) {
          report('expired', `TTL ends before the next attempt (${detail ?? 'retry'})`);
          return { ...base, outcome: 'expired' };
        }
        report('retry', detail);
        return { ...base, outcome: 'retry', nextAt };
      }
    }
  }

  /**
   * Group commit: results are written together, one transaction per app, at most `FLUSH_DELAY_MS` after
   * the first (or at once past `FLUSH_BATCH`). A crash loses at most that window's results, which are then
   * sent again (at-least-once); committing per send would cost a WAL write per push.
   */
  private record(appId: string, result: DeliveryResult): void {
    this.results.push({ appId, result });
    if (this.flushing) return;
    if (this.results.length >= FLUSH_BATCH) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
      this.flushing = this.flushLoop();
    } else {
      this.flushTimer ??= setTimeout(() => {
        this.flushTimer = undefined;
        this.flushing ??= this.flushLoop();
      }, FLUSH_DELAY_MS);
    }
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.results.length > 0) {
        const batch = this.results;
        this.results = [];
        const byApp = new Map<string, DeliveryResult[]>();
        for (const { appId, result } of batch) {
          const list = byApp.get(appId) ?? [];
          list.push(result);
          byApp.set(appId, list);
        }
        for (const [appId, results] of byApp) {
          try {
            await this.store.finishDeliveries(appId, results, this.now());
            // A retry may be due before the idle loop's next look: let it recompute its sleep.
            if (results.some((r) => r.outcome === 'retry')) this.kick();
          } catch (err) {
            // Not recorded: the rows stay leased and are sent again when the lease ends (at-least-once).
            this.log.error({ err, app: appId, results: results.length }, 'could not record push results; they will be retried');
          }
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  private async flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    while (this.flushing || this.results.length > 0) await (this.flushing ??= this.flushLoop());
  }
}
