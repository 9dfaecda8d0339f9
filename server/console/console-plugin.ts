import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hmacSha256Hex, safeEqual } from '../../sdk/protocol/node/hmac';
import { HeraldError, fail } from '../errors';
import type { Gateway } from '../Gateway';
import { checkEvent } from '../http/rest-plugin';
import { type EventBody, schemaProblem, validateEventBody } from '../http/rest-schemas';
import type { AppOptions } from '../options/Options';
import type { DebugConsole } from './DebugConsole';

export interface ConsolePluginOptions {
  gateway: Gateway;
  debugConsole: DebugConsole;
  adminToken: string;
  /** Mark the session cookie `Secure` (the server speaks TLS). */
  secureCookie: boolean;
  /** Where index.html, console.js and console.css live (default: `consolePublicDir()`). */
  publicDir?: string;
}

const COOKIE = 'herald_console';
const STATIC = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
} as const;
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/**
 * The page's files. The server runs from `dist/`, which `tsc` fills with compiled code only, so the files
 * are read from the source tree (`server/console/public`), found from either location.
 */
export function consolePublicDir(): string {
  const candidates = [join(__dirname, 'public'), join(__dirname, '..', '..', '..', 'server', 'console', 'public')];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? candidates[candidates.length - 1];
}

/** Hashing both sides first makes the comparison constant-time in the token's length too. */
function tokenMatches(given: string, token: string): boolean {
  return safeEqual(hmacSha256Hex('herald-console-token', given), hmacSha256Hex('herald-console-token', token));
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

type AppParams = { Params: { appId: string } };

/**
 * The debug console: a static page under `/console` and its JSON API under `/console/api`, opened with the
 * admin token. The browser trades the token for an HttpOnly, SameSite=Strict cookie (EventSource cannot
 * send headers); scripts may send `Authorization: Bearer <token>` instead.
 */
export async function consolePlugin(fastify: FastifyInstance, opts: ConsolePluginOptions): Promise<void> {
  const { gateway, debugConsole, adminToken } = opts;
  const dir = opts.publicDir ?? consolePublicDir();
  const files = new Map<string, string>();
  for (const name of Object.keys(STATIC)) files.set(name, await readFile(join(dir, name), 'utf8'));
  // The cookie carries a value derived from the token, not the token itself.
  const session = hmacSha256Hex(adminToken, 'herald-console-session');
  const cookieFlags = `Path=/console; HttpOnly; SameSite=Strict${opts.secureCookie ? '; Secure' : ''}`;

  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, (body as string).length === 0 ? {} : JSON.parse(body as string));
    } catch {
      done(new HeraldError('BAD_JSON'), undefined);
    }
  });

  // One log line per refused console request; unexpected 5xx are logged by the server's error handler.
  fastify.addHook('onError', async (req, _reply, err: FastifyError | HeraldError) => {
    const status = err instanceof HeraldError ? err.status : (err.statusCode ?? 500);
    if (err instanceof HeraldError || status < 500) req.log.warn({ url: req.url.split('?')[0], status, reason: err.message }, 'console request refused');
  });

  const requireAdmin = (req: FastifyRequest): void => {
    const auth = req.headers.authorization;
    const cookie = cookieValue(req.headers.cookie, COOKIE);
    const ok = auth?.startsWith('Bearer ') ? tokenMatches(auth.slice(7), adminToken) : cookie !== undefined && safeEqual(cookie, session);
    if (!ok) fail('ADMIN_AUTH');
  };

  const appOf = (req: FastifyRequest<AppParams>): AppOptions => {
    requireAdmin(req);
    const app = gateway.apps.byId(req.params.appId);
    if (!app) fail('APP_NOT_FOUND', `App ${req.params.appId.slice(0, 64)} does not exist`);
    return app;
  };

  const page = (name: keyof typeof STATIC) => async (_req: FastifyRequest, reply: FastifyReply) =>
    reply.headers(PAGE_HEADERS).type(STATIC[name]).send(files.get(name));
  fastify.get('/console', page('index.html'));
  fastify.get('/console/', page('index.html'));
  fastify.get('/console/console.js', page('console.js'));
  fastify.get('/console/console.css', page('console.css'));

  fastify.post<{ Body: { token?: unknown } }>('/console/api/session', async (req, reply) => {
    const token = req.body?.token;
    if (typeof token !== 'string' || !tokenMatches(token, adminToken)) fail('ADMIN_AUTH');
    return reply.header('set-cookie', `${COOKIE}=${session}; ${cookieFlags}`).code(204).send();
  });

  fastify.delete('/console/api/session', async (_req, reply) =>
    reply.header('set-cookie', `${COOKIE}=; ${cookieFlags}; Max-Age=0`).code(204).send(),
  );

  fastify.get('/console/api/apps', async (req) => {
    requireAdmin(req);
    return { apps: gateway.apps.all().map((a) => ({ id: a.id, key: a.key, enabled: a.enabled, clientEvents: a.clientEvents })) };
  });

  fastify.get<AppParams>('/console/api/apps/:appId/events', async (req, reply) => {
    const app = appOf(req);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Tell nginx not to buffer the stream.
      'x-accel-buffering': 'no',
    });
    const detach = debugConsole.attach(app.id, res);
    res.on('close', detach);
  });

  // The same counts the event stream sends every 2 s, for scripts and health checks.
  fastify.get<AppParams>('/console/api/apps/:appId/stats', async (req) => debugConsole.stats(appOf(req).id));

  fastify.post<AppParams>('/console/api/apps/:appId/trigger', async (req) => {
    const app = appOf(req);
    if (!validateEventBody(req.body)) fail('BAD_REQUEST', schemaProblem(validateEventBody.errors));
    const e = req.body as EventBody;
    const channels = e.channels ?? (e.channel !== undefined ? [e.channel] : []);
    const data = checkEvent(app, e, channels);
    await gateway.publish(app, e.name, data, channels, e.socket_id);
    return { ok: true, channels };
  });

  fastify.post<AppParams & { Body: Record<string, unknown> }>('/console/api/apps/:appId/push-test', async (req) => {
    const app = appOf(req);
    if (!debugConsole.pushTest) fail('PUSH_NOT_CONFIGURED', 'push not configured');
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) fail('BAD_REQUEST', 'Body must be a JSON object');
    return { ok: true, result: await debugConsole.pushTest(app, body) };
  });

  // Browsers reconnect their event streams; without this, open streams would hold `close()` until the grace.
  fastify.addHook('preClose', async () => debugConsole.closeAll());
}
