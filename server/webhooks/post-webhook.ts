/** One webhook POST over keep-alive sockets, with a deadline covering connect to the last response byte. */
import type { Agent } from 'undici';
import { outboundAgent, post } from '../outbound/post';

/**
 * Idle sockets close before the common 5 s server keep-alive timeout, so a reused socket is rarely one the
 * receiver is closing at that very moment.
 */
const IDLE_SOCKET_MS = 4 * 1000;
/** Connections per receiving origin. */
const CONNECTIONS_PER_ORIGIN = 32;

/** Keep-alive pools shared by every target of a sender; `destroy()` closes their sockets. */
export class WebhookAgents {
  readonly dispatcher: Agent = outboundAgent(CONNECTIONS_PER_ORIGIN, IDLE_SOCKET_MS);

  destroy(): void {
    void this.dispatcher.destroy();
  }
}

/** A request that did not produce a response: connection error, timeout or abort. */
export class WebhookRequestError extends Error {
  override readonly name = 'WebhookRequestError';
}

/**
 * Posts `body` and resolves with the response status once the response is fully read (so the socket
 * returns to the pool). Rejects on connection errors, on `timeoutMs` and when `signal` aborts.
 */
export async function postWebhook(
  url: URL,
  body: Buffer,
  headers: Record<string, string>,
  agents: WebhookAgents,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<number> {
  const answer = await post(agents.dispatcher, url, headers, body, {
    timeoutMs,
    timeoutError: () => new WebhookRequestError(`timed out after ${timeoutMs} ms`),
    signal,
    abortError: () => new WebhookRequestError('aborted: server stopping'),
  });
  return answer.status;
}
