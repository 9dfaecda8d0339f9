import Fastify, { LogController, type FastifyBaseLogger, type FastifyServerOptions, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Adapter } from './adapter/Adapter';
import { LocalAdapter } from './adapter/LocalAdapter';
import { AppRegistry } from './apps/AppRegistry';
import { ERRORS, HeraldError } from './errors';
import { Gateway } from './Gateway';
import { answerClientError } from './http/client-error';
import { healthPlugin } from './http/health-plugin';
import { restPlugin } from './http/rest-plugin';
import type { HeraldOptions } from './options/Options';
import type { ClusterState } from './state/ClusterState';
import { LocalState } from './state/LocalState';
import { websocketPlugin } from './ws/websocket-plugin';
import { lazyRequestLogger } from './logger';
import { createBackends } from './cluster/create-backends';
import { readFileSync } from 'node:fs';
import { DebugConsole } from './console/DebugConsole';
import { consolePlugin } from './console/console-plugin';
import { readMemory } from './http/memory-pressure';
import { metricsPlugin } from './http/metrics-plugin';
import { Metrics } from './metrics/Metrics';
import { configDefault } from './options/config-default';
import { WebhookObserver, type WebhookSettings } from './webhooks/WebhookObserver';
import { createWebhookJournal } from './webhooks/WebhookJournal';
import { pushDevicePlugin } from './http/push-device-plugin';
import { pushPublishPlugin } from './http/push-publish-plugin';
import { resolvePushConfig } from './push/push-config';
import { createPushStore, PushService, type PushTuning } from './push/PushService';

/** Backends chosen once, at start-up. Tests and the cluster mode pass their own. */
export interface Backends {
  adapter?: Adapter;
  state?: ClusterState;
  /** Webhook timings, and the journal (default: from the options); tests shorten or replace them. */
  webhooks?: WebhookSettings;
  /** Called once with the gateway built on these backends (the Redis ones resubscribe and report through it). */
  attach?(gateway: Gateway): void;
  /** Web Push store and timings; tests shorten them or bring their own store. */
  push?: PushTuning;
}

/**
 * Longest path segment the router takes (fastify's default, 100, answered 414 to `GET /channels/:channel`
 * for a valid channel of 101 characters). Channel names may be 1000 characters (the most
 * `maxChannelNameLength` allows) and a client may percent-encode each of `,;=@` as 3; user and device ids
 * (at most 164 characters of any script) take at most 12 per character. The handlers check each name against
 * the app's own limits and answer 400.
 */
const MAX_PATH_PARAM_LENGTH = 3000;

/**
 * One Herald node: the HTTP/WebSocket shell around the gateway core. `start()` listens; `stop()` drains
 * sockets with 4200, finishes in-flight requests and closes the backends.
 */
export class HeraldServer {
  readonly gateway: Gateway;
  readonly http: FastifyInstance;
  /** Prometheus metrics; push reports through its methods, webhook counters are read when scraped. */
  readonly metrics: Metrics;
  /** The debug console's log; webhooks and push report through `report`, push installs `pushTest`. */
  readonly debugConsole: DebugConsole;
  readonly webhooks: WebhookObserver;
  /** Web Push (null when no app has push on: its routes then answer 501). */
  readonly push: PushService | null;
  private started = false;
  private stopping: Promise<void> | null = null;

  constructor(
    readonly options: HeraldOptions,
    readonly log: Logger,
    backends: Backends = {},
  ) {
    const apps = new AppRegistry(options.apps);
    // Redis when `redis` is configured and the caller brought no adapter or state of its own (tests may).
    const chosen = backends.adapter || backends.state ? backends : { ...backends, ...createBackends(options, log) };
    this.gateway = new Gateway(options, apps, chosen.adapter ?? new LocalAdapter(), chosen.state ?? new LocalState(), log);
    chosen.attach?.(this.gateway);
    // One console line per webhook request (the console is made below, before anything can be sent).
    const webhookLog = log.child({ component: 'webhooks' });
    const journal = backends.webhooks?.journal !== undefined ? backends.webhooks.journal : createWebhookJournal(options, webhookLog);
    // Only a single node keeps occupancy for after a crash: in a cluster the surviving nodes send the leaves.
    const trackOccupancy = backends.webhooks?.trackOccupancy ?? this.gateway.state instanceof LocalState;
    this.webhooks = new WebhookObserver(this.gateway.state, webhookLog, { ...backends.webhooks, journal, trackOccupancy }, {
      report: (appId, detail, channel) => this.debugConsole.report(appId, 'webhook', { channel, detail }),
    });
    this.gateway.observe(this.webhooks);
    this.gateway.setLeaveMarks(this.webhooks);
    this.http = Fastify({
      loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
      // Per-request logs would double the cost of a REST trigger; errors are still logged once.
      logController: new LogController({ disableRequestLogging: true }),
      childLoggerFactory: lazyRequestLogger as unknown as NonNullable<FastifyServerOptions['childLoggerFactory']>,
      bodyLimit: options.maxRequestBytes,
      routerOptions: { maxParamLength: MAX_PATH_PARAM_LENGTH },
      // The router's own refusals (a bad %-escape, an over-long segment) answer like every other error,
      // from the table, instead of fastify's default body that echoes the whole path back.
      frameworkErrors: (err, req, reply) => {
        const name = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'PATH_TOO_LONG' : 'BAD_PATH';
        req.log.debug({ err: err.code, url: req.url.slice(0, 200) }, 'request refused');
        return (reply as FastifyReply).code(ERRORS[name].status).send({ error: ERRORS[name].message });
      },
      clientErrorHandler: answerClientError,
      trustProxy: options.trustProxy ?? configDefault('trustProxy'),
      return503OnClosing: true,
      forceCloseConnections: 'idle',
      // HTTPS and wss:// on the same port when configured (typed as plain http: the routes are the same).
      ...(options.tls ? { https: readTls(options.tls) } : {}),
    });
    this.http.setErrorHandler((err: FastifyError | HeraldError, req, reply) => {
      if (err instanceof HeraldError) {
        if (err.retryAfter !== undefined) reply.header('Retry-After', String(Math.ceil(err.retryAfter)));
        return reply.code(err.status).send({ error: err.message });
      }
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
      if (status >= 500) req.log.error({ err, url: req.url }, 'request failed');
      else req.log.debug({ err: err.message, url: req.url }, 'request refused');
      const message =
        err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `Request body is larger than ${options.maxRequestBytes} bytes`
        : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? ERRORS.UNSUPPORTED_MEDIA_TYPE.message
        : status >= 500 ? 'Internal server error'
        : err.message;
      return reply.code(status).send({ error: message });
    });
    this.http.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `Not found: ${req.method} ${req.url.split('?')[0]}` }));
    // First, so its hooks (request counts, trigger latency) cover every route.
    this.metrics = new Metrics(this.gateway, this.webhooks);
    const metricsEnabled = options.metricsEnabled ?? configDefault('metricsEnabled');
    if (metricsEnabled) {
      this.gateway.observe(this.metrics);
      void this.http.register(metricsPlugin, { metrics: this.metrics });
    }
    const memoryPercent = options.memoryThresholdPercent ?? configDefault('memoryThresholdPercent');
    const memoryLimit = options.memoryLimitBytes ?? configDefault('memoryLimitBytes');
    void this.http.register(healthPlugin, {
      gateway: this.gateway,
      phase: () => (this.stopping ? 'draining' : this.started ? 'running' : 'starting'),
      memory: () => readMemory(memoryPercent, memoryLimit),
    });
    this.debugConsole = new DebugConsole(this.gateway, log.child({ component: 'console' }), this.webhooks);
    if (options.adminToken) {
      this.gateway.observe(this.debugConsole);
      void this.http.register(consolePlugin, { gateway: this.gateway, debugConsole: this.debugConsole, adminToken: options.adminToken, secureCookie: !!options.tls });
    } else {
      log.info('debug console disabled: set adminToken (or HERALD_ADMIN_TOKEN) to serve /console');
    }
    const pushConfig = resolvePushConfig(options);
    this.push = pushConfig
      ? new PushService(
          pushConfig,
          this.gateway.state,
          backends.push?.store ?? createPushStore(options, log),
          log.child({ component: 'push' }),
          { pushSent: (appId, outcome) => this.metrics.pushSent(appId, outcome), pushReported: (appId, report) => this.metrics.pushReported(appId, report), report: (appId, detail) => this.debugConsole.report(appId, 'push', { detail }) },
          backends.push,
        )
      : null;
    if (this.push) {
      const push = this.push;
      this.gateway.setPushFallback(push);
      this.debugConsole.pushTest = (app, body) => push.consoleTest(app, body);
    }
    void this.http.register(pushDevicePlugin, { gateway: this.gateway, push: this.push });
    void this.http.register(pushPublishPlugin, { gateway: this.gateway, push: this.push });
    void this.http.register(websocketPlugin, { gateway: this.gateway, maxMessageBytes: options.maxMessageBytes });
    void this.http.register(restPlugin, { gateway: this.gateway });
  }

  /** Listens; resolves with the bound address (port 0 picks a free port). */
  async start(): Promise<{ host: string; port: number }> {
    // First: a journal locked by another process stops start-up before anything else, and what it kept
    // is queued before any new event of its channels.
    await this.webhooks.start((id) => this.gateway.apps.byId(id));
    await this.gateway.start();
    await this.push?.start();
    await this.http.listen({ host: this.options.host, port: this.options.port });
    this.started = true;
    const addr = this.http.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : this.options.port;
    return { host: this.options.host, port };
  }

  /** Graceful stop: refuse new work, close sockets with 4200, finish requests, close backends. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const deadline = Date.now() + this.options.shutdownGraceMs;
    const left = () => Math.max(0, deadline - Date.now());
    // Every step gets what is left of the grace (the backends at least a moment), so stop() always
    // returns: a step that hangs (a peer that never answers, a broker that is gone) is logged and left.
    const step = async (name: string, work: () => Promise<unknown> | undefined, ms: number): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), ms);
        timer.unref();
      });
      const done = Promise.resolve(work()).then(
        () => 'done' as const,
        (err: unknown) => {
          this.log.error({ err, step: name }, 'shutdown step failed');
          return 'done' as const;
        },
      );
      if ((await Promise.race([done, late])) === 'late') this.log.warn({ step: name, graceMs: this.options.shutdownGraceMs }, 'shutdown step did not finish in time');
      clearTimeout(timer);
    };
    await step('drain', async () => {
      await this.gateway.drain();
      await this.http.close();
    }, left());
    // Whatever still holds the HTTP server open (a slow request, a stream) ends here, and the listener
    // closes even when the drain step ran late and never reached `http.close()`: a listening socket left
    // open keeps the process alive after stop() returned.
    if (this.http.server.listening) this.http.server.close();
    this.http.server.closeAllConnections();
    // Sends in flight get the rest of the grace; unsent deliveries are released for the next start.
    await step('push', () => this.push?.stop(deadline), left());
    // Before the state stops: pending channel_vacated / member_removed take their marks there. Sending
    // ends at the deadline itself; the moment more is for what follows it: aborting the requests left and
    // writing the journal (what is kept for the next start, what was delivered).
    await step('webhooks', () => this.webhooks.stop(deadline), left() + 1000);
    await step('backends', () => this.gateway.stop(), Math.max(1000, left()));
  }
}

/** The PEM files named by `tls`, read once at start-up; a missing file stops start-up naming the field. */
function readTls(tls: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  const read = (field: 'cert' | 'key') => {
    try {
      return readFileSync(tls[field]);
    } catch (err) {
      throw new Error(`tls.${field}: cannot read ${tls[field]}: ${(err as Error).message}`);
    }
  };
  return { cert: read('cert'), key: read('key') };
}
