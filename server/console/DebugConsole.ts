import type { Logger } from 'pino';
import { channelType } from '../../sdk/protocol';
import type { Gateway } from '../Gateway';
import type { GatewayObserver } from '../GatewayObserver';
import type { AppOptions } from '../options/Options';
import { emptyWebhookCounters, type WebhookCounters, type WebhookStatsSource } from '../webhooks/WebhookSender';
import type { Connection } from '../ws/Connection';

/** What the live log shows. `webhook` and `push` entries come from those modules through `report`. */
export type EntryKind =
  | 'connected'
  | 'disconnected'
  | 'refused'
  | 'subscribed'
  | 'unsubscribed'
  | 'occupied'
  | 'vacated'
  | 'member_added'
  | 'member_removed'
  | 'subscription_count'
  | 'cache_miss'
  | 'client_event'
  | 'api_message'
  | 'error'
  | 'webhook'
  | 'push';

/** One line of the live log, as sent to the browser. */
export interface ConsoleEntry {
  id: number;
  time: number;
  kind: EntryKind;
  channel?: string;
  event?: string;
  socketId?: string;
  detail?: string;
  data?: string;
}

export type EntryFields = Omit<ConsoleEntry, 'id' | 'time' | 'kind'>;

/** The writable side of a server-sent events response (a `ServerResponse` fits). */
export interface EventStream {
  write(chunk: string): boolean;
  end(): void;
  readonly writableLength: number;
}

/** The counts panel: connections and channels cluster-wide, webhooks this node's. */
export interface ConsoleStats {
  connections: number;
  channels: number;
  webhooks: WebhookCounters;
}

/** Sends a test push for the console's form; the push module installs one (`debugConsole.pushTest = …`). */
export type PushTestHook = (app: AppOptions, body: Record<string, unknown>) => Promise<unknown>;

/** Entries kept per app for a console that opens or reconnects. */
const BACKLOG = 200;
/** A stream this far behind is closed (the browser reconnects and gets the backlog) rather than buffered. */
const MAX_BUFFERED_BYTES = 512 * 1024;
/** Event data longer than this is cut in the log. */
const MAX_DATA_CHARS = 2000;
const STATS_EVERY_MS = 2000;

const cut = (s: string) => (s.length > MAX_DATA_CHARS ? `${s.slice(0, MAX_DATA_CHARS)}…` : s);

/**
 * The debug console's side of the gateway: turns gateway events into log entries for the apps someone is
 * watching, and streams them (plus connection and channel counts) to open consoles as server-sent events.
 *
 * Costs nothing while no console is open: every observer method first checks that the app has a stream,
 * before building anything. Memory is bounded: `BACKLOG` entries per app, and slow streams are dropped.
 */
export class DebugConsole implements GatewayObserver {
  /** Installed by the push module; until then the test-push form answers 501. */
  pushTest: PushTestHook | null = null;
  private readonly streams = new Map<string, Set<EventStream>>();
  private readonly backlog = new Map<string, ConsoleEntry[]>();
  private nextId = 1;
  private statsTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly gateway: Gateway,
    private readonly log: Logger,
    private readonly webhooks: WebhookStatsSource,
  ) {}

  /**
   * Connection and channel counts from the shared state, so every node's console shows the same numbers;
   * webhook counters are this node's (each node sends its own share).
   */
  async stats(appId: string): Promise<ConsoleStats> {
    const [connections, channels] = await Promise.all([this.gateway.state.connectionCount(appId), this.gateway.state.channels(appId, '')]);
    let visible = 0;
    for (const name of channels.keys()) if (!name.startsWith('#')) visible++;
    return { connections, channels: visible, webhooks: this.webhooks.stats().apps[appId] ?? emptyWebhookCounters() };
  }

  /** True while a console is open on `appId`: callers may skip building an entry otherwise. */
  watching(appId: string): boolean {
    return this.streams.has(appId);
  }

  /** Adds an entry to an app's log (webhooks and push report here); a no-op unless someone watches. */
  report(appId: string, kind: EntryKind, fields: EntryFields): void {
    if (!this.streams.has(appId)) return;
    const entry: ConsoleEntry = { id: this.nextId++, time: Date.now(), kind, ...fields };
    if (entry.data !== undefined) entry.data = cut(entry.data);
    let log = this.backlog.get(appId);
    if (!log) {
      log = [];
      this.backlog.set(appId, log);
    }
    log.push(entry);
    if (log.length > BACKLOG) log.shift();
    this.broadcast(appId, `id: ${entry.id}\nevent: log\ndata: ${JSON.stringify(entry)}\n\n`);
  }

  /** Starts streaming `appId`'s log to `stream`, backlog first; returns the function that stops it. */
  attach(appId: string, stream: EventStream): () => void {
    let set = this.streams.get(appId);
    if (!set) {
      set = new Set();
      this.streams.set(appId, set);
    }
    set.add(stream);
    let chunk = 'retry: 2000\n\n';
    for (const e of this.backlog.get(appId) ?? []) chunk += `id: ${e.id}\nevent: log\ndata: ${JSON.stringify(e)}\n\n`;
    stream.write(chunk);
    void this.sendStats(appId);
    if (!this.statsTimer) {
      this.statsTimer = setInterval(() => {
        for (const id of this.streams.keys()) void this.sendStats(id);
      }, STATS_EVERY_MS);
      this.statsTimer.unref();
    }
    return () => this.detach(appId, stream);
  }

  /** Ends every stream (server shutdown); browsers will reconnect elsewhere. */
  closeAll(): void {
    for (const [appId, set] of this.streams) for (const s of set) this.detach(appId, s);
  }

  private detach(appId: string, stream: EventStream): void {
    const set = this.streams.get(appId);
    if (!set?.delete(stream)) return;
    stream.end();
    if (set.size === 0) this.streams.delete(appId);
    if (this.streams.size === 0 && this.statsTimer) {
      clearInterval(this.statsTimer);
      this.statsTimer = null;
    }
  }

  private broadcast(appId: string, chunk: string): void {
    for (const s of this.streams.get(appId) ?? []) {
      if (s.writableLength > MAX_BUFFERED_BYTES) this.detach(appId, s);
      else s.write(chunk);
    }
  }

  private async sendStats(appId: string): Promise<void> {
    try {
      this.broadcast(appId, `event: stats\ndata: ${JSON.stringify(await this.stats(appId))}\n\n`);
    } catch (err) {
      this.log.debug({ err, app: appId }, 'console: reading counts failed');
    }
  }

  // ---------------------------------------------------------------- gateway observer

  connectionOpened(conn: Connection): void {
    if (!this.streams.has(conn.app.id)) return;
    this.report(conn.app.id, 'connected', { socketId: conn.socketId, detail: `from ${conn.remoteAddress}` });
  }

  connectionClosed(conn: Connection, code: number): void {
    if (!this.streams.has(conn.app.id)) return;
    this.report(conn.app.id, 'disconnected', { socketId: conn.socketId, detail: `close code ${code}` });
  }

  connectionRefused(appId: string | null, code: number, reason: string): void {
    if (appId === null || !this.streams.has(appId)) return;
    this.report(appId, 'refused', { detail: `${code}: ${reason}` });
  }

  subscribed(conn: Connection, channel: string): void {
    if (!this.streams.has(conn.app.id)) return;
    const user = channelType(channel).kind === 'presence' ? conn.channels.get(channel) : null;
    this.report(conn.app.id, 'subscribed', { channel, socketId: conn.socketId, detail: user ? `as user ${user}` : undefined });
  }

  unsubscribed(conn: Connection, channel: string): void {
    if (!this.streams.has(conn.app.id)) return;
    this.report(conn.app.id, 'unsubscribed', { channel, socketId: conn.socketId });
  }

  channelOccupied(app: AppOptions, channel: string): void {
    if (!this.streams.has(app.id)) return;
    this.report(app.id, 'occupied', { channel });
  }

  channelVacated(app: AppOptions, channel: string): void {
    if (!this.streams.has(app.id)) return;
    this.report(app.id, 'vacated', { channel });
  }

  memberAdded(app: AppOptions, channel: string, userId: string): void {
    if (!this.streams.has(app.id)) return;
    this.report(app.id, 'member_added', { channel, detail: `user ${userId}` });
  }

  memberRemoved(app: AppOptions, channel: string, userId: string): void {
    if (!this.streams.has(app.id)) return;
    this.report(app.id, 'member_removed', { channel, detail: `user ${userId}` });
  }

  subscriptionCount(app: AppOptions, channel: string, count: number): void {
    if (!this.streams.has(app.id)) return;
    this.report(app.id, 'subscription_count', { channel, detail: `${count} subscriptions` });
  }

  cacheMiss(app: AppOptions, channel: string): void {
    if (!this.streams.has(app.id)) return;
    this.report(app.id, 'cache_miss', { channel });
  }

  clientEvent(app: AppOptions, channel: string, event: string, data: string, socketId: string, userId?: string): void {
    if (!this.streams.has(app.id)) return;
    this.report(app.id, 'client_event', { channel, event, socketId, data, detail: userId ? `from user ${userId}` : undefined });
  }

  published(app: AppOptions, channels: string[], event: string, data: string, socketId?: string): void {
    if (!this.streams.has(app.id)) return;
    this.report(app.id, 'api_message', { channel: channels.join(', '), event, data, detail: socketId ? `excluding ${socketId}` : undefined });
  }

  clientError(conn: Connection, code: number | null, message: string): void {
    if (!this.streams.has(conn.app.id)) return;
    this.report(conn.app.id, 'error', { socketId: conn.socketId, detail: code === null ? message : `${code}: ${message}` });
  }
}
