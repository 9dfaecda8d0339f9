import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  channelNameProblem,
  channelType,
  encodeData,
  eventNameProblem,
  isSocketId,
  userIdProblem,
  utf8Length,
} from '../../sdk/protocol';
import { fail } from '../errors';
import type { Gateway } from '../Gateway';
import type { AppOptions } from '../options/Options';
import { type BatchBody, type EventBody, RESPONSES, schemaProblem, validateBatchBody, validateEventBody } from './rest-schemas';
import { appOf, parseBody, takeBudget, useSignedRequests } from './signed-requests';

type AppRequest = FastifyRequest<{ Params: { appId: string; channel?: string; userId?: string }; Querystring: Record<string, string> }>;

function infoList(info: unknown): string[] {
  return typeof info === 'string' && info.length > 0 ? info.split(',').map((s) => s.trim()) : [];
}

/** Checks one event against the app's limits; returns the data as the wire string. */
export function checkEvent(app: AppOptions, e: EventBody, channels: string[]): string {
  const nameProblem = eventNameProblem(e.name, app.maxEventNameLength);
  if (nameProblem) fail('BAD_REQUEST', nameProblem);
  if (channels.length === 0) fail('BAD_REQUEST', 'Name a channel in `channels` or `channel`');
  if (channels.length > app.maxChannelsPerEvent) fail('BAD_REQUEST', `An event may name at most ${app.maxChannelsPerEvent} channels`);
  for (const c of channels) {
    const p = channelNameProblem(c, app.maxChannelNameLength, true);
    if (p) fail('BAD_REQUEST', `${p}: ${c.slice(0, 64)}`);
  }
  if (e.socket_id !== undefined && !isSocketId(e.socket_id)) fail('BAD_REQUEST', 'socket_id must look like 1234.5678');
  const data = encodeData(e.data);
  const bytes = utf8Length(data);
  if (bytes > app.maxEventBytes) fail('PAYLOAD_TOO_LARGE', `Event data is ${bytes} bytes; the limit is ${app.maxEventBytes}`);
  for (const i of infoList(e.info)) {
    if (i !== 'user_count' && i !== 'subscription_count') fail('BAD_REQUEST', `Unknown info attribute: ${i}`);
  }
  return data;
}

/**
 * The Pusher REST API under `/apps/:appId` (protocol.md §3). Every route is signed; the signature is
 * checked on the raw body before it is parsed.
 */
export async function restPlugin(fastify: FastifyInstance, opts: { gateway: Gateway }): Promise<void> {
  const { gateway } = opts;

  useSignedRequests(fastify, gateway);

  fastify.post('/apps/:appId/events', { schema: { response: RESPONSES.events } }, async (req) => {
    const app = appOf(req);
    const body = parseBody(req);
    if (!validateEventBody(body)) fail('BAD_REQUEST', schemaProblem(validateEventBody.errors));
    const e = body as EventBody;
    const channels = e.channels ?? (e.channel !== undefined ? [e.channel] : []);
    const data = checkEvent(app, e, channels);
    await takeBudget(gateway, app, 'backend-events', app.maxBackendEventsPerSecond, channels.length, 'events');
    // Herald extension: a `push` block (Web Push fallback for subscribers with no live socket).
    const push = (body as { push?: unknown }).push;
    if (push !== undefined) {
      const sent = await gateway.publishWithPush(app, e.name, data, channels, e.socket_id, infoList(e.info), push);
      return { ...(sent.info ? { channels: sent.info } : {}), push: { publishId: sent.publishId } };
    }
    const info = await gateway.publish(app, e.name, data, channels, e.socket_id, infoList(e.info));
    return info ? { channels: info } : {};
  });

  fastify.post('/apps/:appId/batch_events', { schema: { response: RESPONSES.batch } }, async (req) => {
    const app = appOf(req);
    const body = parseBody(req);
    if (!validateBatchBody(body)) fail('BAD_REQUEST', schemaProblem(validateBatchBody.errors));
    const { batch } = body as BatchBody;
    if (batch.length === 0) fail('BAD_REQUEST', 'batch is empty');
    if (batch.length > app.maxBatchSize) fail('BAD_REQUEST', `A batch may hold at most ${app.maxBatchSize} events`);
    // Validate every event before publishing any, so a bad item does not leave the batch half sent.
    // Push fallback rides only on POST /events; ignoring it here would drop the notifications silently.
    if (batch.some((e) => (e as { push?: unknown }).push !== undefined)) fail('BAD_REQUEST', 'push is only accepted by POST /apps/:appId/events, not in batch_events');
    const datas = batch.map((e) => checkEvent(app, e, [e.channel]));
    await takeBudget(gateway, app, 'backend-events', app.maxBackendEventsPerSecond, batch.length, 'events');
    const results: Record<string, number>[] = [];
    let anyInfo = false;
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i];
      const info = await gateway.publish(app, e.name, datas[i], [e.channel], e.socket_id, infoList(e.info));
      if (info) anyInfo = true;
      results.push((info?.[e.channel] as Record<string, number> | undefined) ?? {});
    }
    return anyInfo ? { batch: results } : {};
  });

  fastify.get('/apps/:appId/channels', { schema: { response: RESPONSES.channels } }, async (req: AppRequest) => {
    const app = appOf(req);
    const prefix = req.query.filter_by_prefix ?? '';
    const info = infoList(req.query.info);
    for (const i of info) {
      if (i !== 'user_count' && i !== 'subscription_count') fail('BAD_REQUEST', `Unknown info attribute: ${i}`);
    }
    const withUsers = info.includes('user_count');
    if (withUsers && !prefix.startsWith('presence-')) fail('BAD_REQUEST', 'info=user_count requires filter_by_prefix=presence-');
    return { channels: await gateway.channelList(app, prefix, withUsers, info.includes('subscription_count')) };
  });

  fastify.get('/apps/:appId/channels/:channel', { schema: { response: RESPONSES.channel } }, async (req: AppRequest) => {
    const app = appOf(req);
    const channel = req.params.channel ?? '';
    const p = channelNameProblem(channel, app.maxChannelNameLength, true);
    if (p) fail('BAD_REQUEST', p);
    const info = infoList(req.query.info);
    const type = channelType(channel);
    for (const i of info) {
      if (i === 'user_count' && type.kind !== 'presence') fail('BAD_REQUEST', 'info=user_count is only for presence channels');
      else if (i === 'cache' && !type.cache) fail('BAD_REQUEST', 'info=cache is only for cache channels');
      else if (i !== 'user_count' && i !== 'subscription_count' && i !== 'cache') fail('BAD_REQUEST', `Unknown info attribute: ${i}`);
    }
    return gateway.channelInfo(app, channel, info);
  });

  fastify.get('/apps/:appId/channels/:channel/users', { schema: { response: RESPONSES.users } }, async (req: AppRequest) => {
    const app = appOf(req);
    const channel = req.params.channel ?? '';
    const p = channelNameProblem(channel, app.maxChannelNameLength);
    if (p) fail('BAD_REQUEST', p);
    if (channelType(channel).kind !== 'presence') fail('BAD_REQUEST', 'Users can only be listed for presence channels');
    return { users: await gateway.users(app, channel) };
  });

  fastify.post('/apps/:appId/users/:userId/terminate_connections', { schema: { response: RESPONSES.empty } }, async (req: AppRequest) => {
    const app = appOf(req);
    const userId = req.params.userId ?? '';
    const p = userIdProblem(userId);
    if (p) fail('BAD_REQUEST', p);
    await gateway.terminateUser(app, userId);
    return {};
  });
}
