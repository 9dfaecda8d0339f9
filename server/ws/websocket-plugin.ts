import type { FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import type { Gateway } from '../Gateway';

/**
 * The WebSocket transport: upgrades `/app/:key` and hands the socket to the gateway. It knows nothing of
 * the protocol beyond reading the handshake's query.
 */
export async function websocketPlugin(fastify: FastifyInstance, opts: { gateway: Gateway; maxMessageBytes: number }): Promise<void> {
  const { gateway } = opts;
  await fastify.register(websocket, {
    options: {
      maxPayload: opts.maxMessageBytes,
      // Compression would cost CPU per recipient; Pusher clients do not need it.
      perMessageDeflate: false,
      clientTracking: false,
    },
  });
  fastify.get<{ Params: { key: string }; Querystring: Record<string, string | undefined> }>(
    '/app/:key',
    { websocket: true },
    (socket, request) => {
      const q = request.query;
      gateway.accept(socket, {
        appKey: request.params.key,
        protocol: q.protocol,
        origin: request.headers.origin,
        remoteAddress: request.ip,
        deviceId: typeof q.device_id === 'string' && q.device_id.length <= 128 ? q.device_id : null,
      });
    },
  );
}
