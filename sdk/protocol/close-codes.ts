/**
 * Close codes and what a client does on each (protocol.md §1.4; the same mapping as pusher-js
 * `getCloseAction`), shared by the server (which picks codes) and the browser SDK (which acts on them).
 */

export type CloseAction = 'tls_only' | 'refused' | 'backoff' | 'retry' | 'reconnect';

/** What a client should do after the server closed with `code`. */
export function closeAction(code: number): CloseAction {
  if (code === 4000) return 'tls_only';
  if (code >= 4000 && code < 4100) return 'refused';
  if (code >= 4100 && code < 4200) return 'backoff';
  if (code >= 4200 && code < 4300) return 'retry';
  if (code >= 4300 && code < 4400) return 'refused';
  if (code >= 1002 && code <= 1004) return 'backoff';
  return 'reconnect';
}
