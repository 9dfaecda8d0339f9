/**
 * Channel-name rules of the Pusher protocol (protocol.md §1.6), as pure functions shared by the server and
 * both SDKs. Prefixes are matched whole, dash included: soketi's unanchored regexes and Reverb's
 * `startsWith('private')` both misclassify names such as `privateroom`.
 */

/** The kinds of channel the protocol knows. `user` is `#server-to-user-{id}`. */
export type ChannelKind = 'public' | 'private' | 'private-encrypted' | 'presence' | 'user';

export interface ChannelType {
  kind: ChannelKind;
  /** Cache channels keep their last server event (protocol.md §1.10). */
  cache: boolean;
}

/** Characters allowed in channel names, event-free interest names and user ids. */
export const CHANNEL_NAME_CHARS = /^[A-Za-z0-9_\-=@,.;]+$/;
export const SERVER_TO_USER_PREFIX = '#server-to-user-';
/** The longest channel name any official server SDK sends (pusher-http-node allows 200). */
export const DEFAULT_MAX_CHANNEL_NAME_LENGTH = 200;

/** Classifies a channel by its prefix. Longest prefixes first so `private-encrypted-` wins over `private-`. */
export function channelType(name: string): ChannelType {
  if (name.startsWith(SERVER_TO_USER_PREFIX)) return { kind: 'user', cache: false };
  if (name.startsWith('private-encrypted-cache-')) return { kind: 'private-encrypted', cache: true };
  if (name.startsWith('private-encrypted-')) return { kind: 'private-encrypted', cache: false };
  if (name.startsWith('private-cache-')) return { kind: 'private', cache: true };
  if (name.startsWith('private-')) return { kind: 'private', cache: false };
  if (name.startsWith('presence-cache-')) return { kind: 'presence', cache: true };
  if (name.startsWith('presence-')) return { kind: 'presence', cache: false };
  if (name.startsWith('cache-')) return { kind: 'public', cache: true };
  return { kind: 'public', cache: false };
}

/** True for channels that need a signature to subscribe. */
export function requiresAuth(kind: ChannelKind): boolean {
  return kind === 'private' || kind === 'private-encrypted' || kind === 'presence';
}

/** True for channels on which clients may trigger `client-` events (protocol.md §1.7). */
export function allowsClientEvents(kind: ChannelKind): boolean {
  return kind === 'private' || kind === 'private-encrypted' || kind === 'presence';
}

/**
 * Checks a channel name; returns a reason when it is invalid, else null. `#server-to-user-{id}` is valid
 * only when `allowUserChannel` is set (REST triggers and the signed-in user's own subscription).
 */
export function channelNameProblem(
  name: unknown,
  maxLength: number = DEFAULT_MAX_CHANNEL_NAME_LENGTH,
  allowUserChannel = false,
): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'Channel name must be a non-empty string';
  if (name.length > maxLength) return `Channel name is longer than ${maxLength} characters`;
  if (name.startsWith(SERVER_TO_USER_PREFIX)) {
    if (!allowUserChannel) return 'Channel names starting with # are reserved';
    const userId = name.slice(SERVER_TO_USER_PREFIX.length);
    return userIdProblem(userId);
  }
  if (!CHANNEL_NAME_CHARS.test(name)) return 'Channel name may contain only A-Z a-z 0-9 _ - = @ , . ;';
  return null;
}

/** The user id named by a `#server-to-user-{id}` channel, or null. */
export function serverToUserId(name: string): string | null {
  return name.startsWith(SERVER_TO_USER_PREFIX) ? name.slice(SERVER_TO_USER_PREFIX.length) : null;
}

/** Presence user ids: non-empty, at most 128 characters (protocol.md §1.9). */
export const MAX_USER_ID_LENGTH = 128;

export function userIdProblem(id: unknown): string | null {
  if (typeof id !== 'string' || id.length === 0) return 'User id must be a non-empty string';
  if (id.length > MAX_USER_ID_LENGTH) return `User id is longer than ${MAX_USER_ID_LENGTH} characters`;
  return null;
}
