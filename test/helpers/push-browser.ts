/**
 * The user agent's side of Web Push encryption, for tests: a browser's P-256 key pair and auth secret, and
 * the independent `http_ece` implementation that decrypts what the server encrypted for it.
 */
import { createECDH, randomBytes, type ECDH } from 'node:crypto';

interface HttpEce {
  decrypt(buffer: Buffer, params: { version: 'aes128gcm'; privateKey: ECDH; authSecret: Buffer }): Buffer;
}
// http_ece ships no type declarations, so it is loaded untyped and given the one signature used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const ece = require('http_ece') as HttpEce;

/** A browser's push keys: the ECDH object, the auth secret, and both as `PushSubscription.toJSON()` gives them. */
export interface PushBrowser {
  ecdh: ECDH;
  auth: Buffer;
  keys: { p256dh: string; auth: string };
}

export function pushBrowser(): PushBrowser {
  const ecdh = createECDH('prime256v1');
  const auth = randomBytes(16);
  return { ecdh, auth, keys: { p256dh: ecdh.generateKeys().toString('base64url'), auth: auth.toString('base64url') } };
}
