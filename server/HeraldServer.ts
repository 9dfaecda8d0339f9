import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Adapter } from './adapter/Adapter';
import { LocalAdapter } from './adapter/LocalAdapter';
import { AppRegistry } from './apps/AppRegistry';
import { HeraldError } from './errors';
import { Gateway } from './Gateway';
import { healthPlugin } from './http/health-plugin';
import { restPlugin } from './http/rest-plugin';
import type { HeraldOptions } from './options/Options';
import type { ClusterState } from './state/ClusterState';
import { LocalState } from './state/LocalState';
import { websocketPlugin } from './ws/websocket-plugin';

/** Backends chosen once, at start-up. Tests and the cluster mode pass their own. */
export interface Backends {
  adapter?: Adapter;
  state?: ClusterState;
}

/**
 * One Herald node: the HTTP/WebSocket shell around the gateway core. `start()` listens; `stop()` drains
 * sockets with 4200, finishes in-flight requests and closes the backends.
 */
export class HeraldServer {
  readonly gateway: Gateway;
  readonly http: FastifyInstance;
  private started = false;
  private stopping: Promise<void> | null = null;

  constructor(
    readonly options: HeraldOptions,
    readonly log: Logger,
    backends: Backends = {},
  ) {
    const apps = new AppRegistry(options.apps);
    this.gateway = new Gateway(options, apps, backends.adapter ?? new LocalAdapter(), backends.state ?? new LocalState(), log);
    this.http = Fastify({
      loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
      // Per-request logs would double the cost of a REST trigger; errors are still logged once.
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: options.maxRequestBytes,
      trustProxy: true,
      return503OnClosing: true,
      forceCloseConnections: 'idle',
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
        : status >= 500 ? 'Internal server error'
        : err.message;
      return reply.code(status).send({ error: message });
    });
    this.http.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `Not found: ${req.method} ${req.url.split('?')[0]}` }));
    void this.http.register(healthPlugin, { gateway: this.gateway, ready: () => this.started && this.stopping === null });
    void this.http.register(websocketPlugin, { gateway: this.gateway, maxMessageBytes: options.maxMessageBytes });
    void this.http.register(restPlugin, { gateway: this.gateway });
  }

  /** Listens; resolves with the bound address (port 0 picks a free port). */
  async start(): Promise<{ host: string; port: number }> {
    await this.gateway.start();
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
    const grace = new Promise<void>((resolve) => setTimeout(resolve, this.options.shutdownGraceMs).unref());
    await Promise.race([
      (async () => {
        await this.gateway.drain();
        await this.http.close();
      })(),
      grace,
    ]);
    await this.gateway.stop();
  }
}
