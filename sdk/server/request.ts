/**
 * Signed REST requests (protocol.md §3), after pusher-http-node's `requests.js`, over a keep-alive agent
 * with a deadline per request. Every non-2xx answer becomes a `HeraldRequestError` with status and body.
 */
import http from 'node:http';
import https from 'node:https';
import { restStringToSign } from '../protocol';
import { hmacSha256Hex, md5Hex } from '../protocol/node/hmac';
import { HeraldInputError, HeraldRequestError } from './errors';
import type { ResolvedOptions } from './options';

/** The SDK's name and version as sent in `X-Pusher-Library` (Herald logs it; hosted Pusher did too). */
export const LIBRARY = 'herald-server-node 0.1.0';

/** Query keys the signature owns; callers may not set them (pusher-http-node's RESERVED_QUERY_KEYS). */
const RESERVED = new Set(['auth_key', 'auth_timestamp', 'auth_version', 'auth_signature', 'body_md5']);

export interface RequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path below `/apps/{appId}`, e.g. `/events`; segments already URL-encoded. */
  path: string;
  params?: Record<string, string | undefined>;
  /** JSON-encoded once; the signature's `body_md5` covers these exact bytes. */
  body?: unknown;
}

/** A response as pusher-http-node's fetch-based `Response`, plus the body already parsed. */
export interface HeraldResponse<T = unknown> {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The JSON body (or the text when it is not JSON). */
  body: T;
  json(): Promise<T>;
  text(): Promise<string>;
}

/**
 * The signed query string of a request: `auth_*` + `body_md5` + caller params, sorted, then
 * `auth_signature`. The signed string holds raw values; the URL holds them percent-encoded, which the
 * server decodes back before verifying.
 */
export function signedQuery(
  key: string,
  secret: string,
  method: string,
  fullPath: string,
  params: Record<string, string | undefined>,
  body: string | undefined,
  nowSeconds = Math.floor(Date.now() / 1000),
): string {
  const all: Record<string, string> = { auth_key: key, auth_timestamp: String(nowSeconds), auth_version: '1.0' };
  if (body !== undefined && body.length > 0) all.body_md5 = md5Hex(body);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    if (RESERVED.has(k.toLowerCase())) throw new HeraldInputError(`${k} is set by the SDK and cannot be overridden`);
    all[k] = v;
  }
  const signature = hmacSha256Hex(secret, restStringToSign(method, fullPath, all));
  const query = Object.keys(all)
    .sort()
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(all[k])}`)
    .join('&');
  return `${query}&auth_signature=${signature}`;
}

/** Sends signed requests to one app on one Herald. Owns its keep-alive agent unless given one. */
export class Transport {
  private readonly agent: http.Agent;
  private readonly ownAgent: boolean;

  constructor(private readonly options: ResolvedOptions) {
    this.ownAgent = options.agent === undefined;
    this.agent = options.agent ?? (options.useTLS ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true }));
  }

  get baseUrl(): string {
    return `${this.options.useTLS ? 'https' : 'http'}://${this.options.host}:${this.options.port}`;
  }

  /** Closes idle keep-alive sockets of the agent this client created. */
  destroy(): void {
    if (this.ownAgent) this.agent.destroy();
  }

  async send<T>(req: RequestOptions): Promise<HeraldResponse<T>> {
    const o = this.options;
    const fullPath = `/apps/${o.appId}${req.path}`;
    const body = req.body === undefined ? undefined : JSON.stringify(req.body);
    const url = `${this.baseUrl}${fullPath}?${signedQuery(o.key, o.secret, req.method, fullPath, req.params ?? {}, body)}`;
    const headers: http.OutgoingHttpHeaders = { 'x-pusher-library': LIBRARY, accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const { status, resHeaders, text } = await this.exchange(url, req.method, headers, body);
    if (status >= 400) {
      const detail = errorDetail(text);
      throw new HeraldRequestError(`Herald answered ${status}${detail ? `: ${detail}` : ''}`, url, status, text);
    }
    let parsed: unknown = text;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON: callers get the text, as they would from res.text().
      }
    } else parsed = {};
    return {
      status,
      headers: resHeaders,
      body: parsed as T,
      json: () => Promise.resolve(parsed as T),
      text: () => Promise.resolve(text),
    };
  }

  private exchange(
    url: string,
    method: string,
    headers: http.OutgoingHttpHeaders,
    body: string | undefined,
  ): Promise<{ status: number; resHeaders: http.IncomingHttpHeaders; text: string }> {
    const lib = this.options.useTLS ? https : http;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (message: string, cause?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(new HeraldRequestError(message, url, undefined, undefined, { cause }));
      };
      const req = lib.request(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => fail(`Response failed: ${err.message}`, err));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, resHeaders: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      // One deadline for the whole exchange: a socket timeout alone would not bound a slow trickle.
      const timer = setTimeout(() => {
        fail(`Request timed out after ${this.options.timeoutMs} ms`);
        req.destroy();
      }, this.options.timeoutMs);
      req.on('error', (err) => fail(`Request failed: ${err.message}`, err));
      req.end(body);
    });
  }
}

function errorDetail(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown; description?: unknown };
    if (typeof parsed.error === 'string') return typeof parsed.description === 'string' ? `${parsed.error} - ${parsed.description}` : parsed.error;
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return text.slice(0, 200);
}
