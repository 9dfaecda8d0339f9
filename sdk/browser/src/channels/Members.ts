/** One presence member: its id and the `user_info` it joined with. */
export interface Member {
  id: string;
  // Whatever the app's auth endpoint put in user_info.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  info: any;
}

/** The members of a presence channel, as pusher-js's `Members`. */
export class Members {
  /** id → user_info. */
  members: Record<string, unknown> = {};
  count = 0;
  myID: string | null = null;
  me: Member | null = null;

  get(id: string): Member | null {
    return Object.prototype.hasOwnProperty.call(this.members, id) ? { id, info: this.members[id] } : null;
  }

  each(callback: (member: Member) => void): void {
    for (const id of Object.keys(this.members)) callback({ id, info: this.members[id] });
  }

  /** @internal */
  setMyID(id: string): void {
    this.myID = id;
  }

  /** @internal */
  onSubscription(data: unknown): void {
    const presence = (data as { presence?: { hash?: Record<string, unknown>; count?: number } } | undefined)?.presence;
    this.members = { ...(presence?.hash ?? {}) };
    this.count = presence?.count ?? Object.keys(this.members).length;
    this.me = this.myID === null ? null : this.get(this.myID);
  }

  /** @internal */
  add(data: { user_id: string; user_info?: unknown }): Member {
    if (this.get(data.user_id) === null) this.count++;
    this.members[data.user_id] = data.user_info;
    return { id: data.user_id, info: data.user_info };
  }

  /** @internal */
  remove(data: { user_id: string }): Member | null {
    const member = this.get(data.user_id);
    if (member) {
      delete this.members[data.user_id];
      this.count--;
    }
    return member;
  }

  /** @internal */
  reset(): void {
    this.members = {};
    this.count = 0;
    this.myID = null;
    this.me = null;
  }
}
