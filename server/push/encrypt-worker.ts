/**
 * The body of a push encryption thread (encrypt-pool.ts): encrypts each message it is handed and answers
 * with the request body, or with what `encryptPayload` threw.
 */
import { parentPort } from 'node:worker_threads';
import { HeraldError } from '../errors';
import { encryptPayload } from './encrypt-payload';
import type { EncryptReply, EncryptRequest } from './encrypt-pool';

const port = parentPort;
if (port === null) throw new Error('encrypt-worker.js runs as a worker thread of encrypt-pool.ts');

port.on('message', (m: EncryptRequest) => {
  let reply: EncryptReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const body = encryptPayload(m.plaintext, { p256dh: m.p256dh, auth: m.auth });
    // Its own buffer of its own size, handed over rather than copied (see `exact` in encrypt-pool.ts).
    const own = new Uint8Array(body);
    reply = { id: m.id, body: own };
    transfer = [own.buffer];
  } catch (err) {
    reply = {
      id: m.id,
      error: err instanceof HeraldError ? { message: err.message, herald: err.code } : { message: err instanceof Error ? err.message : String(err) },
    };
  }
  port.postMessage(reply, transfer);
});
