import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fail, HeraldError } from '../errors';
import type { Gateway } from '../Gateway';
import type { AppOptions } from '../options/Options';
import type { PushService } from '../push/PushService';
import { originAllowed } from '../ws/origin';

type DeviceRequest = FastifyRequest<{ Params: { appKey: string; deviceId?: string; interest?: string } }>;

const PREFLIGHT_MAX_AGE_SECONDS = 600;
/** Service worker reports: rate-limited apart from the rest of the device API (see reportsPerIpPerSecond). */
const REPORTS_ROUTE = '/push/v1/:appKey/reports';

function appOf(req: FastifyRequest): AppOptions {
  if (!req.heraldApp) throw new HeraldError('SERVER_ERROR', 'request reached a handler without an app');
  return req.heraldApp;
}

/**
 * The device API under `/push/v1/:appKey` (push.md §1.2, Beams' device API): called by browsers from the
 * app's pages, so it is public (the app key names the app), answers CORS for the app's `allowedOrigins`
 * (empty: any), and is rate-limited per client address.
 */
export async function pushDevicePlugin(fastify: FastifyInstance, opts: { gateway: Gateway; push: PushService | null }): Promise<void> {
  const { gateway, push } = opts;
  const service = (): PushService => push ?? fail('PUSH_NOT_CONFIGURED');

  // Browsers may send JSON as text/plain to skip a preflight; both are parsed the same way.
  fastify.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HeraldError('BAD_JSON'), undefined);
    }
  });

  fastify.addHook('onRequest', async (req: DeviceRequest, reply: FastifyReply) => {
    const app = gateway.apps.byKey(req.params.appKey);
    if (!app) fail('APP_NOT_FOUND', `App key ${req.params.appKey.slice(0, 64)} does not exist`);
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!originAllowed(app.allowedOrigins, origin)) fail('ORIGIN_NOT_ALLOWED', `Origin ${origin.slice(0, 80)} is not allowed`);
      // Set first, so errors are readable by the page too.
      reply.header('Access-Control-Allow-Origin', origin);
      reply.header('Vary', 'Origin');
    }
    if (!app.enabled) fail('APP_DISABLED');
    req.heraldApp = app;
  });

  fastify.addHook('preHandler', async (req: DeviceRequest) => {
    if (req.method === 'OPTIONS') return;
    const app = appOf(req);
    service().requireEnabled(app);
    const { config } = service();
    const budget =
      req.routeOptions.url === REPORTS_ROUTE
        ? { limit: config.reportsPerIpPerSecond, bucket: 'push-report-ip', what: 'reports' }
        : { limit: config.deviceRequestsPerIpPerSecond, bucket: 'push-ip', what: 'device requests' };
    if (budget.limit >= 0) {
      const wait = await gateway.state.takeRate(app.id, `${budget.bucket}:${req.ip}`, budget.limit, 1);
      if (wait > 0) fail('RATE_LIMITED', `More than ${budget.limit} push ${budget.what} per second from this address`, wait);
    }
  });

  fastify.options('/push/v1/:appKey/*', async (_req, reply) => {
    reply.header('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE');
    reply.header('Access-Control-Allow-Headers', 'Content-Type, Authorization');
    reply.header('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_SECONDS));
    return reply.code(204).send();
  });

  fastify.get('/push/v1/:appKey/vapid-public-key', async (req: DeviceRequest) => service().vapidPublicKey(appOf(req)));

  fastify.post('/push/v1/:appKey/devices', async (req: DeviceRequest, reply: FastifyReply) => {
    const r = await service().registerDevice(appOf(req), req.body);
    return reply.code(r.created ? 201 : 200).send({ deviceId: r.deviceId, vapidPublicKey: r.vapidPublicKey });
  });

  fastify.get('/push/v1/:appKey/devices/:deviceId/interests', async (req: DeviceRequest) => service().interests(appOf(req), req.params.deviceId ?? ''));

  fastify.put('/push/v1/:appKey/devices/:deviceId/interests', async (req: DeviceRequest) =>
    service().setInterests(appOf(req), req.params.deviceId ?? '', req.body),
  );

  fastify.post('/push/v1/:appKey/devices/:deviceId/interests/:interest', async (req: DeviceRequest) => {
    await service().addInterest(appOf(req), req.params.deviceId ?? '', req.params.interest ?? '');
    return {};
  });

  fastify.delete('/push/v1/:appKey/devices/:deviceId/interests/:interest', async (req: DeviceRequest) => {
    await service().removeInterest(appOf(req), req.params.deviceId ?? '', req.params.interest ?? '');
    return {};
  });

  fastify.delete('/push/v1/:appKey/devices/:deviceId', async (req: DeviceRequest) => {
    await service().deleteDevice(appOf(req), req.params.deviceId ?? '');
    return {};
  });

  fastify.post(REPORTS_ROUTE, async (req: DeviceRequest, reply: FastifyReply) => {
    await service().report(appOf(req), req.body);
    return reply.code(204).send();
  });

  fastify.put('/push/v1/:appKey/devices/:deviceId/subscription', async (req: DeviceRequest) =>
    service().renewSubscription(appOf(req), req.params.deviceId ?? '', req.body),
  );

  fastify.put('/push/v1/:appKey/devices/:deviceId/user', async (req: DeviceRequest) =>
    service().bindUser(appOf(req), req.params.deviceId ?? '', req.headers.authorization),
  );
}
