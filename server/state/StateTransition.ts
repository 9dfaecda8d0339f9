/**
 * A cluster-wide transition found by the shared state itself rather than by a local socket's call: a dead
 * node's connections removed by a survivor, or a node's contributions restored after a broker outage. The
 * gateway turns each into the frames and observer events the socket path would have produced
 * (`Gateway.applyTransitions`). Like every ClusterState transition, each is reported to exactly one node.
 */
export type StateTransition =
  /** `rejoined`, `mark`: the leave mark the same script took or set (ClusterState.setLeaveMarks); absent when none was asked. */
  | { kind: 'occupied'; appId: string; channel: string; count: number; rejoined?: boolean }
  | { kind: 'vacated'; appId: string; channel: string; mark?: string }
  /** The channel's subscription count changed without it becoming occupied or vacated. */
  | { kind: 'count'; appId: string; channel: string; count: number }
  | { kind: 'memberAdded'; appId: string; channel: string; userId: string; info: string; rejoined?: boolean }
  | { kind: 'memberRemoved'; appId: string; channel: string; userId: string; mark?: string }
  /** The user's first signed-in socket anywhere (watchlist `online`). */
  | { kind: 'userOnline'; appId: string; userId: string }
  /** The user's last signed-in socket anywhere is gone (watchlist `offline`). */
  | { kind: 'userOffline'; appId: string; userId: string };
