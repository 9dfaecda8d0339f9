/**
 * Every error Herald reports, in one table: the HTTP status for REST callers and the Pusher code for
 * WebSocket clients. Pusher codes are grouped by what the client should do (protocol.md §1.4):
 * 4000–4099 do not reconnect, 4100–4199 reconnect with backoff, 4200–4299 reconnect now, 43xx are
 * `pusher:error` events sent without closing. No literal Pusher code appears anywhere else.
 */

export interface ErrorDef {
  /** HTTP status for REST answers. */
  status: number;
  /** Pusher close code or `pusher:error` code; null where the protocol has none. */
  pusherCode: number | null;
  message: string;
}

export const ERRORS = {
  // Connection refused at handshake: the socket is closed with the code.
  TLS_ONLY: { status: 403, pusherCode: 4000, message: 'Application only accepts TLS connections' },
  APP_NOT_FOUND: { status: 404, pusherCode: 4001, message: 'Application does not exist' },
  APP_DISABLED: { status: 403, pusherCode: 4003, message: 'Application is disabled' },
  OVER_QUOTA: { status: 403, pusherCode: 4004, message: 'Application is over its connection quota' },
  PATH_NOT_FOUND: { status: 404, pusherCode: 4005, message: 'Path not found' },
  INVALID_VERSION: { status: 400, pusherCode: 4006, message: 'Invalid version string format' },
  UNSUPPORTED_PROTOCOL: { status: 400, pusherCode: 4007, message: 'Unsupported protocol version' },
  NO_PROTOCOL: { status: 400, pusherCode: 4008, message: 'No protocol version supplied' },
  ORIGIN_NOT_ALLOWED: { status: 403, pusherCode: 4009, message: 'Origin not allowed' },
  USER_AUTH_TIMEOUT: { status: 401, pusherCode: 4009, message: 'Connection not signed in within the timeout' },
  TERMINATED: { status: 200, pusherCode: 4009, message: 'You got disconnected by the app' },
  OVER_CAPACITY: { status: 503, pusherCode: 4100, message: 'Server over capacity' },
  // Backoff, not refusal (4004): the address's other connections close and the client may then get in.
  IP_OVER_QUOTA: { status: 429, pusherCode: 4100, message: 'Too many connections from this address; retry later' },
  SHUTTING_DOWN: { status: 503, pusherCode: 4200, message: 'Server is shutting down; reconnect' },
  // Recorded, not sent: a client this far behind would not read a close frame either (sockudo uses 4100 too).
  CLIENT_TOO_SLOW: { status: 503, pusherCode: 4100, message: 'Client too slow: too many bytes waiting to be sent' },
  PONG_TIMEOUT: { status: 408, pusherCode: 4201, message: 'Pong reply not received' },

  // pusher:error without closing.
  MESSAGE_INVALID: { status: 400, pusherCode: 4200, message: 'Invalid message format' },
  MESSAGE_BINARY: { status: 400, pusherCode: 4200, message: 'Binary frames are not supported' },
  EVENT_UNKNOWN: { status: 400, pusherCode: 4200, message: 'Unknown event' },
  DEVICE_ID_INVALID: { status: 400, pusherCode: 4200, message: 'device_id must be a string of 1 to 128 characters, or null' },
  CLIENT_EVENT_RATE: { status: 429, pusherCode: 4301, message: 'Client event rate limit reached' },
  WATCHLIST_TOO_LONG: { status: 400, pusherCode: 4302, message: 'Watchlist has more than 100 ids; the first 100 are used' },
  CLIENT_EVENTS_DISABLED: { status: 403, pusherCode: 4009, message: 'Client events are not enabled for this app' },
  CLIENT_EVENT_CHANNEL: { status: 403, pusherCode: 4009, message: 'Client events are only supported on private and presence channels' },
  CLIENT_EVENT_NOT_SUBSCRIBED: { status: 403, pusherCode: 4009, message: 'Client event rejected: not subscribed to the channel' },
  CLIENT_EVENT_NAME: { status: 400, pusherCode: 4009, message: 'Client event names must start with client- and be at most 200 characters' },
  CLIENT_EVENT_TOO_LARGE: { status: 413, pusherCode: 4009, message: 'Client event data is too large' },
  SIGNIN_INVALID: { status: 401, pusherCode: 4009, message: 'Invalid signin: bad signature or user_data' },
  SIGNIN_OTHER_USER: { status: 403, pusherCode: 4009, message: 'Connection is already signed in as another user' },

  // Subscription errors, sent as `pusher:subscription_error` on the channel.
  CHANNEL_NAME_INVALID: { status: 400, pusherCode: 4009, message: 'Invalid channel name' },
  SUBSCRIPTION_AUTH: { status: 401, pusherCode: 4009, message: 'Invalid signature' },
  SUBSCRIPTION_FORBIDDEN: { status: 403, pusherCode: 4009, message: 'Not allowed to subscribe to this channel' },
  PRESENCE_DATA_INVALID: { status: 400, pusherCode: 4009, message: 'Invalid presence channel_data' },
  PRESENCE_FULL: { status: 403, pusherCode: 4100, message: 'Presence channel is full' },
  PRESENCE_MEMBER_TOO_LARGE: { status: 413, pusherCode: 4301, message: 'Presence member data is too large' },
  SERVER_ERROR: { status: 500, pusherCode: null, message: 'Internal server error' },

  // REST only.
  AUTH_MISSING: { status: 401, pusherCode: null, message: 'Missing authentication parameters' },
  AUTH_KEY: { status: 401, pusherCode: null, message: 'Unknown auth_key' },
  AUTH_TIMESTAMP: { status: 401, pusherCode: null, message: 'auth_timestamp is not within 600 s of server time' },
  AUTH_VERSION: { status: 401, pusherCode: null, message: 'auth_version must be 1.0' },
  AUTH_BODY_MD5: { status: 401, pusherCode: null, message: 'body_md5 is missing or does not match the body' },
  AUTH_SIGNATURE: { status: 401, pusherCode: null, message: 'Invalid signature' },
  BAD_REQUEST: { status: 400, pusherCode: null, message: 'Bad request' },
  BAD_JSON: { status: 400, pusherCode: null, message: 'Request body is not valid JSON' },
  BAD_PATH: { status: 400, pusherCode: null, message: 'The path is not valid percent-encoding' },
  PATH_TOO_LONG: { status: 414, pusherCode: null, message: 'A path segment is longer than any name Herald accepts' },
  HEADERS_TOO_LARGE: { status: 431, pusherCode: null, message: 'The request line and headers exceed 16 KB' },
  REQUEST_TIMEOUT: { status: 408, pusherCode: null, message: 'The request did not arrive in time' },
  PAYLOAD_TOO_LARGE: { status: 413, pusherCode: null, message: 'Payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, pusherCode: null, message: 'Send the body as JSON with Content-Type: application/json' },
  NOT_FOUND: { status: 404, pusherCode: null, message: 'Not found' },
  RATE_LIMITED: { status: 429, pusherCode: null, message: 'Rate limit exceeded' },
  UNAVAILABLE: { status: 503, pusherCode: null, message: 'Service unavailable' },
  ADMIN_AUTH: { status: 401, pusherCode: null, message: 'Missing or invalid admin token' },
  PUSH_NOT_CONFIGURED: { status: 501, pusherCode: null, message: 'Push is not configured on this server' },
  PUSH_TOKEN_INVALID: { status: 401, pusherCode: null, message: 'Missing or invalid push user token' },
  PUSH_USER_CONFLICT: { status: 409, pusherCode: null, message: 'Device is already bound to another user; delete it and register again' },
  PUSH_ENDPOINT_CONFLICT: { status: 409, pusherCode: null, message: 'That subscription is already registered as another device' },
} as const satisfies Record<string, ErrorDef>;

export type ErrorName = keyof typeof ERRORS;

/** An error from the table, with an optional detail that replaces the default message. */
export class HeraldError extends Error {
  override readonly name = 'HeraldError';
  readonly status: number;
  readonly pusherCode: number | null;

  constructor(
    readonly code: ErrorName,
    detail?: string,
    /** Seconds until a retry may succeed (429). */
    readonly retryAfter?: number,
  ) {
    super(detail ?? ERRORS[code].message);
    this.status = ERRORS[code].status;
    this.pusherCode = ERRORS[code].pusherCode;
  }
}

/** Shorthand used where an error is thrown. */
export function fail(code: ErrorName, detail?: string, retryAfter?: number): never {
  throw new HeraldError(code, detail, retryAfter);
}

/** The close code for an error; errors without a Pusher code close as a generic "reconnect" (4200). */
export function closeCodeOf(name: ErrorName): number {
  return ERRORS[name].pusherCode ?? ERRORS.SHUTTING_DOWN.pusherCode;
}
