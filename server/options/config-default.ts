import { configSchema } from './schema';

type TopLevel = typeof configSchema.properties;
type Defaults = { [K in keyof TopLevel]: TopLevel[K] extends { default: infer D } ? D : undefined };

/**
 * The schema's default for a top-level option, for fields that callers building options in code (tests,
 * embedders) may leave out: the default is written once, in the schema.
 */
export function configDefault<K extends keyof Defaults>(name: K): Defaults[K] {
  return (configSchema.properties[name] as { default?: unknown }).default as Defaults[K];
}
