import { appSchema, configSchema } from './schema';

/** The parts of a JSON-schema field the table shows. */
interface FieldSchema {
  type?: string;
  enum?: readonly unknown[];
  default?: unknown;
  description?: string;
  properties?: Record<string, FieldSchema>;
  required?: readonly string[];
  oneOf?: readonly FieldSchema[];
  anyOf?: readonly FieldSchema[];
}

const escape = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

function typeOf(f: FieldSchema): string {
  if (f.enum) return f.enum.map((v) => `\`${String(v)}\``).join(', ');
  const alternatives = f.oneOf ?? f.anyOf;
  if (alternatives) return [...new Set(alternatives.map(typeOf))].join(' or ');
  return f.type ?? 'any';
}

function row(path: string, f: FieldSchema, required: boolean): string {
  const def = f.default !== undefined ? `\`${JSON.stringify(f.default)}\`` : required ? 'required' : '';
  return `| \`${path}\` | ${escape(typeOf(f))} | ${escape(def)} | ${escape(f.description ?? '')} |`;
}

function rows(prefix: string, parent: FieldSchema): string[] {
  const out: string[] = [];
  for (const [name, f] of Object.entries(parent.properties ?? {})) {
    const path = `${prefix}${name}`;
    out.push(row(path, f, parent.required?.includes(name) === true));
    if (name === 'apps' && prefix === '') out.push(...rows('apps[].', appSchema as FieldSchema));
    else if (f.type === 'object' && f.properties) out.push(...rows(`${path}.`, f));
  }
  return out;
}

/**
 * The README's configuration table, rendered from the schema so the two cannot drift
 * (test/unit/config-table.test.ts compares them). Nested fields are written with dots, app fields as
 * `apps[].name`.
 */
export function renderConfigTable(): string {
  return ['| Field | Type | Default | Description |', '|---|---|---|---|', ...rows('', configSchema as FieldSchema)].join('\n');
}
