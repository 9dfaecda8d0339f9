/**
 * The two yardsticks of the issue's Web Push row, measured on the server's own core in the same run as
 * Herald, because this VM's speed drifts by tens of % between sessions and a figure from another day says
 * little about today's:
 * - crypto floor: `web-push`'s `encrypt()` alone (RFC 8291 with a fresh ephemeral key, node:crypto), the
 *   work no sender can skip. The issue's "≈ 3,900/s" is 1 s ÷ this.
 * - stock web-push: `generateRequestDetails()` (the same encryption plus a VAPID JWT signed per message,
 *   as `sendNotification` does), before any HTTP. The issue's "≈ 800/s" is 1 s ÷ this; a real
 *   `sendNotification` adds its request on top, so this is its ceiling.
 *
 * Both run warm, one after the other, timed by this process's own CPU time (process.cpuUsage).
 * Run as `taskset -c CPU node dist/bench/push-floor.js COUNT`; prints one JSON line (`PushFloor`).
 */
import { createECDH, randomBytes } from 'node:crypto';
import webpush from 'web-push';

export interface PushFloor {
  count: number;
  /** CPU µs per `encrypt()` and per `generateRequestDetails()`. */
  encryptUs: number;
  requestDetailsUs: number;
  /** 1 s of one core divided by the above. */
  cryptoFloorPerS: number;
  stockWebPushPerS: number;
}

/** CPU µs per call of `fn`, after `warm` untimed calls. */
function cpuUsPerCall(count: number, warm: number, fn: () => unknown): number {
  for (let i = 0; i < warm; i++) fn();
  const start = process.cpuUsage();
  for (let i = 0; i < count; i++) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count;
}

export function measurePushFloor(count: number): PushFloor {
  // A payload the size of the bench publish's ({"notification":{"title":"x"}} plus Herald's envelope).
  const payload = JSON.stringify({ notification: { title: 'x' }, data: { publishId: 'p'.repeat(24) } });
  const subscription = {
    endpoint: 'https://push.example.net/push/abcdef',
    keys: { p256dh: createECDH('prime256v1').generateKeys().toString('base64url'), auth: randomBytes(16).toString('base64url') },
  };
  const vapid = webpush.generateVAPIDKeys();
  const options = { TTL: 60, vapidDetails: { subject: 'mailto:bench@example.com', publicKey: vapid.publicKey, privateKey: vapid.privateKey } };
  const warm = Math.max(20, Math.min(200, count >> 2));

  const encryptUs = cpuUsPerCall(count, warm, () => webpush.encrypt(subscription.keys.p256dh, subscription.keys.auth, payload, 'aes128gcm'));
  const requestDetailsUs = cpuUsPerCall(count, warm, () => webpush.generateRequestDetails(subscription, payload, options));
  return pushFloor(count, encryptUs, requestDetailsUs);
}

/** The figures from CPU µs per call; the mean of two measurements is `pushFloor(a.count + b.count, mean…)`. */
export function pushFloor(count: number, encryptUs: number, requestDetailsUs: number): PushFloor {
  const round1 = (x: number): number => Math.round(x * 10) / 10;
  return {
    count,
    encryptUs: round1(encryptUs),
    requestDetailsUs: round1(requestDetailsUs),
    cryptoFloorPerS: Math.round(1e6 / encryptUs),
    stockWebPushPerS: Math.round(1e6 / requestDetailsUs),
  };
}

if (require.main === module) {
  const count = Number(process.argv[2] ?? '2000');
  if (!Number.isInteger(count) || count < 1) throw new Error(`usage: push-floor.js COUNT (got ${process.argv[2]})`);
  process.stdout.write(`${JSON.stringify(measurePushFloor(count))}\n`);
}
