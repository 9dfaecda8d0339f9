/**
 * Web Push input rules shared by the server and both SDKs: Beams' limits on interests and push user ids
 * (push.md §1.3) and Web Push's longest TTL (push.md §2.6). Pure, so each side checks input as the server does.
 */
import { CHANNEL_NAME_CHARS } from './channels';

/** Longest interest name (Beams): channels allow 200 characters, interests 164. */
export const MAX_INTEREST_LENGTH = 164;
/** Longest push user id (Beams); presence user ids allow 128. */
export const MAX_PUSH_USER_ID_LENGTH = 164;
/** Interests one device may hold (Beams web SDK `MAX_INTERESTS_NUM`). */
export const MAX_INTERESTS_PER_DEVICE = 5000;
/** Interests one publish may name. */
export const MAX_INTERESTS_PER_PUBLISH = 100;
/** Users one publish may name. */
export const MAX_USERS_PER_PUBLISH = 1000;
/** Longest TTL, 28 days: FCM's cap and web-push's default; push services keep messages no longer. */
export const MAX_PUSH_TTL_SECONDS = 2_419_200;

/** What is wrong with an interest name; each side words its own error from it. */
export type InterestNameFault = 'empty' | 'too-long' | 'characters';

/** Why `name` is not a valid interest, or null: a non-empty string of at most 164 `CHANNEL_NAME_CHARS`. */
export function interestNameFault(name: unknown): InterestNameFault | null {
  if (typeof name !== 'string' || name.length === 0) return 'empty';
  if (name.length > MAX_INTEREST_LENGTH) return 'too-long';
  if (!CHANNEL_NAME_CHARS.test(name)) return 'characters';
  return null;
}

/** Why `name` is not a valid interest, as the server words it, or null. */
export function interestNameProblem(name: unknown): string | null {
  const fault = interestNameFault(name);
  if (fault === null) return null;
  if (fault === 'empty') return 'Interest names must be non-empty strings';
  const text = name as string;
  if (fault === 'too-long') return `Interest name is longer than ${MAX_INTEREST_LENGTH} characters: ${text.slice(0, 32)}…`;
  return `Interest name may only contain A-Z a-z 0-9 _ - = @ , . ; : ${text.slice(0, 64)}`;
}

/** Why `id` is not a valid push user id, or null. */
export function pushUserIdProblem(id: unknown): string | null {
  if (typeof id !== 'string' || id.length === 0) return 'User ids must be non-empty strings';
  if (id.length > MAX_PUSH_USER_ID_LENGTH) return `User id is longer than ${MAX_PUSH_USER_ID_LENGTH} characters`;
  return null;
}

/** Longest device id a socket may name (`device_id` on connect, or `herald:device`). */
export const MAX_DEVICE_ID_LENGTH = 128;

/** Whether `id` can name a Web Push device: a non-empty string of at most 128 characters. */
export function isDeviceId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_DEVICE_ID_LENGTH;
}

/**
 * Herald's extension to the Pusher protocol: a client names (or, with null, forgets) the Web Push device of
 * an open connection, so the device counts as live on the socket's channels without reconnecting. The
 * server answers `herald:device_set` with the same `device_id`.
 */
export const DEVICE_EVENT = 'herald:device';
export const DEVICE_SET_EVENT = 'herald:device_set';
