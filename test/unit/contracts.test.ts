/**
 * Activities, workers and the CLI take what they share with workflows (inputs, results, queries,
 * stage names, task queues, failure types) from contracts/, never from workflow modules: those are
 * replayed code whose imports must stay deterministic, and types parked beside them drift into
 * runtime code. The only thing such a file may take from workflows/ is a workflow function itself
 * (a client starts it by reference). Contracts in turn depend on neither side.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT as ROOT, sourceFiles } from '../harness/source-files';

interface ImportStatement {
  /** The bindings text between `import`/`export` and `from`; empty for side-effect and dynamic imports. */
  clause: string;
  specifier: string;
}

function importsOf(source: string): ImportStatement[] {
  const found: ImportStatement[] = [];
  for (const m of source.matchAll(/^[ \t]*(?:import|export)\s+([\w$\s{},*]*?)\s+from\s+['"]([^'"]+)['"]/gm))
    found.push({ clause: m[1]!, specifier: m[2]! });
  for (const m of source.matchAll(/^[ \t]*import\s+['"]([^'"]+)['"]/gm))
    found.push({ clause: '', specifier: m[1]! });
  for (const m of source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g))
    found.push({ clause: '', specifier: m[1]! });
  return found;
}

/** The repository-relative module a relative specifier names, without extension; undefined for packages. */
function target(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const resolved = path.relative(ROOT, path.resolve(path.dirname(file), specifier));
  return resolved
    .split(path.sep)
    .join('/')
    .replace(/\.(ts|js)$/, '');
}

/** Why an import of a workflow module is not allowed, or undefined when it only takes workflow functions. */
function workflowImportProblem(statement: ImportStatement, module: string): string | undefined {
  if (/-types$/.test(module) || module.endsWith('/stage-graph')) return `imports ${module}`;
  const clause = statement.clause.trim();
  if (clause === '') return `imports ${module} for its side effects`;
  if (/^type\b/.test(clause)) return `imports types from ${module}`;
  const braces = /^\{([\s\S]*)\}$/.exec(clause);
  if (!braces) return `imports ${module} as a whole (${clause})`;
  const others = braces[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .filter((s) => /^type\s/.test(s) || !/Workflow$/.test(s.split(/\s+as\s+/)[0]!));
  return others.length > 0 ? `takes ${others.join(', ')} from ${module}` : undefined;
}

function offenders(
  dirs: string[],
  problem: (s: ImportStatement, module: string) => string | undefined,
): string[] {
  const found: string[] = [];
  for (const file of sourceFiles(dirs)) {
    for (const statement of importsOf(fs.readFileSync(file, 'utf8'))) {
      const module = target(file, statement.specifier);
      const why = module === undefined ? undefined : problem(statement, module);
      if (why) found.push(`${path.relative(ROOT, file)}: ${why}`);
    }
  }
  return found;
}

test('the import scan sees type imports, multi-line imports and workflow functions', () => {
  const file = path.join(ROOT, 'cli', 'commands', 'example.ts');
  const check = (source: string): (string | undefined)[] =>
    importsOf(source).map((s) => workflowImportProblem(s, target(file, s.specifier)!));
  assert.deepEqual(check("import { pipelineWorkflow } from '../../workflows/pipeline';"), [undefined]);
  assert.equal(check("import type { PipelineInput } from '../../workflows/pipeline-types';").length, 1);
  assert.ok(check("import type { PipelineInput } from '../../workflows/pipeline-types';")[0]);
  assert.ok(check("import {\n  smokeWorkflow,\n  type SmokeResult,\n} from '../../workflows/smoke';")[0]);
  assert.ok(check("import { trainingWorkflow, trainingProgressQuery } from '../../workflows/training';")[0]);
  assert.ok(check("import { STAGE_NAMES } from '../../workflows/stage-graph';")[0]);
  assert.ok(check("import * as wf from '../../workflows/pipeline';")[0]);
  assert.ok(check("export { STAGE_METHOD } from '../../workflows/training';")[0]);
  assert.ok(check("const m = await import('../../workflows/evaluation-types');")[0]);
});

test('activities, workers and the CLI take shared contracts from contracts/, not from workflows/', () => {
  const dirs = ['activities', 'cli', 'workers'];
  assert.ok(sourceFiles(dirs).length >= 10, 'too few source files found: the scan is broken');
  const found = offenders(dirs, (statement, module) =>
    module.startsWith('workflows/') ? workflowImportProblem(statement, module) : undefined,
  );
  assert.deepEqual(found, []);
});

test('contracts import nothing from workflows, activities, workers or the CLI', () => {
  const found = offenders(['contracts'], (_, module) =>
    /^(workflows|activities|workers|cli)(\/|$)/.test(module) ? `imports ${module}` : undefined,
  );
  assert.deepEqual(found, []);
});
