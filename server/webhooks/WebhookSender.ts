/**
 * Delivers webhook events to each app's targets, off the socket path.
 *
 * Guarantees:
 * - An event goes to every target whose `events` and channel filters match it, and only there: a body
 *   holds only its target's events (soketi posts the unfiltered payload; protocol.md §4).
 * - At least once: a request that times out, cannot connect or gets a non-2xx answer is retried with the
 *   same body after 1 s, 2 s, 4 s … up to 60 s (±20 % jitter) until 5 minutes after the event was created,
 *   then dropped with a warning and counted in `expired`. A receiver that answers after the timeout may
 *   see a request twice.
 * - Order per channel and target: a channel has at most one request in flight per target, and a failed
 *   request is retried before anything later of its channel. Channels of a target are sent in parallel
 *   (`concurrency`, one request at a time for batch targets). A failure pauses the whole target for the
 *   backoff: failures are nearly always the receiver's, not one event's.
 * - Bounded: at most `maxQueue` events wait per app (counted once per target). Beyond that new events are
 *   dropped, counted in `dropped` and logged (at most every 10 s per app); `enqueue` never blocks.
 * - Journaled (with a {@link WebhookJournal}): each queued event is written to the node's journal and
 *   removed once its outcome is final: delivered, or given up (`expired`). Events refused by a full queue
 *   are never written. What is not delivered when the shutdown grace period ends stays in the journal and
 *   is not counted; `start()` queues it again at the next start, in its order and with its creation time.
 *   A crash between a 2xx and the write of the removal sends the event again: at least once. Without a
 *   journal, what is still queued at the end of the grace period is lost (`expired`).
 * - Reported: each request's outcome (delivered, failed and whether it is retried) and each drop go to
 *   `WebhookReporting.report` as one line, for the debug console: one call per request, never per event.
 */
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AppOptions, WebhookEventType, WebhookTarget } from '../options/Options';
import { WebhookAgents, postWebhook } from './post-webhook';
import { webhookTargetKey, type JournaledWebhook, type WebhookJournal } from './WebhookJournal';
import { buildWebhookRequest, targetAccepts, type WebhookEvent, type WebhookRequest } from './webhook-request';

/** Tuning of {@link WebhookSender}; the defaults follow protocol.md §4 (and sockudo's choices). */
export interface WebhookSenderOptions {
  /** Events waiting per app, counted once per target. */
  maxQueue?: number;
  /** Deadline of one request, connect to last response byte. */
  timeoutMs?: number;
  /** How long after its creation an event is still retried. */
  maxAgeMs?: number;
  /** How long a batch target collects events before posting. */
  batchMs?: number;
  /** Events in one batch body. */
  maxBatch?: number;
  /** Requests in flight per non-batch target (each for a different channel). */
  concurrency?: number;
  backoff?: RetryDelayOptions;
  userAgent?: string;
}

/** Options of {@link retryDelayMs}. */
export interface RetryDelayOptions {
  /** Delay after the first failure, before jitter. */
  baseMs?: number;
  /** Upper bound before jitter. */
  maxMs?: number;
  /** Spread: 0.2 gives ±20 %. */
  jitter?: number;
  /** Source of jitter in [0, 1). */
  random?: () => number;
}

/** Counters of one app (or all), for logs and metrics. */
export interface WebhookCounters {
  /** Events accepted into a target's queue. */
  queued: number;
  /** Events delivered (2xx). */
  sent: number;
  /** Requests that failed (timeout, connection error, non-2xx); their events are retried. */
  failed: number;
  /** Events refused because the app's queue was full. */
  dropped: number;
  /**
   * Events given up: not delivered within `maxAgeMs` (also journaled ones found too old at start-up), or,
   * without a journal, still queued when the server stopped.
   */
  expired: number;
  /** Events waiting or in flight now. */
  depth: number;
  /** Events in requests awaiting their answer now (part of `depth`). */
  inFlight: number;
}

/** Counters summed over all apps, and per app id. */
export interface WebhookStats {
  total: WebhookCounters;
  apps: Record<string, WebhookCounters>;
}

/**
 * Where webhooks report besides logs and counters: the debug console's live log. One call per request
 * outcome (delivered, failed) and per drop, with the request's channels; never one per event.
 */
export interface WebhookReporting {
  report?(appId: string, detail: string, channel?: string): void;
}

/** Reads the counters (metrics and the console, from the webhook observer or the sender itself). */
export interface WebhookStatsSource {
  stats(): WebhookStats;
}

/** Backoff before retry number `failures` (1-based): base·2^(n-1), capped, with jitter. */
export function retryDelayMs(failures: number, opts: RetryDelayOptions = {}): number {
  const base = opts.baseMs ?? 1000;
  const max = opts.maxMs ?? 60_000;
  const jitter = opts.jitter ?? 0.2;
  const random = opts.random ?? Math.random;
  const raw = Math.min(max, base * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
  return Math.max(0, Math.round(raw * (1 - jitter + 2 * jitter * random())));
}

/** One event queued for one target. */
interface Entry {
  event: WebhookEvent;
  createdAt: number;
  /** Its row in the journal (0: not journaled). */
  journalId: number;
}

interface Delivery {
  entries: Entry[];
  channels: string[];
  request: WebhookRequest;
  bytes: Buffer;
  attempts: number;
}

type Settings = Required<Omit<WebhookSenderOptions, 'backoff'>> & { backoff: RetryDelayOptions };

/** What became of a journaled event at start-up. */
type RestoreOutcome = 'restored' | 'tooOld' | 'noTarget' | 'full';

const DROP_LOG_EVERY_MS = 10_000;

function heraldVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    const file = join(__dirname, rel);
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'herald' && pkg.version) return pkg.version;
  }
  return 'dev';
}

/** `https://host/path` without credentials or query, for logs. */
function redact(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ? `${e.code}: ${e.message ?? ''}` : (e.message ?? String(err));
}

/** `1 event`, `3 events`: for console lines. */
function eventCount(n: number): string {
  return n === 1 ? '1 event' : `${n} events`;
}

/** All counters at zero: an app before its first event. */
export function emptyWebhookCounters(): WebhookCounters {
  return { queued: 0, sent: 0, failed: 0, dropped: 0, expired: 0, depth: 0, inFlight: 0 };
}

/** Queues and delivers webhook events; one {@link AppQueue} per app, made on its first event. */
export class WebhookSender {
  private readonly settings: Settings;
  private readonly queues = new Map<string, AppQueue>();
  private readonly agents = new WebhookAgents();
  private depth = 0;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;
  /** The journal once `start()` opened it; until then (and without one) nothing is journaled. */
  private opened: WebhookJournal | null = null;

  constructor(
    private readonly log: Logger,
    options: WebhookSenderOptions = {},
    private readonly reporting: WebhookReporting = {},
    private readonly journal: WebhookJournal | null = null,
  ) {
    this.settings = {
      maxQueue: options.maxQueue ?? 10_000,
      timeoutMs: options.timeoutMs ?? 10_000,
      maxAgeMs: options.maxAgeMs ?? 300_000,
      batchMs: options.batchMs ?? 50,
      maxBatch: options.maxBatch ?? 100,
      concurrency: options.concurrency ?? 10,
      backoff: options.backoff ?? {},
      userAgent: options.userAgent ?? `Herald-Webhooks/${heraldVersion()}`,
    };
  }

  /**
   * Opens the journal and queues again what an earlier run of this node left in it, per channel in its
   * original order and with its original creation time, so `maxAgeMs` still applies: older events are
   * dropped (counted in `expired`), and so are those of an app or target no longer configured. Call once,
   * before the first `enqueue`, so these events go before any new one of their channel.
   */
  async start(appById: (id: string) => AppOptions | undefined): Promise<void> {
    if (!this.journal || this.opened || this.stopped) return;
    const rows = await this.journal.open();
    this.opened = this.journal;
    const outcome = new Map<string, Record<RestoreOutcome, number>>();
    for (const row of rows) {
      let o = outcome.get(row.appId);
      if (!o) outcome.set(row.appId, (o = { restored: 0, tooOld: 0, noTarget: 0, full: 0 }));
      const app = appById(row.appId);
      const result = app && app.webhooks.length > 0 ? this.queueOf(app).restore(row) : 'noTarget';
      o[result]++;
      if (result !== 'restored') this.opened.remove(row.id);
    }
    for (const [app, o] of outcome) {
      if (o.restored > 0) this.log.info({ app, events: o.restored }, 'webhook events restored from the journal; sending them again');
      if (o.tooOld > 0) this.log.warn({ app, events: o.tooOld, maxAgeMs: this.settings.maxAgeMs }, 'journaled webhook events too old to send were dropped');
      if (o.noTarget > 0) this.log.warn({ app, events: o.noTarget }, 'journaled webhook events for an app or target no longer configured were dropped');
      if (o.full > 0) this.log.warn({ app, events: o.full, maxQueue: this.settings.maxQueue }, 'journaled webhook events beyond maxQueue were dropped');
    }
  }

  /** @internal the open journal, if any. */
  get openJournal(): WebhookJournal | null {
    return this.opened;
  }

  /** True when some target of the app takes events of this type on this channel. */
  wants(app: AppOptions, name: WebhookEventType, channel: string): boolean {
    if (app.webhooks.length === 0) return false;
    return this.queueOf(app).targets.some((t) => targetAccepts(t.target, name, channel));
  }

  /**
   * Queues an event for every matching target; never blocks, drops (and counts) when the queue is full.
   * False when the sender has stopped (or the app has no targets): nothing was queued or counted.
   */
  enqueue(app: AppOptions, event: WebhookEvent): boolean {
    if (this.stopped || app.webhooks.length === 0) return false;
    this.queueOf(app).enqueue(event);
    return true;
  }

  /** A copy of the counters; cheap enough to call on every metrics scrape. */
  stats(): WebhookStats {
    const total = emptyWebhookCounters();
    const apps: Record<string, WebhookCounters> = {};
    for (const [id, q] of this.queues) {
      apps[id] = { ...q.counters };
      for (const k of Object.keys(total) as (keyof WebhookCounters)[]) total[k] += q.counters[k];
    }
    return { total, apps };
  }

  /** Resolves once nothing is queued or in flight (at once when that is already so). */
  idle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Sends what is queued (batch windows closed at once) until everything is delivered or `deadline`
   * (epoch ms) passes, then aborts what is left: it stays in the journal for the next start, or without
   * one is counted as expired. Closes the journal last, with the removals of what was delivered.
   */
  async stop(deadline: number): Promise<void> {
    if (this.stopped) return;
    for (const q of this.queues.values()) for (const t of q.targets) t.drain();
    if (this.depth > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.idle(),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
    }
    this.stopped = true;
    for (const q of this.queues.values()) {
      const [expired, kept] = [q.counters.expired, q.kept];
      await Promise.allSettled(q.targets.flatMap((t) => t.abort()));
      const lost = q.counters.expired - expired;
      if (lost > 0) {
        this.log.warn({ app: q.appId, events: lost }, 'webhook events not delivered before shutdown were dropped');
        q.report(`webhooks dropped ${eventCount(lost)}: not delivered before shutdown`);
      }
      const journaled = q.kept - kept;
      if (journaled > 0) {
        this.log.warn({ app: q.appId, events: journaled }, 'webhook events not delivered before shutdown stay in the journal; they will be resent at the next start');
        q.report(`webhooks kept ${eventCount(journaled)} in the journal: not delivered before shutdown, resent at the next start`);
      }
    }
    this.agents.destroy();
    await this.opened?.close();
  }

  /** @internal called by the queues whenever events leave them. */
  released(n: number): void {
    this.depth -= n;
    if (this.depth === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** @internal */
  admitted(): void {
    this.depth++;
  }

  private queueOf(app: AppOptions): AppQueue {
    let q = this.queues.get(app.id);
    if (!q) {
      q = new AppQueue(app, this, this.settings, this.agents, this.log, this.reporting);
      this.queues.set(app.id, q);
    }
    return q;
  }
}

/** The bounded queue of one app: its targets share the `maxQueue` budget and the counters. */
class AppQueue {
  readonly counters = emptyWebhookCounters();
  readonly targets: TargetQueue[] = [];
  readonly appId: string;
  /** Events left in the journal at shutdown (not counted in `counters`: they are not given up). */
  kept = 0;
  private readonly byKey = new Map<string, TargetQueue>();
  private droppedSinceLog = 0;
  private lastDropLog = 0;

  constructor(
    readonly app: AppOptions,
    readonly sender: WebhookSender,
    readonly settings: Settings,
    readonly agents: WebhookAgents,
    readonly log: Logger,
    private readonly reporting: WebhookReporting,
  ) {
    this.appId = app.id;
    for (const target of app.webhooks) {
      let url: URL;
      try {
        url = new URL(target.url);
      } catch (err) {
        log.error({ err, app: app.id, url: target.url }, 'webhook target has an invalid url; it is skipped');
        continue;
      }
      // Two targets alike in url and filters get distinct keys, in config order.
      let key = webhookTargetKey(target);
      for (let n = 2; this.byKey.has(key); n++) key = `${webhookTargetKey(target)}/${n}`;
      const t = new TargetQueue(this, target, key, url, this.validHeaders(target, url));
      this.targets.push(t);
      this.byKey.set(key, t);
    }
  }

  enqueue(event: WebhookEvent): void {
    const journal = this.sender.openJournal;
    let createdAt = 0;
    for (const t of this.targets) {
      if (!targetAccepts(t.target, event.name, event.channel)) continue;
      if (this.counters.depth >= this.settings.maxQueue) {
        this.drop(t);
        continue;
      }
      createdAt ||= Date.now();
      // Journaled before `push` schedules the first request: the write goes first (see WebhookJournal).
      this.admit(t, { event, createdAt, journalId: journal?.append(this.appId, t.key, event, createdAt) ?? 0 });
    }
  }

  /** Queues a journaled event again for its target, unless it is too old, the target is gone or the queue is full. */
  restore(row: JournaledWebhook): RestoreOutcome {
    const t = this.byKey.get(row.target);
    if (!t) return 'noTarget';
    if (Date.now() - row.createdAt >= this.settings.maxAgeMs) {
      this.counters.expired++;
      return 'tooOld';
    }
    if (this.counters.depth >= this.settings.maxQueue) {
      this.counters.dropped++;
      return 'full';
    }
    this.admit(t, { event: row.event, createdAt: row.createdAt, journalId: row.id });
    return 'restored';
  }

  /** Forgets the entries' journal rows: their outcome is final. */
  unjournal(entries: readonly Entry[]): void {
    const journal = this.sender.openJournal;
    if (!journal) return;
    for (const e of entries) if (e.journalId > 0) journal.remove(e.journalId);
  }

  /** One line in the debug console's log (the console ignores it unless someone watches the app). */
  report(detail: string, channels?: readonly string[]): void {
    this.reporting.report?.(this.appId, detail, channels?.join(', '));
  }

  /** `n` events left the queue: delivered, expired or abandoned (already counted by the caller). */
  release(n: number): void {
    this.counters.depth -= n;
    this.sender.released(n);
  }

  private admit(t: TargetQueue, entry: Entry): void {
    this.counters.queued++;
    this.counters.depth++;
    this.sender.admitted();
    t.push(entry);
  }

  private drop(t: TargetQueue): void {
    this.counters.dropped++;
    this.droppedSinceLog++;
    const now = Date.now();
    if (now - this.lastDropLog < DROP_LOG_EVERY_MS) return;
    this.log.warn(
      { app: this.appId, url: t.label, dropped: this.droppedSinceLog, maxQueue: this.settings.maxQueue },
      'webhook queue full: events dropped',
    );
    this.report(`webhooks dropped ${eventCount(this.droppedSinceLog)}: queue full (${this.settings.maxQueue} waiting)`);
    this.lastDropLog = now;
    this.droppedSinceLog = 0;
  }

  /** A target's extra headers, minus those Node would refuse to send (logged once here, not per request). */
  private validHeaders(target: WebhookTarget, url: URL): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(target.headers ?? {})) {
      try {
        http.validateHeaderName(name);
        http.validateHeaderValue(name, value);
        out[name] = value;
      } catch (err) {
        this.log.error({ err, app: this.appId, url: redact(url), header: name }, 'webhook header is invalid; it is not sent');
      }
    }
    return out;
  }
}

/**
 * The queue of one target. Events wait in one FIFO lane per channel; `ready` lists the lanes that have
 * events and no request in flight, oldest first, so channels take turns.
 */
class TargetQueue {
  readonly label: string;
  private readonly lanes = new Map<string, Entry[]>();
  private readonly ready = new Set<string>();
  private readonly busy = new Set<string>();
  /** Failed deliveries waiting for the backoff to end, oldest first; they go before any new request. */
  private readonly retries: Delivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abortController = new AbortController();
  private waiting = 0;
  /** When the oldest event of the current batch window arrived (0: no window open). */
  private windowStart = 0;
  private pausedUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private draining = false;
  private stopped = false;
  private pumpSoon = false;

  constructor(
    private readonly owner: AppQueue,
    readonly target: WebhookTarget,
    /** Names the target in the journal (see `webhookTargetKey`). */
    readonly key: string,
    private readonly url: URL,
    private readonly headers: Record<string, string>,
  ) {
    this.label = redact(url);
  }

  private get settings(): Settings {
    return this.owner.settings;
  }

  /** Why events too old to send are given up, for logs and the console. */
  private get tooOld(): string {
    const ms = this.settings.maxAgeMs;
    return `not delivered within ${ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`}`;
  }

  private get concurrency(): number {
    return this.target.batch ? 1 : Math.max(1, this.settings.concurrency);
  }

  push(entry: Entry): void {
    const channel = entry.event.channel;
    let lane = this.lanes.get(channel);
    if (!lane) {
      lane = [];
      this.lanes.set(channel, lane);
    }
    lane.push(entry);
    this.waiting++;
    if (!this.busy.has(channel)) this.ready.add(channel);
    if (this.windowStart === 0) this.windowStart = Date.now();
    // Bodies are built, signed and posted on a later turn, not inside the gateway's observer call.
    if (!this.pumpSoon) {
      this.pumpSoon = true;
      setImmediate(() => {
        this.pumpSoon = false;
        this.pump();
      });
    }
  }

  /** Closes batch windows at once: the server is stopping. */
  drain(): void {
    this.draining = true;
    this.pump();
  }

  /** Stops for good: aborts requests in flight and abandons everything still queued (see `abandon`). */
  abort(): Promise<void>[] {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const left = [...this.lanes.values(), ...this.retries.map((d) => d.entries)].flat();
    this.lanes.clear();
    this.ready.clear();
    this.retries.length = 0;
    this.waiting = 0;
    this.abandon(left);
    this.abortController.abort();
    return [...this.inFlight];
  }

  private pump(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now < this.pausedUntil) return this.wakeAt(this.pausedUntil);
    while (this.inFlight.size < this.concurrency) {
      const d = this.nextRetry(now) ?? this.nextNew(now);
      if (!d) return;
      this.dispatch(d);
    }
  }

  private wakeAt(at: number): void {
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  private nextRetry(now: number): Delivery | null {
    for (let d = this.retries.shift(); d; d = this.retries.shift()) {
      const events = d.entries.length;
      const channels = d.channels;
      const left = this.prune(d, now);
      if (left < events) this.owner.report(`webhook to ${this.label} dropped ${eventCount(events - left)} awaiting retry: ${this.tooOld}`, channels);
      if (left > 0) return d;
    }
    return null;
  }

  private nextNew(now: number): Delivery | null {
    if (this.waiting === 0 || this.ready.size === 0) return null;
    const { batchMs, maxBatch, maxAgeMs } = this.settings;
    if (this.target.batch && !this.draining && this.waiting < maxBatch && now < this.windowStart + batchMs) {
      this.wakeAt(this.windowStart + batchMs);
      return null;
    }
    const limit = this.target.batch ? maxBatch : 1;
    const entries: Entry[] = [];
    const channels: string[] = [];
    const expired: Entry[] = [];
    for (const channel of this.ready) {
      if (entries.length >= limit) break;
      const lane = this.lanes.get(channel) ?? [];
      let took = false;
      while (lane.length > 0 && entries.length < limit) {
        const e = lane.shift() as Entry;
        this.waiting--;
        if (now - e.createdAt >= maxAgeMs) {
          expired.push(e);
          continue;
        }
        entries.push(e);
        took = true;
      }
      // Deleting the current element of a Set during iteration is safe; it is never re-added here.
      this.ready.delete(channel);
      if (lane.length === 0) this.lanes.delete(channel);
      if (took) {
        this.busy.add(channel);
        channels.push(channel);
      }
    }
    // Events left over have waited at least one request already: the next batch goes out at once.
    this.windowStart = this.waiting === 0 ? 0 : 1;
    if (expired.length > 0) {
      this.giveUp(expired);
      this.owner.log.warn({ app: this.owner.appId, url: this.label, events: expired.length }, 'webhook events expired in the queue');
      this.owner.report(`webhook to ${this.label} dropped ${eventCount(expired.length)} still queued: ${this.tooOld}`);
    }
    if (entries.length === 0) return this.nextNew(now);
    return { entries, channels, attempts: 0, ...this.build(entries) };
  }

  private build(entries: Entry[]): { request: WebhookRequest; bytes: Buffer } {
    const app = this.owner.app;
    const request = buildWebhookRequest({
      key: app.key,
      secret: app.secret,
      events: entries.map((e) => e.event),
      timeMs: Date.now(),
      userAgent: this.settings.userAgent,
      extraHeaders: this.headers,
    });
    // Signed and sent as the same bytes.
    return { request, bytes: Buffer.from(request.body, 'utf8') };
  }

  private dispatch(d: Delivery): void {
    const p: Promise<void> = this.attempt(d).finally(() => {
      this.inFlight.delete(p);
      this.pump();
    });
    this.inFlight.add(p);
  }

  /** One request of a delivery; the outcome (never an exception) decides what happens next. */
  private async attempt(d: Delivery): Promise<void> {
    d.attempts++;
    let status = 0;
    let error: string | null = null;
    // Counted before the outcome is handled: `prune` may shrink `d.entries` after a failure.
    const events = d.entries.length;
    this.owner.counters.inFlight += events;
    try {
      status = await postWebhook(this.url, d.bytes, d.request.headers, this.owner.agents, this.settings.timeoutMs, this.abortController.signal);
    } catch (err) {
      error = describeError(err);
    } finally {
      this.owner.counters.inFlight -= events;
    }
    if (error === null && status >= 200 && status < 300) return this.succeeded(d, status);
    this.failedAttempt(d, status, error);
  }

  private succeeded(d: Delivery, status: number): void {
    const n = d.entries.length;
    this.owner.report(`webhook to ${this.label} delivered: answered ${status}, ${eventCount(n)}${d.attempts > 1 ? `, attempt ${d.attempts}` : ''}`, d.channels);
    this.owner.counters.sent += n;
    this.owner.unjournal(d.entries);
    this.release(d);
    this.owner.release(n);
  }

  /**
   * Schedules the retry. The backoff follows the delivery's own attempts, so requests that failed
   * together (one outage) wait 1 s, then 2 s… rather than compounding each other's delay.
   */
  private failedAttempt(d: Delivery, status: number, error: string | null): void {
    const events = d.entries.length;
    const channels = d.channels;
    const failed = `webhook to ${this.label} failed: ${error ?? `answered ${status}`}, ${eventCount(events)}, attempt ${d.attempts}`;
    if (this.stopped) {
      this.abandon(d.entries);
      this.release(d);
      this.owner.report(`${failed}; not retried: server stopping`, channels);
      return;
    }
    this.owner.counters.failed++;
    const delay = retryDelayMs(d.attempts, this.settings.backoff);
    const retryAt = Date.now() + delay;
    this.pausedUntil = Math.max(this.pausedUntil, retryAt);
    const context = { app: this.owner.appId, url: this.label, status: status || undefined, error: error ?? undefined, attempt: d.attempts, events };
    const left = this.prune(d, retryAt, context);
    if (left === 0) return this.owner.report(`${failed}; not retried: ${this.tooOld}`, channels);
    const givenUp = left < events ? `${eventCount(events - left)} given up (${this.tooOld}), ` : '';
    this.owner.report(`${failed}; ${givenUp}retry in ${delay} ms`, channels);
    this.owner.log.warn({ ...context, retryInMs: delay }, 'webhook delivery failed; will retry');
    this.retries.push(d);
  }

  /**
   * Drops the delivery's events that are too old to send at `at`; rebuilds the body when some remain.
   * Returns how many remain (0: the delivery was released).
   */
  private prune(d: Delivery, at: number, lastFailure: Record<string, unknown> = {}): number {
    const tooOld = (e: Entry) => at - e.createdAt >= this.settings.maxAgeMs;
    const keep = d.entries.filter((e) => !tooOld(e));
    if (keep.length === d.entries.length) return keep.length;
    this.giveUp(d.entries.filter(tooOld));
    this.owner.log.warn(
      { app: this.owner.appId, url: this.label, ...lastFailure, attempt: d.attempts, events: d.entries.length - keep.length },
      `webhook given up: ${this.tooOld}`,
    );
    if (keep.length === 0) {
      this.release(d);
      return 0;
    }
    const still = new Set(keep.map((e) => e.event.channel));
    this.release({ ...d, channels: d.channels.filter((c) => !still.has(c)) });
    Object.assign(d, { entries: keep, channels: [...still], ...this.build(keep) });
    return keep.length;
  }

  /** Frees the delivery's channels: their next events may go. */
  private release(d: Delivery): void {
    for (const channel of d.channels) {
      this.busy.delete(channel);
      if (this.lanes.has(channel)) this.ready.add(channel);
    }
  }

  /** The entries are too old to send: counted as expired and removed from the journal. */
  private giveUp(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    this.owner.counters.expired += entries.length;
    this.owner.unjournal(entries);
    this.owner.release(entries.length);
  }

  /**
   * The server stops before the entries were delivered: journaled ones stay in the journal for the next
   * start (counted in `kept`, not as expired); the others are lost and counted as expired.
   */
  private abandon(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const kept = entries.filter((e) => e.journalId > 0).length;
    this.owner.kept += kept;
    this.owner.counters.expired += entries.length - kept;
    this.owner.release(entries.length);
  }
}
