/**
 * The errors the server SDK throws, after pusher-http-node's `errors.js`: one for input refused before
 * sending, one for a request Herald answered with an error (or never answered), one for webhooks.
 */

/** Input that would be refused by Herald, caught before any request is sent. */
export class HeraldInputError extends Error {
  override readonly name = 'HeraldInputError';
}

/** A REST request that failed: `status` and `body` are set when Herald answered. */
export class HeraldRequestError extends Error {
  override readonly name = 'HeraldRequestError';

  constructor(
    message: string,
    /** The request URL, signature included (it is short-lived and useless without the secret). */
    readonly url: string,
    /** HTTP status, when a response arrived. */
    readonly status?: number,
    /** Response body as text, when a response arrived. */
    readonly body?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The `error` field of Herald's JSON error body, when there is one. */
  get serverMessage(): string | undefined {
    if (this.body === undefined) return undefined;
    try {
      const parsed = JSON.parse(this.body) as { error?: unknown };
      return typeof parsed.error === 'string' ? parsed.error : undefined;
    } catch {
      return undefined;
    }
  }
}

/** A webhook that failed verification or could not be read. */
export class HeraldWebhookError extends Error {
  override readonly name = 'HeraldWebhookError';

  constructor(
    message: string,
    readonly contentType: string | undefined,
    readonly body: string,
    readonly signature: string | undefined,
  ) {
    super(message);
  }
}
