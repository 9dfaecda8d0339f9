import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics/Metrics';

const TRIGGER_ROUTES = new Set(['/apps/:appId/events', '/apps/:appId/batch_events']);

/**
 * Serves `/metrics`, counts every HTTP answer by route pattern (bounded label values; unmatched paths
 * share one) and times REST triggers. Its hooks apply to the whole server, so it is registered before the
 * other plugins.
 */
export async function metricsPlugin(fastify: FastifyInstance, opts: { metrics: Metrics }): Promise<void> {
  const { metrics } = opts;
  // One hook for both (each hook is a step in every request's chain). By the time a trigger is answered its
  // frames have been written to local sockets (idle node) or queued for the flush at the end of this poll
  // phase (busy node; see ws/outbox.ts).
  fastify.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url;
    metrics.httpRequest(req.method, route ?? 'unmatched', reply.statusCode);
    if (reply.statusCode < 300 && route !== undefined && TRIGGER_ROUTES.has(route)) metrics.triggerToSend(reply.elapsedTime / 1000);
    done();
  });
  fastify.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
}

// Like fastify-plugin: the hooks belong to the parent instance, not to an encapsulated child.
(metricsPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
