import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import type { Gateway } from '../Gateway';

/** Ends the cork the upgrade's onRequest hook put on the socket (a no-op if something else ended it). */
function uncork(socket: Socket): void {
  if (socket.writableCorked > 0) socket.uncork();
}

/**
 * The WebSocket transport: upgrades `/app/:key` and hands the socket to the gateway. It knows nothing of
 * the protocol beyond reading the handshake's query.
 */
export async function websocketPlugin(fastify: FastifyInstance, opts: { gateway: Gateway; maxMessageBytes: number }): Promise<void> {
  const { gateway } = opts;
  const log = fastify.log;
  // One listener for every socket, as @fastify/websocket's default error handler does: log, then terminate.
  function onSocketError(this: WebSocket, err: Error): void {
    log.error({ err }, 'websocket error');
    this.terminate();
  }
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
    {
      websocket: true,
      // ws writes the 101 answer, and the gateway then sends connection_established a few microtasks later:
      // two write syscalls back to back. Corked until the end of this turn of the event loop, they leave in
      // one: a connect then costs two syscalls instead of three. If the gateway waits on Redis, the 101 goes alone.
      onRequest: (request, _reply, done) => {
        const raw = request.raw.socket;
        raw.cork();
        setImmediate(uncork, raw);
        done();
      },
    },
    (socket, request) => {
      const q = request.query;
      // Let the upgrade request go once the handshake is read. @fastify/websocket leaves the upgrade's
      // ServerResponse assigned to the TCP socket and a per-socket error closure over the request and reply,
      // which would keep the whole request (headers, fastify Request/Reply, a child logger: ~3 KB) alive for
      // the life of every connection.
      const raw = request.raw.socket as Socket & { _httpMessage?: ServerResponse | null };
      raw._httpMessage?.detachSocket(raw);
      socket.removeAllListeners('error');
      socket.on('error', onSocketError);
      gateway.accept(socket, {
        appKey: request.params.key,
        protocol: q.protocol,
        origin: request.headers.origin,
        remoteAddress: request.ip,
        deviceId: q.device_id,
      });
    },
  );
}
