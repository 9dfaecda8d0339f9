/**
 * Bodies of `POST /events` and `POST /batch_events` (protocol.md §3), after pusher-http-node's
 * `events.js`: data JSON-encoded once, encrypted for `private-encrypted-` channels, and checked against
 * the limits before sending. Unlike pusher-http-node, the caller's batch is not mutated.
 */
import { channelType, encodeData } from '../protocol';
import { encryptData } from './encryption';
import { HeraldInputError } from './errors';
import type { ResolvedOptions } from './options';
import { checkTriggerPush, type TriggerPush } from './push';
import { checkChannel, checkChannels, checkDataSize, checkEventName, checkSocketId, infoParam } from './validate';

/** Attributes `info` may ask for on a trigger. */
export const TRIGGER_INFO = ['user_count', 'subscription_count'] as const;

export interface TriggerParams {
  /** Socket that should not receive the event (the sender's own). */
  socketId?: string;
  /** pusher-http-node's spelling of `socketId`. */
  socket_id?: string;
  /** `user_count` (presence) and/or `subscription_count`, returned per channel. */
  info?: string | string[];
  /**
   * Web Push (a `web` block) for the devices interested in these channels that have no live connection
   * subscribed to them. The response then carries the publish id (`push.publishId`).
   */
  push?: TriggerPush;
}

export interface BatchEvent {
  channel: string;
  name: string;
  data: unknown;
  socketId?: string;
  socket_id?: string;
  info?: string | string[];
}

export interface ChannelAttributes {
  user_count?: number;
  subscription_count?: number;
}

export interface TriggerResult {
  channels?: Record<string, ChannelAttributes>;
  /** With `push`: the publish that carries the notifications (see `getPublish`). */
  push?: { publishId: string };
}

export interface BatchResult {
  batch?: ChannelAttributes[];
}

function wireData(o: ResolvedOptions, channel: string, data: unknown): string {
  if (channelType(channel).kind !== 'private-encrypted') return encodeData(data);
  if (!o.encryptionMasterKey) throw new HeraldInputError('Set encryptionMasterKeyBase64 to trigger on private-encrypted- channels');
  return encryptData(channel, data, o.encryptionMasterKey);
}

export function triggerBody(
  o: ResolvedOptions,
  channels: string | string[],
  event: string,
  data: unknown,
  params: TriggerParams = {},
  allowUserChannel = false,
): Record<string, unknown> {
  const list = Array.isArray(channels) ? channels : [channels];
  checkEventName(event, o.limits);
  checkChannels(list, o.limits, allowUserChannel);
  const encrypted = list.filter((c) => channelType(c).kind === 'private-encrypted');
  // Each encrypted channel has its own key, so one ciphertext cannot serve several channels.
  if (encrypted.length > 0 && list.length > 1) throw new HeraldInputError('Trigger to one private-encrypted- channel at a time');
  const socketId = params.socketId ?? params.socket_id;
  if (socketId !== undefined) checkSocketId(socketId);
  const wire = wireData(o, list[0], data);
  checkDataSize(wire, o.limits);
  if (params.push !== undefined) checkTriggerPush(list, params.push);
  return { name: event, data: wire, channels: list, socket_id: socketId, info: infoParam(params.info, TRIGGER_INFO), push: params.push };
}

export function batchBody(o: ResolvedOptions, batch: BatchEvent[]): Record<string, unknown> {
  if (!Array.isArray(batch) || batch.length === 0) throw new HeraldInputError('A batch needs at least one event');
  if (batch.length > o.limits.maxBatchSize) throw new HeraldInputError(`A batch may hold at most ${o.limits.maxBatchSize} events, got ${batch.length}`);
  return {
    batch: batch.map((e, i) => {
      try {
        checkEventName(e.name, o.limits);
        checkChannel(e.channel, o.limits);
        const socketId = e.socketId ?? e.socket_id;
        if (socketId !== undefined) checkSocketId(socketId);
        const wire = wireData(o, e.channel, e.data);
        checkDataSize(wire, o.limits);
        return { name: e.name, channel: e.channel, data: wire, socket_id: socketId, info: infoParam(e.info, TRIGGER_INFO) };
      } catch (err) {
        if (err instanceof HeraldInputError) throw new HeraldInputError(`batch[${i}]: ${err.message}`);
        throw err;
      }
    }),
  };
}
