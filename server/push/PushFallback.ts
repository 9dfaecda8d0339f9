import type { AppOptions } from '../options/Options';

/** A validated push request for one event, ready to be stored once the event has gone to live sockets. */
export interface PreparedPush {
  readonly publishId: string;
}

/**
 * What the gateway calls to give an event's offline subscribers a Web Push (the live-with-fallback path of
 * `POST /apps/:appId/events` with a `push` block). Implemented by PushService; the gateway knows nothing of
 * Web Push beyond this.
 *
 * Order: `prepare` before the event is published (it refuses a bad or oversized `push` block with 400/413,
 * or 501 when push is off, so nothing has been sent), then `fallback` after. A device counts as online, and
 * is skipped, when a socket that connected with its `device_id` is subscribed to any of the event's
 * channels on any node at that moment. Every other device holding an interest named like one of the
 * channels gets one notification, stored durably before `fallback` resolves.
 */
export interface PushFallback {
  prepare(app: AppOptions, channels: string[], event: string, push: unknown): PreparedPush;
  /** Resolves with the publish id once the publish and its deliveries are stored. */
  fallback(app: AppOptions, channels: string[], prepared: PreparedPush): Promise<string>;
}
