/**
 * Calls an app's auth endpoints the way pusher-js does (form-encoded POST of `socket_id` and
 * `channel_name`, JSON answer), so endpoints written for pusher-js work unchanged.
 */
import type { ChannelAuthData, ResolvedOptions, UserAuthData } from './options';

/** An auth endpoint that failed; `status` is set when it answered. */
export class AuthError extends Error {
  override readonly name = 'AuthError';

  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

async function post<T>(url: string, form: Record<string, string>, headers: Record<string, string>): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json', ...headers },
      body: new URLSearchParams(form).toString(),
    });
  } catch (err) {
    throw new AuthError(`Could not reach ${url}: ${(err as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) throw new AuthError(`${url} answered ${res.status}: ${text.slice(0, 200)}`, res.status);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new AuthError(`${url} did not answer JSON: ${text.slice(0, 200)}`, res.status);
  }
}

export function authorizeChannel(o: ResolvedOptions, socketId: string, channelName: string): Promise<ChannelAuthData> {
  if (o.authorizer) return o.authorizer(socketId, channelName);
  if (!o.authEndpoint) return Promise.reject(new AuthError(`Set authEndpoint (or authorizer) to subscribe to ${channelName}`));
  return post<ChannelAuthData>(o.authEndpoint, { socket_id: socketId, channel_name: channelName }, o.authHeaders);
}

export function authenticateUser(o: ResolvedOptions, socketId: string): Promise<UserAuthData> {
  const u = o.userAuthentication;
  if (u.handler) return u.handler(socketId);
  if (!u.endpoint) return Promise.reject(new AuthError('Set userAuthentication.endpoint (or handler) to sign in'));
  return post<UserAuthData>(u.endpoint, { socket_id: socketId }, u.headers ?? {});
}
