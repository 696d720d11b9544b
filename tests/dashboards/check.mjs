// The rules of dashboards/*.json that Grafana's types cannot express, then the strict type
// check (see check.ts): each dashboard is written as a TypeScript constant under generated/
// and compiled against Strict<StrictDashboard>.
//
//   node tests/dashboards/check.mjs            check (exit 1 on any finding)
//   node tests/dashboards/check.mjs --format   rewrite the dashboards in the canonical
//                                              layout (2-space JSON), then check
//
// Needs node_modules (npm ci --prefix tests/dashboards) for the type check only.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const DIR = join(ROOT, 'dashboards');

/** Every dashboard and its uid: the uid is in links and bookmarks, so it never changes. */
const UIDS = {
  'whatsapp-fleet-overview.json': 'whatsapp-fleet',
  'whatsapp-onprem-node.json': 'whatsapp-onprem-node',
  'whatsapp-exporter.json': 'whatsapp-exporter',
};
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const MIN_SCHEMA_VERSION = 39;
/** The variables a query may use: the dashboards' own, and Grafana's interval built-ins. */
const QUERY_VARIABLES = new Set(['target', 'node', '__rate_interval', '__range', '__interval']);
/** Grafana built-ins that links, legends and titles may use besides the dashboards' own variables. */
const BUILTINS = new Set([
  '__all', '__data', '__field', '__value', '__series', '__url_time_range', '__from', '__to',
  '__rate_interval', '__range', '__interval', '__dashboard', '__org', '__user', '__timezone',
]);
const VARIABLES = {
  datasource: { type: 'datasource', query: 'prometheus' },
  target: { type: 'query', query: /^label_values\(whatsapp_target_info(\{[^}]*\})?, target\)$/ },
  node: { type: 'query', query: /^label_values\(whatsapp_gateway_status\{target=~"\$target"\}, node\)$/ },
};

const findings = [];
const fail = (where, what) => findings.push(`${where}: ${what}`);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** `$name`, `${name}`, `${name:format}`, `${name.path}` and `[[name]]` references in a string. */
function variableRefs(text) {
  const refs = [];
  const re = /\$(\w+)|\$\{(\w+)(?:[.:][^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]/g;
  for (const m of text.matchAll(re)) refs.push(m[1] ?? m[2] ?? m[3]);
  return refs;
}

/** Every string in a JSON value, with its path. */
function* strings(value, path) {
  if (typeof value === 'string') yield [path, value];
  else if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* strings(v, `${path}[${i}]`);
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) yield* strings(v, `${path}.${k}`);
}

/** Brackets and double-quoted strings of a PromQL expression balance (comments skipped). */
function balanced(expr) {
  const stack = [];
  const pairs = { ')': '(', ']': '[', '}': '{' };
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
    } else if (c === '"' || c === "'" || c === '`') {
      for (i++; i < expr.length && expr[i] !== c; i++) if (expr[i] === '\\') i++;
      if (i >= expr.length) return false;
    } else if ('([{'.includes(c)) stack.push(c);
    else if (')]}'.includes(c) && stack.pop() !== pairs[c]) return false;
  }
  return stack.length === 0;
}

/** The dashboard uid a Grafana URL such as /d/whatsapp-fleet?... points to, if any. */
function linkedUid(url) {
  return /^\/d\/([^/?#]+)/.exec(url)?.[1];
}

function checkLinks(where, links, knownUids) {
  for (const link of links ?? []) {
    if (typeof link.url !== 'string' || !link.title) {
      fail(where, `a link needs a title and a url: ${JSON.stringify(link)}`);
      continue;
    }
    const uid = linkedUid(link.url);
    if (uid !== undefined && !knownUids.has(uid)) fail(where, `link "${link.title}" points to unknown dashboard uid ${uid}`);
  }
}

function checkDashboard(file, d, knownUids) {
  const at = `dashboards/${file}`;
  if (d.uid !== UIDS[file]) fail(at, `uid is ${JSON.stringify(d.uid)}, must stay ${UIDS[file]}`);
  if (!d.title) fail(at, 'no title');
  if (!d.description) fail(at, 'no description');
  if (!(d.schemaVersion >= MIN_SCHEMA_VERSION)) fail(at, `schemaVersion ${d.schemaVersion} is below ${MIN_SCHEMA_VERSION}`);
  if ('__inputs' in d || '__requires' in d) fail(at, 'has __inputs/__requires: import goes through the datasource variable');
  if (d.id !== null && d.id !== undefined) fail(at, 'id must be null (Grafana assigns it)');

  // Variables.
  const vars = d.templating?.list ?? [];
  const defined = new Set(vars.map((v) => v.name));
  for (const [name, want] of Object.entries(VARIABLES)) {
    const v = vars.find((x) => x.name === name);
    if (!v) {
      fail(at, `variable ${name} is missing`);
      continue;
    }
    if (v.type !== want.type) fail(at, `variable ${name} has type ${v.type}, not ${want.type}`);
    const ok = want.query instanceof RegExp ? want.query.test(v.query) : v.query === want.query;
    if (!ok) fail(at, `variable ${name} has query ${JSON.stringify(v.query)}`);
    if (want.type === 'query') {
      if (!same(v.datasource, DATASOURCE)) fail(at, `variable ${name} must query ${JSON.stringify(DATASOURCE)}`);
      if (!v.multi || !v.includeAll) fail(at, `variable ${name} must be multi-value with All`);
      // node="" (a single instance) has no node label in Prometheus: only .* matches it.
      if (v.allValue !== '.*') fail(at, `variable ${name} needs allValue ".*"`);
    }
  }
  for (const v of vars) {
    for (const ref of variableRefs(typeof v.query === 'string' ? v.query : JSON.stringify(v.query ?? ''))) {
      if (!defined.has(ref)) fail(at, `variable ${v.name} uses undefined variable $${ref}`);
    }
  }

  // Links between the dashboards.
  const linked = new Set();
  for (const link of d.links ?? []) {
    const uid = link.type === 'link' ? linkedUid(link.url ?? '') : undefined;
    if (uid === undefined) continue;
    linked.add(uid);
    if (!link.includeVars || !link.keepTime) fail(at, `dashboard link to ${uid} must keep variables and time`);
  }
  checkLinks(`${at} links`, d.links, knownUids);
  for (const uid of knownUids) {
    if (uid !== d.uid && !linked.has(uid)) fail(at, `no dashboard link to ${uid}`);
  }

  // Panels.
  const panels = [];
  for (const p of d.panels ?? []) {
    panels.push(p);
    if (p.type === 'row') panels.push(...(p.panels ?? []));
  }
  const ids = new Set();
  const titles = new Set();
  const boxes = [];
  for (const p of panels) {
    const where = `${at} panel ${p.id} "${p.title}"`;
    if (!Number.isInteger(p.id) || p.id < 1) fail(where, 'id must be a positive integer');
    else if (ids.has(p.id)) fail(where, 'duplicate panel id');
    ids.add(p.id);
    if (!p.title) fail(where, 'no title');
    else if (titles.has(p.title)) fail(where, 'duplicate title in this dashboard');
    titles.add(p.title);

    const g = p.gridPos;
    if (!g || !['h', 'w', 'x', 'y'].every((k) => Number.isInteger(g[k]))) {
      fail(where, 'gridPos needs integer h, w, x and y');
    } else if (g.x < 0 || g.y < 0 || g.w < 1 || g.h < 1 || g.x + g.w > 24) {
      fail(where, `gridPos ${JSON.stringify(g)} is outside the 24-column grid`);
    } else {
      for (const [other, o] of boxes) {
        if (g.x < o.x + o.w && o.x < g.x + g.w && g.y < o.y + o.h && o.y < g.y + g.h) {
          fail(where, `overlaps panel "${other}"`);
        }
      }
      boxes.push([p.title, g]);
    }

    if (p.type === 'row') continue;
    if (typeof p.description !== 'string' || p.description.trim().length < 40) {
      fail(where, 'needs a description (at least a sentence) of what a person sees');
    }
    if (!same(p.datasource, DATASOURCE)) fail(where, `datasource must be ${JSON.stringify(DATASOURCE)}`);
    const targets = p.targets ?? [];
    if (targets.length === 0) fail(where, 'no query');
    const refIds = new Set();
    for (const t of targets) {
      const tw = `${where} query ${t.refId}`;
      if (!t.refId || refIds.has(t.refId)) fail(tw, 'refId missing or duplicate');
      refIds.add(t.refId);
      if (t.datasource !== undefined && !same(t.datasource, DATASOURCE)) fail(tw, `datasource must be ${JSON.stringify(DATASOURCE)}`);
      if (typeof t.expr !== 'string' || t.expr.trim() === '') {
        fail(tw, 'no expr');
        continue;
      }
      if (!balanced(t.expr)) fail(tw, 'unbalanced brackets or quotes');
      for (const ref of variableRefs(t.expr)) {
        if (!QUERY_VARIABLES.has(ref)) fail(tw, `uses $${ref}: queries may use only ${[...QUERY_VARIABLES].map((v) => '$' + v).join(', ')}`);
      }
    }
    for (const [path, text] of strings({ title: p.title, targets: p.targets, fieldConfig: p.fieldConfig, options: p.options }, '')) {
      for (const ref of variableRefs(text)) {
        if (!defined.has(ref) && !BUILTINS.has(ref)) fail(`${where}${path}`, `uses undefined variable $${ref}`);
      }
    }
    checkLinks(`${where} links`, p.fieldConfig?.defaults?.links, knownUids);
    for (const o of p.fieldConfig?.overrides ?? []) {
      for (const prop of o.properties ?? []) {
        if (prop.id === 'links') checkLinks(`${where} links`, prop.value, knownUids);
      }
    }
    if (p.type === 'state-timeline' && !(p.fieldConfig?.defaults?.mappings?.length > 0)) {
      fail(where, 'a state timeline needs value mappings (state number -> name and colour)');
    }
    if (p.type === 'table') {
      // Column names after the organize transformation: sortBy and byName overrides use them.
      const organize = (p.transformations ?? []).find((t) => t.id === 'organize')?.options;
      if (organize) {
        const columns = new Set(Object.values(organize.renameByName ?? {}));
        for (const s of p.options?.sortBy ?? []) {
          if (!columns.has(s.displayName)) fail(where, `sorts by "${s.displayName}", not a renamed column`);
        }
        for (const o of p.fieldConfig?.overrides ?? []) {
          if (o.matcher?.id === 'byName' && !columns.has(o.matcher.options)) {
            fail(where, `override for "${o.matcher.options}", not a renamed column`);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------- the rules
const format = process.argv.includes('--format');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
for (const f of files) if (!(f in UIDS)) fail(`dashboards/${f}`, 'unknown dashboard: add it and its uid to UIDS in tests/dashboards/check.mjs');
for (const f of Object.keys(UIDS)) if (!files.includes(f)) fail(`dashboards/${f}`, 'missing');
const knownUids = new Set(Object.values(UIDS));
const parsed = {};
for (const f of files.filter((f) => f in UIDS)) {
  const path = join(DIR, f);
  let text = readFileSync(path, 'utf8');
  let d;
  try {
    d = JSON.parse(text);
  } catch (e) {
    fail(`dashboards/${f}`, `not JSON: ${e.message}`);
    continue;
  }
  const canonical = JSON.stringify(d, null, 2) + '\n';
  if (text !== canonical) {
    if (format) {
      writeFileSync(path, canonical);
      text = canonical;
    } else {
      fail(`dashboards/${f}`, 'not in the canonical layout (2-space JSON): run node tests/dashboards/check.mjs --format');
    }
  }
  parsed[f] = text;
  checkDashboard(f, d, knownUids);
}
const uids = Object.keys(parsed).map((f) => JSON.parse(parsed[f]).uid);
if (new Set(uids).size !== uids.length) fail('dashboards/', `duplicate uids: ${uids.join(', ')}`);

// ---------------------------------------------------------------- the strict type check
const tsc = join(HERE, 'node_modules', '.bin', 'tsc');
if (!existsSync(tsc)) {
  fail('tests/dashboards', 'node_modules is missing: run npm ci --prefix tests/dashboards (tests/run.sh does)');
} else if (Object.keys(parsed).length > 0) {
  const gen = join(HERE, 'generated');
  rmSync(gen, { recursive: true, force: true });
  mkdirSync(gen);
  const names = {};
  for (const [f, text] of Object.entries(parsed)) {
    // Line n of the JSON is line n + 1 of the generated file.
    const name = f.replace(/\.json$/, '.ts');
    names[name] = f;
    writeFileSync(
      join(gen, name),
      `import type { Strict, StrictDashboard } from '../check'; // generated by check.mjs from dashboards/${f}\n` +
        `export default ${text.trimEnd()} as const satisfies Strict<StrictDashboard>;\n`,
    );
  }
  writeFileSync(
    join(gen, 'tsconfig.json'),
    JSON.stringify({ extends: '../tsconfig.json', files: Object.keys(names) }, null, 2) + '\n',
  );
  try {
    execFileSync(tsc, ['-p', gen], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || String(e);
    // generated/x.ts(L,C): ... -> dashboards/x.json:L-1:C: ...
    const mapped = out.replace(/[^\s(]*generated\/([\w.-]+\.ts)\((\d+),(\d+)\)/g, (m, name, line, col) =>
      names[name] ? `dashboards/${names[name]}:${Number(line) - 1}:${col}` : m,
    );
    fail('type check against @grafana/schema (strict)', `\n${mapped}`);
  }
}

if (findings.length > 0) {
  console.error(`${findings.length} finding(s) in ${relative(process.cwd(), DIR) || DIR}:`);
  for (const f of findings) console.error(`- ${f}`);
  process.exit(1);
}
console.log(`dashboards ok: ${Object.keys(parsed).join(', ')} (rules, and types of @grafana/schema)`);
