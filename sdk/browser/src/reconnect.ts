/**
 * How long to wait before reconnecting, chosen by what the close code asks for (`closeAction`, protocol.md
 * §1.4). Pure: the random source is passed in so tests can pin it.
 */
import type { CloseAction } from '../../protocol';

export interface BackoffOptions {
  /** First delay of the exponential series. */
  baseMs: number;
  /** Upper bound of the series. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 30_000 };

/** The longest "immediate" reconnect: spreads a server restart's clients over a quarter second. */
const RETRY_SPREAD_MS = 250;
/** 4100-4199 ask for at least a second (protocol.md §1.4). */
const MIN_BACKOFF_MS = 1000;

/** Exponential delay for attempt n (0-based), with "equal jitter": half fixed, half random. */
function exponential(attempt: number, o: BackoffOptions, random: () => number): number {
  const d = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(d / 2 + (random() * d) / 2);
}

/**
 * Milliseconds before the next attempt, or null when the client must not reconnect unchanged.
 * `attempt` counts failed attempts since the last successful connection.
 */
export function reconnectDelay(action: CloseAction, attempt: number, random: () => number = Math.random, o: BackoffOptions = DEFAULT_BACKOFF): number | null {
  switch (action) {
    case 'refused':
      return null;
    case 'tls_only':
      return 0;
    case 'retry':
      return attempt === 0 ? Math.round(random() * RETRY_SPREAD_MS) : exponential(attempt - 1, o, random);
    case 'backoff':
      return Math.max(MIN_BACKOFF_MS, exponential(attempt, o, random));
    case 'reconnect':
      return exponential(attempt, o, random);
  }
}
