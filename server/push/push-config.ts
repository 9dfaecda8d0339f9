/**
 * Web Push settings as the push module uses them: the top-level `push` block and each app's `push` block
 * (schema.ts) resolved into one object, with every problem reported at start-up naming its field.
 *
 * Push is on for an app when the top-level `push` block or the app's own `push` block is present, unless
 * the app says `enabled: false`. An app with push on needs a VAPID subject (`apps[].push.vapidSubject`, or
 * `push.subject` for every app): a real `mailto:` address or `https:` URL, since Apple refuses others.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { AppPushOptions, HeraldOptions, PushOptions } from '../options/Options';
import { defaultEncryptThreads } from './encrypt-pool';
import { VapidKey, vapidSubjectProblem, type VapidKeyPair } from './vapid';

/** Defaults of the top-level `push` fields (the schema shows the same values). */
export const PUSH_DEFAULTS = {
  ttlSeconds: 86_400,
  allowInsecureEndpoints: false,
  allowedHosts: ['fcm.googleapis.com', '*.push.services.mozilla.com', '*.push.apple.com', '*.notify.windows.com'],
  concurrency: 100,
  maxSocketsPerOrigin: 50,
  requestTimeoutMs: 15_000,
  maxAttempts: 8,
  deviceRequestsPerIpPerSecond: 20,
  reportsPerIpPerSecond: 1000,
  publishRetentionSeconds: 7 * 86_400,
  deviceIdleDays: 60,
} as const;

/** One app's push settings. */
export interface AppPushConfig {
  appId: string;
  subject: string;
  ttlSeconds: number;
  /** Keys from the configuration, or null: generated on first use and kept in the store. */
  configuredKey: (VapidKeyPair & { id: string }) | null;
}

/** The whole push configuration; null from `resolvePushConfig` when no app has push. */
export interface PushConfig {
  apps: Map<string, AppPushConfig>;
  allowInsecureEndpoints: boolean;
  allowedHosts: string[];
  concurrency: number;
  maxSocketsPerOrigin: number;
  /** Encryption threads (encrypt-pool.ts); 0: on the event loop. */
  encryptThreads: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  deviceRequestsPerIpPerSecond: number;
  /**
   * Service worker reports per client address per second: a budget of their own, because one publish makes
   * every browser behind a shared address (an office, a carrier's NAT) report within the same second.
   */
  reportsPerIpPerSecond: number;
  publishRetentionSeconds: number;
  /** Devices not registered again for this long are deleted; 0: never. */
  deviceIdleDays: number;
}

/** A push setting that stops start-up; the message starts with the field's path. */
export class PushConfigError extends Error {
  override readonly name = 'PushConfigError';
}

/** The stable id of a configured key pair: devices remember it, so it must not change across restarts. */
export function configuredKeyId(publicKey: string): string {
  return `cfg-${createHash('sha256').update(publicKey).digest('hex').slice(0, 16)}`;
}

function appEnabled(top: PushOptions | undefined, own: AppPushOptions | undefined): boolean {
  if (own?.enabled === false) return false;
  return top !== undefined || own !== undefined;
}

/** Resolves and checks the push settings; throws PushConfigError naming the field. */
export function resolvePushConfig(options: Pick<HeraldOptions, 'push' | 'apps'>): PushConfig | null {
  const top = options.push;
  if (top?.subject !== undefined) {
    const problem = vapidSubjectProblem(top.subject);
    if (problem) throw new PushConfigError(`config.push.subject: ${problem}`);
  }
  const apps = new Map<string, AppPushConfig>();
  options.apps.forEach((app, i) => {
    const own = app.push;
    if (!appEnabled(top, own)) return;
    const field = `config.apps.${i}.push`;
    const subject = own?.vapidSubject ?? top?.subject;
    if (subject === undefined) {
      throw new PushConfigError(`${field}.vapidSubject: a VAPID subject (mailto:you@example.com or an https: URL) is required to enable push for app ${app.id}; or set config.push.subject for every app`);
    }
    const problem = vapidSubjectProblem(subject);
    if (problem) throw new PushConfigError(`${own?.vapidSubject !== undefined ? `${field}.vapidSubject` : 'config.push.subject'}: ${problem}`);
    let configuredKey: AppPushConfig['configuredKey'] = null;
    if ((own?.vapidPublicKey === undefined) !== (own?.vapidPrivateKey === undefined)) {
      throw new PushConfigError(`${field}: vapidPublicKey and vapidPrivateKey must be given together`);
    }
    if (own?.vapidPublicKey !== undefined && own.vapidPrivateKey !== undefined) {
      const id = configuredKeyId(own.vapidPublicKey);
      try {
        new VapidKey({ id, subject, publicKey: own.vapidPublicKey, privateKey: own.vapidPrivateKey });
      } catch (err) {
        throw new PushConfigError(`${field}.vapidPublicKey: ${(err as Error).message}`);
      }
      configuredKey = { id, publicKey: own.vapidPublicKey, privateKey: own.vapidPrivateKey };
    }
    apps.set(app.id, { appId: app.id, subject, ttlSeconds: own?.ttlSeconds ?? top?.ttlSeconds ?? PUSH_DEFAULTS.ttlSeconds, configuredKey });
  });
  if (apps.size === 0) return null;
  return {
    apps,
    allowInsecureEndpoints: top?.allowInsecureEndpoints ?? PUSH_DEFAULTS.allowInsecureEndpoints,
    allowedHosts: [...(top?.allowedHosts ?? PUSH_DEFAULTS.allowedHosts)],
    concurrency: top?.concurrency ?? PUSH_DEFAULTS.concurrency,
    maxSocketsPerOrigin: top?.maxSocketsPerOrigin ?? PUSH_DEFAULTS.maxSocketsPerOrigin,
    encryptThreads: top?.encryptThreads ?? defaultEncryptThreads(),
    requestTimeoutMs: top?.requestTimeoutMs ?? PUSH_DEFAULTS.requestTimeoutMs,
    maxAttempts: top?.maxAttempts ?? PUSH_DEFAULTS.maxAttempts,
    deviceRequestsPerIpPerSecond: top?.deviceRequestsPerIpPerSecond ?? PUSH_DEFAULTS.deviceRequestsPerIpPerSecond,
    reportsPerIpPerSecond: top?.reportsPerIpPerSecond ?? PUSH_DEFAULTS.reportsPerIpPerSecond,
    publishRetentionSeconds: top?.publishRetentionSeconds ?? PUSH_DEFAULTS.publishRetentionSeconds,
    deviceIdleDays: top?.deviceIdleDays ?? PUSH_DEFAULTS.deviceIdleDays,
  };
}

/**
 * The SSRF guard's host rule (push.md §4.3.9) for `https:` endpoints: never a loopback, private-network
 * or link-local name or IP literal (push services use public host names), and, when `allowedHosts` is not
 * empty, only the hosts it lists (`host` exactly or `*.suffix`).
 */
export function pushHostAllowed(hostname: string, allowedHosts: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (host === '' || isIP(host) !== 0) return false;
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || host.endsWith('.internal') || !host.includes('.')) return false;
  if (allowedHosts.length === 0) return true;
  return allowedHosts.some((entry) => {
    const e = entry.toLowerCase();
    return e.startsWith('*.') ? host.endsWith(e.slice(1)) : host === e;
  });
}
