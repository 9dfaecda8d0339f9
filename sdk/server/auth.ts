/**
 * Signatures an app's auth endpoint returns to clients (protocol.md §2), after pusher-http-node's
 * `auth.js`. The strings to sign come from `sdk/protocol`; only the HMAC is computed here.
 */
import { channelAuthString, channelType, userAuthString, utf8Length } from '../protocol';
import { hmacSha256Hex } from '../protocol/node/hmac';
import { channelSharedSecret } from './encryption';
import { HeraldInputError } from './errors';
import type { ResolvedOptions } from './options';
import { checkChannel, checkSocketId, checkUserId } from './validate';

/** The member a presence subscription joins as. Numeric ids are accepted, as pusher-http-node does. */
export interface PresenceChannelData {
  user_id: string | number;
  user_info?: Record<string, unknown>;
}

/** What an auth endpoint returns for `pusher:subscribe`. */
export interface ChannelAuthResponse {
  auth: string;
  channel_data?: string;
  /** Only for `private-encrypted-` channels: base64 of the channel's 32-byte key (not signed). */
  shared_secret?: string;
}

/** The user a connection signs in as (`pusher:signin`). */
export interface UserData {
  id: string;
  user_info?: Record<string, unknown>;
  /** Users whose online status this user follows (at most 100, protocol.md §1.11). */
  watchlist?: string[];
  [extra: string]: unknown;
}

export interface UserAuthResponse {
  auth: string;
  user_data: string;
}

export function authorizeChannel(o: ResolvedOptions, socketId: string, channel: string, presenceData?: PresenceChannelData): ChannelAuthResponse {
  checkSocketId(socketId);
  checkChannel(channel, o.limits);
  const kind = channelType(channel).kind;
  if (kind === 'public') throw new HeraldInputError(`Public channels need no authorization: '${channel}'`);
  let channelData: string | undefined;
  if (presenceData !== undefined) {
    if (kind !== 'presence') throw new HeraldInputError(`Presence data is only for presence- channels, not '${channel}'`);
    if (presenceData === null || typeof presenceData !== 'object') throw new HeraldInputError('Presence data must be an object with user_id');
    checkUserId(typeof presenceData.user_id === 'number' ? String(presenceData.user_id) : presenceData.user_id);
    channelData = JSON.stringify(presenceData);
    const infoBytes = utf8Length(JSON.stringify(presenceData.user_info ?? {}));
    if (infoBytes > o.limits.maxPresenceMemberBytes) {
      throw new HeraldInputError(`user_info is ${infoBytes} bytes; the limit is ${o.limits.maxPresenceMemberBytes}`);
    }
  }
  const result: ChannelAuthResponse = { auth: `${o.key}:${hmacSha256Hex(o.secret, channelAuthString(socketId, channel, channelData))}` };
  if (channelData !== undefined) result.channel_data = channelData;
  if (kind === 'private-encrypted') {
    if (!o.encryptionMasterKey) throw new HeraldInputError('Set encryptionMasterKeyBase64 to authorize private-encrypted- channels');
    result.shared_secret = channelSharedSecret(channel, o.encryptionMasterKey).toString('base64');
  }
  return result;
}

export function authenticateUser(o: ResolvedOptions, socketId: string, userData: UserData): UserAuthResponse {
  checkSocketId(socketId);
  if (userData === null || typeof userData !== 'object') throw new HeraldInputError('User data must be an object with id');
  checkUserId(userData.id);
  if (userData.watchlist !== undefined) {
    if (!Array.isArray(userData.watchlist) || userData.watchlist.some((w) => typeof w !== 'string' || w === '')) {
      throw new HeraldInputError('watchlist must be an array of user ids');
    }
    if (userData.watchlist.length > o.limits.maxWatchlistSize) {
      throw new HeraldInputError(`watchlist has ${userData.watchlist.length} ids; the limit is ${o.limits.maxWatchlistSize}`);
    }
  }
  const serialized = JSON.stringify(userData);
  return { auth: `${o.key}:${hmacSha256Hex(o.secret, userAuthString(socketId, serialized))}`, user_data: serialized };
}
