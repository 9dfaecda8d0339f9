/**
 * Moves messages between nodes. The gateway publishes through it and receives every message, its own
 * included, through the handler given to `start`: one node and many nodes run the same delivery code.
 *
 * Guarantees every implementation keeps:
 * - Messages published on one channel by one node arrive at every node in publish order.
 * - A node receives messages for a channel only between `subscribe` and `unsubscribe` for it (an
 *   implementation may deliver more, never less). The gateway calls `subscribe` when a channel gets its
 *   first local subscriber and `unsubscribe` when it loses its last; implementations may defer the
 *   unsubscribe briefly to absorb churn.
 * - Delivery is at most once: a message lost while a node is disconnected from the broker is not replayed.
 */
export interface AdapterMessage {
  appId: string;
  /** Routing channel: a Pusher channel, or a hidden `#user:{id}` / `#watch:{id}` channel. */
  channel: string;
  /** The encoded text frame, written unchanged to every local recipient. */
  frame?: string;
  /** Socket id that must not receive the frame (REST `socket_id`, the sender of a client event). */
  except?: string;
  /** Instead of a frame: close the recipients (`terminate_connections`). */
  action?: 'terminate';
}

export type MessageHandler = (msg: AdapterMessage) => void;

export interface Adapter {
  readonly name: string;
  /**
   * False when a publish reaches this node's handler and nothing else (the local adapter): a channel with no
   * subscriber here then has no one to encode a frame for.
   */
  readonly reachesOtherNodes: boolean;
  /** Starts receiving; every message for a subscribed channel is passed to `handler`. */
  start(handler: MessageHandler): Promise<void>;
  stop(): Promise<void>;
  publish(msg: AdapterMessage): Promise<void>;
  /** The channel got its first subscriber on this node. A failure is thrown so the gateway can roll back. */
  subscribe(appId: string, channel: string): Promise<void>;
  /** The channel lost its last subscriber on this node. */
  unsubscribe(appId: string, channel: string): Promise<void>;
  /** False while the broker is unreachable (reported by `/ready`). */
  healthy(): boolean;
}
