import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderConfigTable } from '../../server/options/config-table';
import { appSchema, configSchema } from '../../server/options/schema';

const README = join(__dirname, '..', '..', '..', 'README.md');
const START = '<!-- config-table:start -->';
const END = '<!-- config-table:end -->';

test("README's configuration table is the one generated from the schema", () => {
  assert.ok(existsSync(README), 'README.md is missing');
  const text = readFileSync(README, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  assert.ok(from >= 0 && to > from, `README.md needs the markers ${START} and ${END}`);
  const inReadme = text.slice(from + START.length, to).trim();
  assert.equal(inReadme, renderConfigTable(), 'README.md is out of date: run `npm run docs:config` and paste the table between the markers');
});

test('the table has one row per field, app fields under apps[]', () => {
  const table = renderConfigTable();
  for (const name of Object.keys(configSchema.properties)) assert.match(table, new RegExp(`^\\| \`${name}\` \\|`, 'm'));
  for (const name of Object.keys(appSchema.properties)) assert.match(table, new RegExp(`^\\| \`apps\\[\\]\\.${name}\` \\|`, 'm'));
  assert.match(table, /^\| `tls\.cert` \| string \| required \|/m);
  assert.match(table, /^\| `apps\[\]\.maxRestRequestsPerSecond` \| integer \| `-1` \|/m);
  assert.match(table, /^\| `memoryThresholdPercent` \| integer \| `85` \|/m);
});

test('every schema field has a description for the table', () => {
  const missing: string[] = [];
  const walk = (prefix: string, props: Record<string, { description?: string; type?: string; properties?: Record<string, unknown> }>) => {
    for (const [name, f] of Object.entries(props)) {
      if (!f.description) missing.push(`${prefix}${name}`);
      if (f.type === 'object' && f.properties) walk(`${prefix}${name}.`, f.properties as typeof props);
    }
  };
  walk('', configSchema.properties);
  walk('apps[].', appSchema.properties);
  assert.deepEqual(missing, []);
});
