import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fail } from '../errors';
import type { Gateway } from '../Gateway';
import type { PushService } from '../push/PushService';
import { appOf, parseBody, useSignedRequests } from './signed-requests';

type PushRequest = FastifyRequest<{ Params: { appId: string; publishId?: string; userId?: string; deviceId?: string } }>;

/**
 * The push publish API under `/apps/:appId/push` (Beams' publish API, push.md §1.2), signed exactly like the
 * REST API (verify-request.ts): the signature is checked on the raw body before it is parsed. Accepted
 * publishes are stored before the 202.
 */
export async function pushPublishPlugin(fastify: FastifyInstance, opts: { gateway: Gateway; push: PushService | null }): Promise<void> {
  const { gateway, push } = opts;
  const service = (): PushService => push ?? fail('PUSH_NOT_CONFIGURED');

  useSignedRequests(fastify, gateway);
  // After the signature check: a push route of an app without push answers 501.
  fastify.addHook('preHandler', async (req: PushRequest) => {
    service().requireEnabled(appOf(req));
  });

  fastify.post('/apps/:appId/push/interests', async (req: PushRequest, reply: FastifyReply) =>
    reply.code(202).send(await service().publishToInterests(appOf(req), parseBody(req, true))),
  );

  fastify.post('/apps/:appId/push/users', async (req: PushRequest, reply: FastifyReply) =>
    reply.code(202).send(await service().publishToUsers(appOf(req), parseBody(req, true))),
  );

  fastify.get('/apps/:appId/push/publishes/:publishId', async (req: PushRequest) => service().publishStatus(appOf(req), req.params.publishId ?? ''));

  fastify.delete('/apps/:appId/push/users/:userId', async (req: PushRequest) => service().deleteUser(appOf(req), req.params.userId ?? ''));

  fastify.post('/apps/:appId/push/devices/:deviceId/test', async (req: PushRequest, reply: FastifyReply) =>
    reply.code(202).send(await service().testDevice(appOf(req), req.params.deviceId ?? '', parseBody(req, false))),
  );

  fastify.post('/apps/:appId/push/vapid/rotate', async (req: PushRequest) => service().rotateVapidKey(appOf(req)));
}
