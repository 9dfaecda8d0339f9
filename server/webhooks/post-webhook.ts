/** One webhook POST over keep-alive sockets, with a deadline covering connect to the last response byte. */
import http from 'node:http';
import https from 'node:https';

/**
 * Idle sockets close before the common 5 s server keep-alive timeout, so a reused socket is rarely one the
 * receiver is closing at that very moment.
 */
const IDLE_SOCKET_MS = 4 * 1000;

/** Keep-alive agents shared by every target of a sender; `destroy()` closes their sockets. */
export class WebhookAgents {
  readonly http = new http.Agent({ keepAlive: true, maxSockets: 32, timeout: IDLE_SOCKET_MS });
  readonly https = new https.Agent({ keepAlive: true, maxSockets: 32, timeout: IDLE_SOCKET_MS });

  destroy(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

/** A request that did not produce a response: connection error, timeout or abort. */
export class WebhookRequestError extends Error {
  override readonly name = 'WebhookRequestError';
}

/**
 * Posts `body` and resolves with the response status once the response is fully read (so the socket
 * returns to the pool). Rejects on connection errors, on `timeoutMs` and when `signal` aborts.
 */
export function postWebhook(
  url: URL,
  body: Buffer,
  headers: Record<string, string>,
  agents: WebhookAgents,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<number> {
  if (signal.aborted) return Promise.reject(new WebhookRequestError('aborted: server stopping'));
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    let settled = false;
    const finish = (err: Error | null, status = 0) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(status);
    };
    const req = (secure ? https : http).request(url, {
      method: 'POST',
      agent: secure ? agents.https : agents.http,
      headers: { ...headers, 'content-length': String(body.length) },
    });
    const timer = setTimeout(() => {
      const err = new WebhookRequestError(`timed out after ${timeoutMs} ms`);
      finish(err);
      req.destroy(err);
    }, timeoutMs);
    timer.unref();
    const onAbort = () => {
      const err = new WebhookRequestError('aborted: server stopping');
      finish(err);
      req.destroy(err);
    };
    signal.addEventListener('abort', onAbort);
    req.on('error', (err) => finish(err));
    req.on('response', (res) => {
      res.on('error', (err) => finish(err));
      res.on('end', () => finish(null, res.statusCode ?? 0));
      res.resume();
    });
    req.end(body);
  });
}
