/**
 * Input checks run before a request is sent, with the same pure rules the server applies (`sdk/protocol`),
 * so a bad call fails fast with a clear message instead of a 400 from Herald.
 */
import {
  channelNameProblem,
  eventNameProblem,
  interestNameFault,
  isSocketId,
  MAX_INTEREST_LENGTH,
  userIdProblem,
  utf8Length,
} from '../protocol';
import { HeraldInputError } from './errors';
import type { Limits } from './options';

export function checkSocketId(socketId: unknown): asserts socketId is string {
  if (!isSocketId(socketId)) throw new HeraldInputError(`Invalid socket id: '${String(socketId)}' (expected digits.digits)`);
}

/** A channel an app may trigger on; `#server-to-user-{id}` only where `allowUserChannel`. */
export function checkChannel(name: unknown, limits: Limits, allowUserChannel = false): asserts name is string {
  const problem = channelNameProblem(name, limits.maxChannelNameLength, allowUserChannel);
  if (problem) throw new HeraldInputError(`${problem}: '${String(name).slice(0, 64)}'`);
}

export function checkChannels(channels: unknown[], limits: Limits, allowUserChannel = false): void {
  if (channels.length === 0) throw new HeraldInputError('Name at least one channel');
  if (channels.length > limits.maxChannelsPerEvent) {
    throw new HeraldInputError(`An event may go to at most ${limits.maxChannelsPerEvent} channels, got ${channels.length}`);
  }
  for (const c of channels) checkChannel(c, limits, allowUserChannel);
}

export function checkEventName(name: unknown, limits: Limits): asserts name is string {
  const problem = eventNameProblem(name, limits.maxEventNameLength);
  if (problem) throw new HeraldInputError(problem);
}

/** The wire string of an event's data must fit the event size limit. */
export function checkDataSize(wire: string, limits: Limits): void {
  const bytes = utf8Length(wire);
  if (bytes > limits.maxEventBytes) throw new HeraldInputError(`Event data is ${bytes} bytes; the limit is ${limits.maxEventBytes}`);
}

export function checkUserId(id: unknown): asserts id is string {
  const problem = userIdProblem(id);
  if (problem) throw new HeraldInputError(problem);
}

/** An interest name by the shared rules (push.md §1.3), reported in the SDK's words. */
export function checkInterest(name: unknown): asserts name is string {
  const fault = interestNameFault(name);
  if (fault === null) return;
  if (fault === 'empty') throw new HeraldInputError('Interest names must be non-empty strings');
  const text = (name as string).slice(0, 64);
  if (fault === 'too-long') throw new HeraldInputError(`Interest name is longer than ${MAX_INTEREST_LENGTH} characters: '${text}'`);
  throw new HeraldInputError(`Interest names may contain only A-Z a-z 0-9 _ - = @ , . ; : '${text}'`);
}

/** `info` as the REST API wants it: a comma-separated list of known attributes. */
export function infoParam(info: string | string[] | undefined, allowed: readonly string[]): string | undefined {
  if (info === undefined) return undefined;
  const list = (Array.isArray(info) ? info : info.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  for (const i of list) {
    if (!allowed.includes(i)) throw new HeraldInputError(`Unknown info attribute '${i}' (allowed: ${allowed.join(', ')})`);
  }
  return list.length > 0 ? list.join(',') : undefined;
}
