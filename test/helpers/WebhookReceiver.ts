/**
 * A real HTTP webhook receiver in the test process (port 0). It records every request with the exact
 * bytes received and answers with what `respond` decides, so tests can make it fail, hang or lag.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  path: string;
  headers: http.IncomingHttpHeaders;
  rawBody: string;
  /** What the receiver answered (0 while it has not, or when it never will). */
  status: number;
  body: { time_ms: number; events: Record<string, unknown>[] };
  receivedAt: number;
}

/** A status, or `'hang'` to never answer (the sender must time out). */
export type WebhookAnswer = number | 'hang';

export class WebhookReceiver {
  /** Every request, in arrival order. */
  readonly requests: ReceivedWebhook[] = [];
  /** Decides each answer; `n` counts requests from 0. Default: 200. */
  respond: (r: ReceivedWebhook, n: number) => WebhookAnswer | Promise<WebhookAnswer> = () => 200;
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<WebhookReceiver> {
    const server = http.createServer();
    const receiver = new WebhookReceiver(server);
    server.on('request', (req, res) => receiver.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  url(path = '/webhook'): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** Closes the keep-alive connections that carry no request now (the sender's pool starts empty again). */
  closeIdleConnections(): void {
    this.server.closeIdleConnections();
  }

  /** Requests answered with a 2xx (the ones the sender counts as delivered). */
  accepted(path?: string): ReceivedWebhook[] {
    return this.requests.filter((r) => r.status >= 200 && r.status < 300 && (path === undefined || r.path === path));
  }

  /** Events of accepted requests, in arrival order. */
  events(path?: string): Record<string, unknown>[] {
    return this.accepted(path).flatMap((r) => r.body.events);
  }

  /** Resolves once `check()` holds, re-checked when a request arrives and when it is answered. */
  waitFor(check: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.requests.map((r) => [r.path, r.status, r.body.events]))}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Resolves with the accepted events once `n` events matching `match` have arrived. */
  async waitForEvents(n: number, match: (e: Record<string, unknown>) => boolean = () => true, path?: string, timeoutMs?: number): Promise<Record<string, unknown>[]> {
    const found = () => this.events(path).filter(match);
    await this.waitFor(() => found().length >= n, `${n} webhook event(s)`, timeoutMs);
    return found();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: ReceivedWebhook['body'];
      try {
        body = JSON.parse(rawBody) as ReceivedWebhook['body'];
      } catch {
        body = { time_ms: 0, events: [] };
      }
      const r: ReceivedWebhook = { path: req.url ?? '', headers: req.headers, rawBody, status: 0, body, receivedAt: Date.now() };
      const n = this.requests.length;
      this.requests.push(r);
      this.notify();
      void Promise.resolve(this.respond(r, n)).then((answer) => {
        if (answer === 'hang') return;
        r.status = answer;
        res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer < 300 ? 'ok' : 'no');
        this.notify();
      });
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) {
      if (w.check()) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve();
      }
    }
  }
}
