/**
 * Signed `POST /apps/ID/events` on keep-alive connections. Signing is split from sending so that
 * throughput scenarios can sign a pool up front and spend the generator's core on sending only.
 */
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { signedRestPath, type AppCredentials } from './signing';

export interface ServerAddress {
  host: string;
  port: number;
}

/** A request ready to send: path with auth query, and the exact body that was signed. */
export interface SignedRequest {
  path: string;
  body: Buffer;
}

const REQUEST_TIMEOUT_MS = 10_000;

/** REST client for one app; counts failed answers instead of throwing so a run reports them. */
export class RestClient {
  ok = 0;
  failed = 0;
  /** Status and body of the first failed answer, for the error report. */
  firstFailure: string | null = null;
  /**
   * TCP connections opened. Stays at the pool size when the server keeps connections alive; soketi answers
   * every request with `Connection: close`, so there it grows by one per request.
   */
  connectionsOpened = 0;

  private readonly agent: Agent;
  private readonly eventsPath: string;
  private readonly seenSockets = new WeakSet<Socket>();

  constructor(
    private readonly server: ServerAddress,
    private readonly app: AppCredentials,
    maxSockets: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    this.eventsPath = `/apps/${app.appId}/events`;
  }

  /** Signs a trigger of event `bench` with `data` to `channels`, timestamped now. */
  signTrigger(channels: string[], data: string): SignedRequest {
    const body = Buffer.from(JSON.stringify({ name: 'bench', data, channels }), 'utf8');
    const path = signedRestPath(this.app, 'POST', this.eventsPath, body, Math.floor(Date.now() / 1000));
    return { path, body };
  }

  /** Sends a signed request and resolves when the whole response was read. Rejects on network errors. */
  post(req: SignedRequest): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const r = request(
        {
          host: this.server.host,
          port: this.server.port,
          method: 'POST',
          path: req.path,
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': req.body.length },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          // soketi answers a bad signature with status 200 and an `{"error":…}` body, so the body is
          // checked too; it is a few bytes, usually one chunk.
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (body.length < 300) body += c;
          });
          res.on('end', () => {
            if (status >= 200 && status < 300 && !body.startsWith('{"error"')) {
              this.ok++;
            } else {
              this.failed++;
              this.firstFailure ??= `HTTP ${status}: ${body.slice(0, 300)}`;
            }
            resolve();
          });
        },
      );
      r.on('socket', (socket: Socket) => {
        if (this.seenSockets.has(socket)) return;
        this.seenSockets.add(socket);
        this.connectionsOpened++;
      });
      r.setTimeout(REQUEST_TIMEOUT_MS, () => r.destroy(new Error(`REST request timed out after ${REQUEST_TIMEOUT_MS} ms`)));
      r.on('error', reject);
      r.end(req.body);
    });
  }

  /** Throws when every request failed: the figures would describe error handling, not triggering. */
  assertUsable(): void {
    if (this.ok === 0 && this.failed > 0) throw new Error(`every REST trigger failed; first: ${this.firstFailure}`);
  }

  /** Forgets warm-up requests so that counts cover the measured window only. */
  resetCounts(): void {
    this.ok = 0;
    this.failed = 0;
    this.connectionsOpened = 0;
  }

  close(): void {
    this.agent.destroy();
  }
}
