// The dashboard's import-graph check (no browser, no dependencies): reads the `import … from`
// and `export … from` lines of every static/js/*.js module, prints the graph, and exits non-zero
// when the rule "layers only look down, no cycles" is broken:
//   - leaves (api, bus, chains, dom, recipes, state, training) import only other leaves;
//   - a view (curves, datasets, detail, evaluation, form, jobs, models, predict) imports only leaves, never another
//     view (views react to each other through bus.js events);
//   - main.js, the entry module, may import anything, and nothing imports it;
//   - there is no cycle, and every module is one of the above (a new module must be classified
//     here) and every import names an existing module.
// It also checks the bus's vocabulary: every on('…') / emit('…') in static/js names an event
// listed in bus.js's EVENTS, and every listed event is both emitted and handled somewhere.
// Run: node tests/dashboard/imports.mjs (tests/dashboard/run.sh runs it before the browser test).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const JS = path.join(REPO, 'static', 'js');

const LEAVES = new Set(['api.js', 'bus.js', 'chains.js', 'dom.js', 'recipes.js', 'state.js', 'training.js']);
const VIEWS = new Set(['curves.js', 'datasets.js', 'detail.js', 'evaluation.js', 'form.js', 'jobs.js', 'models.js', 'predict.js']);
const ENTRY = 'main.js';

const problems = [];

// Static imports and re-exports: `import x, { a, b as c } from './m.js'` (also over several
// lines), `import * as m from`, `export { a } from`, `export * from`, and bare `import './m.js'`;
// dynamic `import('./m.js')` is caught too. Only statements at the start of a line count, so
// commented-out lines (`// import …`) do not.
const IMPORT_RES = [
  /^[ \t]*import\s*[\w$*{},\s]*?\sfrom\s*['"]([^'"]+)['"]/gm,
  /^[ \t]*import\s*['"]([^'"]+)['"]/gm,
  /^[ \t]*export\s*(?:\*|\{)[\w$*{},\s]*?\sfrom\s*['"]([^'"]+)['"]/gm,
  /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
];

function importsOf(file) {
  const text = fs.readFileSync(path.join(JS, file), 'utf8');
  const found = new Set();
  for (const re of IMPORT_RES) {
    for (const m of text.matchAll(re)) {
      const spec = m[1];
      if (!spec.startsWith('.')) {
        problems.push(`${file}: imports "${spec}", which is no relative module path`);
        continue;
      }
      const target = path.relative(JS, path.resolve(JS, spec));
      if (target.includes(path.sep) || target.startsWith('..')) {
        problems.push(`${file}: imports "${spec}", outside static/js`);
        continue;
      }
      found.add(target);
    }
  }
  return { text, imports: [...found].sort() };
}

const files = fs.readdirSync(JS).filter((f) => f.endsWith('.js')).sort();
const graph = new Map();
const texts = new Map();
for (const f of files) {
  const { text, imports } = importsOf(f);
  graph.set(f, imports);
  texts.set(f, text);
}

const layer = (f) => (f === ENTRY ? 'entry' : LEAVES.has(f) ? 'leaf' : VIEWS.has(f) ? 'view' : null);

console.log('static/js import graph (module → imports):');
for (const [f, imports] of graph) console.log(`  ${f.padEnd(13)} [${layer(f) ?? '?'}] → ${imports.join(', ') || '—'}`);

for (const f of files) {
  if (!layer(f)) problems.push(`${f}: not classified as a leaf or a view in tests/dashboard/imports.mjs`);
}
for (const [f, imports] of graph) {
  for (const t of imports) {
    if (!graph.has(t)) {
      problems.push(`${f} imports ${t}, which does not exist`);
      continue;
    }
    if (t === ENTRY) problems.push(`${f} imports ${ENTRY}: nothing may import the entry module`);
    else if (layer(f) === 'view' && layer(t) === 'view') problems.push(`view ${f} imports view ${t}: go through bus.js instead`);
    else if (layer(f) === 'leaf' && layer(t) !== 'leaf') problems.push(`leaf ${f} imports ${layer(t) ?? 'unclassified'} ${t}: layers only look down`);
  }
}

// Cycles: depth-first search; a back edge to a module on the current path closes a cycle.
const cycles = [];
const done = new Set();
const onPath = [];
function visit(f) {
  if (done.has(f)) return;
  const at = onPath.indexOf(f);
  if (at >= 0) {
    cycles.push([...onPath.slice(at), f]);
    return;
  }
  onPath.push(f);
  for (const t of graph.get(f) ?? []) if (graph.has(t)) visit(t);
  onPath.pop();
  done.add(f);
}
for (const f of files) visit(f);
for (const c of cycles) problems.push(`import cycle: ${c.join(' → ')}`);

// The bus's vocabulary: the names in bus.js's EVENTS object against the on()/emit() calls.
const busText = texts.get('bus.js');
if (busText) {
  const block = /export const EVENTS = \{([\s\S]*?)\n\};/.exec(busText);
  if (!block) {
    problems.push('bus.js: no `export const EVENTS = { … };` listing the event names');
  } else {
    const listed = new Set([...block[1].matchAll(/^\s*'([a-z-]+)':/gm)].map((m) => m[1]));
    const used = { on: new Map(), emit: new Map() };
    for (const [f, text] of texts) {
      if (f === 'bus.js') continue;
      for (const m of text.matchAll(/\b(on|emit)\(\s*(['"`])([^'"`]*)\2/g)) {
        const [, kind, , name] = m;
        if (!used[kind].has(name)) used[kind].set(name, new Set());
        used[kind].get(name).add(f);
      }
    }
    for (const kind of ['on', 'emit']) {
      for (const [name, where] of used[kind]) {
        if (!listed.has(name)) problems.push(`${[...where].join(', ')}: ${kind}('${name}'), an event bus.js does not list`);
      }
    }
    for (const name of listed) {
      if (!used.emit.has(name)) problems.push(`bus.js lists '${name}', but no module emits it`);
      if (!used.on.has(name)) problems.push(`bus.js lists '${name}', but no module handles it`);
    }
    console.log('bus events (emitted by → handled by):');
    for (const name of listed) {
      console.log(`  ${name.padEnd(16)} ${[...(used.emit.get(name) ?? [])].join(', ') || '—'} → ${[...(used.on.get(name) ?? [])].join(', ') || '—'}`);
    }
  }
}

if (problems.length) {
  console.error(`\n${problems.length} problem${problems.length > 1 ? 's' : ''}:`);
  for (const p of problems) console.error(`  ✗ ${p}`);
  process.exit(1);
}
console.log('\nok: no cycles, no view imports another view, leaves import only leaves');
