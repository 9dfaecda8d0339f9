/**
 * One outbound POST (a Web Push message, a webhook) through an undici dispatcher, with a deadline that
 * covers everything from waiting for a pooled connection to the last response byte.
 *
 * undici's dispatcher is driven with a handler object rather than node:http's request and response
 * streams: ~36 against ~85 µs of CPU per request on one core here, where a push send is ~350 µs in all.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, type Dispatcher } from 'undici';

/** What the callers read of an answer. */
export interface PostResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The start of the body (at most `keepBodyBytes`, cut at a chunk boundary); the rest is read and dropped. */
  body: string;
}

export interface PostOptions {
  /** Deadline of the whole request (ms). */
  timeoutMs: number;
  /** The error the deadline rejects with. */
  timeoutError: () => Error;
  /** Aborts the request (e.g. the server stopping); rejects with `abortError`. */
  signal?: AbortSignal;
  abortError?: () => Error;
  /** Bytes of the body worth keeping (error reasons); 0 keeps none. */
  keepBodyBytes?: number;
}

/**
 * A keep-alive pool per origin (undici's Agent drops an origin's pool once its idle connections have
 * closed, so many push service hostnames do not pile up). `destroy()` fails requests in flight.
 */
export function outboundAgent(connectionsPerOrigin: number, idleMs: number): Agent {
  return new Agent({ connections: connectionsPerOrigin, keepAliveTimeout: idleMs, keepAliveMaxTimeout: idleMs });
}

/**
 * POSTs `body` to `url` with `headers` and its Content-Length; resolves with the answer once it is fully
 * read, rejects on any failure.
 */
export function post(dispatcher: Dispatcher, url: URL, headers: Record<string, string>, body: Buffer, options: PostOptions): Promise<PostResponse> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(abortErrorOf(options));
  return new Promise<PostResponse>((resolve, reject) => {
    let settled = false;
    let controller: Dispatcher.DispatchController | null = null;
    // Set when the deadline or the signal ended the request before undici started it.
    let stopped: Error | null = null;
    let status = 0;
    let responseHeaders: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let kept = 0;
    const keep = options.keepBodyBytes ?? 0;

    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks).toString('utf8') });
    };
    const stop = (err: Error): void => {
      stopped = err;
      finish(err);
      controller?.abort(err);
    };
    // A request still waiting for a pooled connection has no controller yet; it is aborted when it starts.
    const timer = setTimeout(() => stop(options.timeoutError()), options.timeoutMs);
    timer.unref();
    const onAbort = (): void => stop(abortErrorOf(options));
    signal?.addEventListener('abort', onAbort);

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: (c) => {
        controller = c;
        if (stopped !== null) c.abort(stopped);
      },
      onResponseStart: (_c, statusCode, h) => {
        status = statusCode;
        responseHeaders = h;
      },
      onResponseData: (_c, chunk) => {
        if (kept < keep) {
          chunks.push(chunk);
          kept += chunk.length;
        }
      },
      onResponseEnd: () => finish(null),
      // Connection refused or reset, TLS, a response cut short, or the dispatcher destroyed.
      onResponseError: (_c, err) => finish(err),
    };
    try {
      const sent = { ...headers, 'content-length': String(body.length) };
      dispatcher.dispatch({ origin: url.origin, path: url.pathname + url.search, method: 'POST', headers: sent, body }, handler);
    } catch (err) {
      finish(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

function abortErrorOf(options: PostOptions): Error {
  return options.abortError?.() ?? new Error('aborted');
}
