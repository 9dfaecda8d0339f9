/**
 * Request and channel signatures the load generator computes locally (protocol.md §2 and §3). The strings
 * to sign come from the shared protocol package so that the benchmark and the server cannot drift apart;
 * `checkSigningVectors` proves them against the published vectors before any load is sent.
 */
import { hmacSha256Hex, md5Hex } from '../sdk/protocol/node/hmac';
import { channelAuthString, restStringToSign } from '../sdk/protocol/signing';

/** Credentials of the app the benchmark drives. */
export interface AppCredentials {
  appId: string;
  key: string;
  secret: string;
}

/**
 * Path + query of a signed REST request. `timestampS` is a parameter (not read from the clock) so that the
 * test vector can be reproduced and so that pre-signed pools share one timestamp.
 */
export function signedRestPath(
  app: AppCredentials,
  method: string,
  path: string,
  body: string | Buffer,
  timestampS: number,
): string {
  const params: Record<string, string> = {
    auth_key: app.key,
    auth_timestamp: String(timestampS),
    auth_version: '1.0',
  };
  if (body.length > 0) params.body_md5 = md5Hex(body);
  const signature = hmacSha256Hex(app.secret, restStringToSign(method, path, params));
  const query = Object.entries(params)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
  return `${path}?${query}&auth_signature=${signature}`;
}

/** `auth` value of a presence `pusher:subscribe`: `key:HMAC(secret, socket_id:channel:channel_data)`. */
export function presenceAuth(app: AppCredentials, socketId: string, channel: string, channelData: string): string {
  return `${app.key}:${hmacSha256Hex(app.secret, channelAuthString(socketId, channel, channelData))}`;
}

/** Throws when the signing code does not reproduce the vectors of protocol.md §2–3. */
export function checkSigningVectors(): void {
  const app = { appId: '3', key: '278d425bdf160c739803', secret: '7ad3773142a6692b25b8' };
  const body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
  const rest = signedRestPath(app, 'POST', '/apps/3/events', body, 1353088179);
  const wantRest = 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c';
  if (!rest.includes('body_md5=ec365a775a4cd0599faeb73354201b6f') || !rest.endsWith(`auth_signature=${wantRest}`)) {
    throw new Error(`REST signing does not match protocol.md §3 vector: ${rest}`);
  }
  const presence = presenceAuth(
    app,
    '1234.1234',
    'presence-foobar',
    '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}',
  );
  const wantPresence = `${app.key}:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c`;
  if (presence !== wantPresence) throw new Error(`presence signing does not match protocol.md §2 vector: ${presence}`);
}
