/**
 * Shapes of REST bodies, compiled once by ajv. Per-app limits (sizes, counts) are checked after, because
 * they differ between apps.
 */
import Ajv from 'ajv';

const ajv = new Ajv({ allErrors: false, strict: false });

const eventItem = {
  name: { type: 'string', minLength: 1 },
  data: {},
  socket_id: { type: 'string' },
  info: { type: 'string' },
} as const;

export const validateEventBody = ajv.compile({
  type: 'object',
  required: ['name', 'data'],
  properties: {
    ...eventItem,
    channels: { type: 'array', minItems: 1, items: { type: 'string' } },
    channel: { type: 'string' },
  },
});

export const validateBatchBody = ajv.compile({
  type: 'object',
  required: ['batch'],
  properties: {
    batch: {
      type: 'array',
      items: { type: 'object', required: ['name', 'data', 'channel'], properties: { ...eventItem, channel: { type: 'string' } } },
    },
  },
});

export interface EventBody {
  name: string;
  data: unknown;
  channels?: string[];
  channel?: string;
  socket_id?: string;
  info?: string;
}

export interface BatchBody {
  batch: (EventBody & { channel: string })[];
}

/** The first ajv error as a sentence for the `error` field. */
export function schemaProblem(errors: { instancePath: string; message?: string }[] | null | undefined): string {
  const e = errors?.[0];
  return e ? `body${e.instancePath.replace(/\//g, '.')} ${e.message ?? 'is invalid'}` : 'Invalid body';
}
