import type { ServerMessage } from '../../../protocol';
import { AuthError } from '../auth';
import { Channel, type ChannelHost } from './Channel';
import { Members } from './Members';

/** Tells a presence channel who the signed-in user is when its auth answer has no `channel_data`. */
export type SignedInUser = () => Promise<string | null>;

/**
 * A presence channel: a private channel with `members` (protocol.md §1.9). Emits
 * `pusher:subscription_succeeded` with the members, `pusher:member_added` and `pusher:member_removed`
 * with `{id, info}`.
 */
export class PresenceChannel extends Channel {
  readonly members = new Members();

  constructor(
    name: string,
    host: ChannelHost,
    private readonly signedInUser: SignedInUser,
  ) {
    super(name, host);
  }

  protected override async authorize(socketId: string): Promise<Record<string, unknown>> {
    const a = await this.host.authorize(socketId, this.name);
    if (typeof a.channel_data === 'string') {
      const id = (JSON.parse(a.channel_data) as { user_id?: unknown }).user_id;
      this.members.setMyID(String(id));
      return { auth: a.auth, channel_data: a.channel_data };
    }
    // Without channel_data the server joins us as the signed-in user (protocol.md §1.9).
    const userId = await this.signedInUser();
    if (userId === null) throw new AuthError(`The auth answer for ${this.name} has no channel_data and the connection is not signed in`);
    this.members.setMyID(userId);
    return { auth: a.auth };
  }

  protected override succeeded(data: unknown): void {
    this.members.onSubscription(data);
    this.emit('pusher:subscription_succeeded', this.members);
  }

  protected override internal(msg: ServerMessage): void {
    const data = msg.data as { user_id: string; user_info?: unknown };
    if (msg.event === 'pusher_internal:member_added') {
      this.emit('pusher:member_added', this.members.add(data));
    } else if (msg.event === 'pusher_internal:member_removed') {
      const member = this.members.remove(data);
      if (member) this.emit('pusher:member_removed', member);
    }
  }

  override disconnect(): void {
    const me = this.members.myID;
    this.members.reset();
    if (me !== null) this.members.setMyID(me);
    super.disconnect();
  }

  override unsubscribe(): void {
    this.members.reset();
    super.unsubscribe();
  }
}
