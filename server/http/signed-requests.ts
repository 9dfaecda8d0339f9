import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HeraldError, fail } from '../errors';
import type { Gateway } from '../Gateway';
import type { AppOptions } from '../options/Options';
import { verifyRequest } from './verify-request';

declare module 'fastify' {
  interface FastifyRequest {
    /** The app named by `/apps/:appId`, set once the request's signature is verified. */
    heraldApp?: AppOptions;
    /** The body as received, before parsing: the signature covers these bytes. */
    rawBody?: string;
  }
}

/**
 * Makes every route of the calling plugin a signed `/apps/:appId/…` route (protocol.md §3): the JSON body is
 * kept as text, because `body_md5` covers the exact bytes, and a preHandler finds the app, checks the
 * signature on those bytes and takes the app's REST request budget before any handler parses anything.
 */
export function useSignedRequests(fastify: FastifyInstance, gateway: Gateway): void {
  // JSON only: fastify's own text/plain parser (what fetch sends a string as) would hand the preHandler a
  // body it never kept as raw text, checked as empty and refused as a body_md5 mismatch. Without it, any
  // other type is a 415 (UNSUPPORTED_MEDIA_TYPE in the error handler).
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    req.rawBody = body as string;
    done(null, body);
  });

  fastify.addHook('preHandler', async (req: FastifyRequest<{ Params: { appId: string } }>) => {
    const app = gateway.apps.byId(req.params.appId);
    if (!app) fail('APP_NOT_FOUND', `App ${req.params.appId.slice(0, 64)} does not exist`);
    if (!app.enabled) fail('APP_DISABLED');
    const url = req.raw.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const problem = verifyRequest(app, req.method, path, signedParams(req.query), req.rawBody ?? '', Math.floor(Date.now() / 1000));
    if (problem) fail(problem);
    req.heraldApp = app;
    await takeBudget(gateway, app, 'rest-requests', app.maxRestRequestsPerSecond, 1, 'REST requests');
  });
}

/**
 * The query as signed: fastify has already parsed it (decoded, `+` as space), once per request, so it is not
 * parsed again here. A parameter given twice arrives as an array; the last one counts, as it did when this
 * hook parsed the query itself. Signed routes must not declare a `querystring` schema: its validation runs
 * before this hook and could coerce or drop values that the signature covers as sent.
 */
function signedParams(query: unknown): Record<string, string> {
  const params = query as Record<string, string | string[]>;
  for (const k in params) {
    if (typeof params[k] === 'string') continue;
    return Object.fromEntries(Object.entries(params).map(([key, v]) => [key, typeof v === 'string' ? v : (v[v.length - 1] ?? '')]));
  }
  return params as Record<string, string>;
}

/** The app a signed request was verified for. */
export function appOf(req: FastifyRequest): AppOptions {
  if (!req.heraldApp) throw new HeraldError('SERVER_ERROR', 'request reached a handler without a verified app');
  return req.heraldApp;
}

/** The verified body, parsed; an empty body is a 400 unless `required` is false. */
export function parseBody(req: FastifyRequest, required = true): unknown {
  const raw = req.rawBody ?? '';
  if (raw.length === 0) return required ? fail('BAD_REQUEST', 'Request body is empty') : undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return fail('BAD_JSON');
  }
}

/** Takes `cost` from a cluster-wide per-second budget (`limit` < 0: unlimited); over it, 429 with Retry-After. */
export async function takeBudget(gateway: Gateway, app: AppOptions, bucket: string, limit: number, cost: number, what: string): Promise<void> {
  if (limit < 0) return;
  const wait = await gateway.state.takeRate(app.id, bucket, limit, cost);
  if (wait > 0) fail('RATE_LIMITED', `More than ${limit} ${what} per second`, wait);
}
