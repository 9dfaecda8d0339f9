import type { Adapter, AdapterMessage, MessageHandler } from './Adapter';

/**
 * The single-node adapter: a publish is handed straight back to the gateway's handler, in the caller's
 * tick, so order is the publish order and nothing is copied.
 */
export class LocalAdapter implements Adapter {
  readonly name = 'local';
  readonly reachesOtherNodes = false;
  private handler: MessageHandler | null = null;

  async start(handler: MessageHandler): Promise<void> {
    this.handler = handler;
  }

  async stop(): Promise<void> {
    this.handler = null;
  }

  async publish(msg: AdapterMessage): Promise<void> {
    this.handler?.(msg);
  }

  async subscribe(): Promise<void> {
    // Nothing to do: every local publish reaches the handler already.
  }

  async unsubscribe(): Promise<void> {
    // Nothing to do, as for subscribe.
  }

  healthy(): boolean {
    return true;
  }
}
