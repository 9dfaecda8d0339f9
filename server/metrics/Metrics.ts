import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { channelType } from '../../sdk/protocol';
import type { Gateway } from '../Gateway';
import type { GatewayObserver } from '../GatewayObserver';
import type { AppOptions } from '../options/Options';
import { emptyWebhookCounters, type WebhookCounters, type WebhookStatsSource } from '../webhooks/WebhookSender';
import type { Connection } from '../ws/Connection';
import { PendingHistogram, Tally } from './Tally';

/** How one Web Push send ended (the push sender's outcome kinds, plus `expired` for TTL run out). */
export type PushSendOutcome = 'sent' | 'gone' | 'rejected' | 'retry' | 'expired' | 'error';

const TRIGGER_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Process metrics (CPU, memory, event-loop lag, GC) belong to the process, not to a server, and their
 * collectors cannot be stopped: they are set up once and merged into each server's output.
 */
let processRegistry: Registry | null = null;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'herald_' });
  }
  return processRegistry;
}

/**
 * Herald's Prometheus metrics, in a registry of their own (several servers in one process do not clash).
 *
 * Hot-path cost is a few Map updates: counters are `Tally`s (added to prom-client when scraped), deliveries
 * are counted once per publish (`delivered` carries the socket count), and gauges (connections, channels,
 * presence members, backend health) are read from the gateway when scraped, not maintained on every
 * change. Gauges are per node: a channel with subscribers on two nodes counts on both. Webhook metrics
 * cost nothing on the delivery path: they are the sender's own counters, copied when scraped.
 *
 * Other modules report through the methods below the observer section (push); a metric whose module is
 * not wired yet stays at zero.
 */
export class Metrics implements GatewayObserver {
  readonly registry = new Registry();
  private readonly newConnections: Tally<'app_id'>;
  private readonly disconnections: Tally<'app_id' | 'code'>;
  private readonly refused: Tally<'app_id' | 'code'>;
  private readonly received: Tally<'app_id'>;
  private readonly receivedBytes: Tally<'app_id'>;
  private readonly sent: Tally<'app_id'>;
  private readonly sentBytes: Tally<'app_id'>;
  private readonly clientEvents: Tally<'app_id'>;
  private readonly publishedEvents: Tally<'app_id'>;
  private readonly clientErrors: Tally<'app_id' | 'code'>;
  private readonly httpRequests: Tally<'method' | 'route' | 'status'>;
  /** route pattern → method → status → its series in `httpRequests`. */
  private readonly httpSeries = new Map<string, Map<string, Map<number, { n: number }>>>();
  private readonly triggerLatency: PendingHistogram;
  private readonly pushSends: Tally<'app_id' | 'outcome'>;
  private readonly pushReports: Tally<'app_id' | 'report'>;

  constructor(gateway: Gateway, webhooks: WebhookStatsSource) {
    const registers = [this.registry];
    const appIds = () => gateway.apps.all().map((a) => a.id);

    new Gauge({
      name: 'herald_connections',
      help: 'Open WebSocket connections on this node',
      labelNames: ['app_id'],
      registers,
      collect() {
        for (const id of appIds()) this.set({ app_id: id }, gateway.registry.connections(id)?.size ?? 0);
      },
    });
    new Gauge({
      name: 'herald_channels',
      help: 'Channels with at least one subscriber on this node',
      labelNames: ['app_id'],
      registers,
      collect() {
        const counts = new Map(appIds().map((id) => [id, 0]));
        for (const [appId, channel] of gateway.registry.localChannels()) {
          if (!channel.startsWith('#')) counts.set(appId, (counts.get(appId) ?? 0) + 1);
        }
        for (const [id, n] of counts) this.set({ app_id: id }, n);
      },
    });
    new Gauge({
      name: 'herald_presence_members',
      help: 'Presence members (distinct users per presence channel) connected to this node',
      labelNames: ['app_id'],
      registers,
      collect() {
        const counts = new Map(appIds().map((id) => [id, 0]));
        for (const [appId, channel] of gateway.registry.localChannels()) {
          if (channelType(channel).kind !== 'presence') continue;
          const users = new Set<string | null | undefined>();
          for (const conn of gateway.registry.subscribers(appId, channel) ?? []) users.add(conn.channels.get(channel));
          counts.set(appId, (counts.get(appId) ?? 0) + users.size);
        }
        for (const [id, n] of counts) this.set({ app_id: id }, n);
      },
    });
    new Gauge({
      name: 'herald_backend_up',
      help: 'Whether a backend (adapter: messages between nodes, state: shared counts) is reachable; backend="redis" is the Redis state',
      labelNames: ['component', 'backend'],
      registers,
      collect() {
        this.set({ component: 'adapter', backend: gateway.adapter.name }, gateway.adapter.healthy() ? 1 : 0);
        this.set({ component: 'state', backend: gateway.state.name }, gateway.state.healthy() ? 1 : 0);
      },
    });

    const counter = <L extends string>(name: string, help: string, labelNames: L[]) => new Tally<L>(name, help, labelNames, registers);
    this.newConnections = counter('herald_new_connections_total', 'WebSocket connections established', ['app_id']);
    this.disconnections = counter('herald_disconnections_total', 'Established connections closed, by close code', ['app_id', 'code']);
    this.refused = counter('herald_connections_refused_total', 'Connections refused at the handshake (unknown app, quota, origin, per-IP limit…), by close code', ['app_id', 'code']);
    this.received = counter('herald_ws_messages_received_total', 'WebSocket frames received from clients', ['app_id']);
    this.receivedBytes = counter('herald_ws_received_bytes_total', 'Bytes of WebSocket frames received from clients', ['app_id']);
    this.sent = counter('herald_ws_messages_sent_total', 'Channel frames written to sockets (events, member and count updates; not handshake or pong replies)', ['app_id']);
    this.sentBytes = counter('herald_ws_sent_bytes_total', 'Bytes of channel frames written to sockets', ['app_id']);
    this.clientEvents = counter('herald_client_events_total', 'Client events accepted and published', ['app_id']);
    this.publishedEvents = counter('herald_published_events_total', 'Server events published through the REST API or the console, one per channel', ['app_id']);
    this.clientErrors = counter('herald_client_errors_total', 'pusher:error and subscription errors sent to clients, by code (4301: client event rate limit)', ['app_id', 'code']);
    this.httpRequests = counter('herald_http_requests_total', 'HTTP requests answered, by route pattern and status', ['method', 'route', 'status']);
    this.triggerLatency = new PendingHistogram(
      'herald_trigger_to_send_seconds',
      'From a REST trigger arriving to its answer being written: its frames are written to local sockets by then when the node is idle, queued for the end of the poll phase when busy (in cluster mode: handed to the broker)',
      TRIGGER_BUCKETS,
      registers,
    );
    this.defineWebhookMetrics(gateway, webhooks);
    this.pushSends = counter('herald_push_sends_total', 'Web Push sends, by outcome', ['app_id', 'outcome']);
    this.pushReports = counter('herald_push_reports_total', 'Devices whose service worker reported a push delivered, or its notification opened (once per device and publish)', ['app_id', 'report']);
  }

  /**
   * Per app with webhook targets (zero before its first event). Counters are set from the sender's totals
   * (reset, then one `inc` by the total) since prom-client counters have no `set`.
   */
  private defineWebhookMetrics(gateway: Gateway, webhooks: WebhookStatsSource): void {
    const registers = [this.registry];
    const webhookApps = (): [string, WebhookCounters][] => {
      const { apps } = webhooks.stats();
      const out = new Map<string, WebhookCounters>();
      for (const app of gateway.apps.all()) if (app.webhooks.length > 0) out.set(app.id, apps[app.id] ?? emptyWebhookCounters());
      for (const [id, c] of Object.entries(apps)) out.set(id, c);
      return [...out];
    };
    const gauge = (name: string, help: string, read: (c: WebhookCounters) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['app_id'],
        registers,
        collect() {
          for (const [id, c] of webhookApps()) this.set({ app_id: id }, read(c));
        },
      });
    const total = (name: string, help: string, read: (c: WebhookCounters) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['app_id'],
        registers,
        collect() {
          this.reset();
          for (const [id, c] of webhookApps()) this.inc({ app_id: id }, read(c));
        },
      });
    gauge('herald_webhook_queue_depth', 'Webhook events waiting to be sent on this node (new, or waiting for a retry)', (c) => c.depth - c.inFlight);
    gauge('herald_webhooks_in_flight', 'Webhook events in requests awaiting their answer on this node', (c) => c.inFlight);
    total('herald_webhooks_queued_total', 'Webhook events accepted into a queue, once per target', (c) => c.queued);
    total('herald_webhooks_sent_total', 'Webhook events delivered (answered with 2xx)', (c) => c.sent);
    total('herald_webhooks_failed_total', 'Webhook requests that failed (timeout, connection error, non-2xx); their events are retried', (c) => c.failed);
    new Counter({
      name: 'herald_webhooks_dropped_total',
      help: 'Webhook events given up: reason="queue_full" (refused, the app\'s queue was full) or "expired" (not delivered in time, or at shutdown)',
      labelNames: ['app_id', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const [id, c] of webhookApps()) {
          this.inc({ app_id: id, reason: 'queue_full' }, c.dropped);
          this.inc({ app_id: id, reason: 'expired' }, c.expired);
        }
      },
    });
  }

  /** The exposition text and its content type, for `/metrics`. */
  async render(): Promise<{ contentType: string; body: string }> {
    const both = Registry.merge([processMetrics(), this.registry]);
    return { contentType: this.registry.contentType, body: await both.metrics() };
  }

  // ---------------------------------------------------------------- gateway observer

  connectionOpened(conn: Connection): void {
    const id = conn.app.id;
    this.newConnections.add(id, { app_id: id });
  }

  connectionClosed(conn: Connection, code: number): void {
    const id = conn.app.id;
    this.disconnections.add(`${id}\n${code}`, { app_id: id, code });
  }

  connectionRefused(appId: string | null, code: number): void {
    const id = appId ?? '';
    this.refused.add(`${id}\n${code}`, { app_id: id, code });
  }

  messageReceived(conn: Connection, bytes: number): void {
    const id = conn.app.id;
    this.received.add(id, { app_id: id });
    this.receivedBytes.add(id, { app_id: id }, bytes);
  }

  delivered(appId: string, _channel: string, count: number, bytes: number): void {
    if (count === 0) return;
    this.sent.add(appId, { app_id: appId }, count);
    this.sentBytes.add(appId, { app_id: appId }, count * bytes);
  }

  clientEvent(app: AppOptions): void {
    this.clientEvents.add(app.id, { app_id: app.id });
  }

  published(app: AppOptions, channels: string[]): void {
    this.publishedEvents.add(app.id, { app_id: app.id }, channels.length);
  }

  clientError(conn: Connection, code: number | null): void {
    const id = conn.app.id;
    this.clientErrors.add(`${id}\n${code}`, { app_id: id, code: code ?? '' });
  }

  // ---------------------------------------------------------------- HTTP (metrics plugin)

  httpRequest(method: string, route: string, status: number): void {
    // Found through maps keyed by the strings fastify already holds (route pattern, method) and the status
    // number: every HTTP answer passes here, and building a key string per request cost more than counting.
    let byMethod = this.httpSeries.get(route);
    if (byMethod === undefined) this.httpSeries.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    let series = byStatus.get(status);
    if (series === undefined) byStatus.set(status, (series = this.httpRequests.series(`${method} ${status} ${route}`, { method, route, status })));
    series.n++;
  }

  triggerToSend(seconds: number): void {
    this.triggerLatency.observe(seconds);
  }

  // ---------------------------------------------------------------- other modules

  /** Push: one send to one subscription ended with `outcome`. */
  pushSent(appId: string, outcome: PushSendOutcome): void {
    this.pushSends.add(`${appId}\n${outcome}`, { app_id: appId, outcome });
  }

  /** Push: a service worker's report counted (`delivered` or `opened`). */
  pushReported(appId: string, report: 'delivered' | 'opened'): void {
    this.pushReports.add(`${appId}\n${report}`, { app_id: appId, report });
  }
}
