/** Extra facts about an event: the sender of a client event on a presence channel (protocol.md §1.3). */
export interface EventMetadata {
  user_id?: string;
}

// Event payloads are whatever the application sent, so callbacks take `any` as pusher-js's do.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventCallback = (data: any, metadata?: EventMetadata) => void;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type GlobalCallback = (event: string, data: any) => void;

/**
 * Named callbacks, as pusher-js's `Dispatcher`: `bind`, `unbind`, `bind_global`. A throwing callback does
 * not stop the others, nor the connection that called it: its error is rethrown on its own task.
 */
export class Dispatcher {
  private readonly callbacks = new Map<string, EventCallback[]>();
  private globals: GlobalCallback[] = [];

  bind(event: string, callback: EventCallback): this {
    const list = this.callbacks.get(event);
    if (list) list.push(callback);
    else this.callbacks.set(event, [callback]);
    return this;
  }

  /** Removes `callback` from `event`; without `callback`, every callback of `event`; without both, all. */
  unbind(event?: string, callback?: EventCallback): this {
    if (event === undefined) {
      if (callback === undefined) this.callbacks.clear();
      else for (const [name, list] of this.callbacks) this.callbacks.set(name, list.filter((c) => c !== callback));
      return this;
    }
    if (callback === undefined) this.callbacks.delete(event);
    else this.callbacks.set(event, (this.callbacks.get(event) ?? []).filter((c) => c !== callback));
    return this;
  }

  /** Receives every event with its name. */
  bind_global(callback: GlobalCallback): this {
    this.globals.push(callback);
    return this;
  }

  unbind_global(callback?: GlobalCallback): this {
    this.globals = callback === undefined ? [] : this.globals.filter((c) => c !== callback);
    return this;
  }

  unbind_all(): this {
    this.callbacks.clear();
    this.globals = [];
    return this;
  }

  emit(event: string, data?: unknown, metadata?: EventMetadata): this {
    for (const g of [...this.globals]) safely(() => g(event, data));
    for (const c of [...(this.callbacks.get(event) ?? [])]) safely(() => (metadata ? c(data, metadata) : c(data)));
    return this;
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    setTimeout(() => {
      throw err;
    }, 0);
  }
}
