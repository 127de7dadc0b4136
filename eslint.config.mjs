import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/**', '.dro/**', 'bin/**', 'coverage/**', 'tools/**/*.py'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // node:test's describe/test return promises the runner itself awaits.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'test', 'it', 'before', 'after', 'beforeEach', 'afterEach', 'suite'],
            },
          ],
        },
      ],
    },
  },
  {
    // Workflow code is replayed by Temporal and must stay deterministic: no Node APIs, no I/O.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins,
          patterns: [
            {
              group: ['@temporalio/worker', '@temporalio/client', '@temporalio/activity'],
              message: 'workflows may only use @temporalio/workflow',
            },
            {
              group: ['**/storage/**', '**/engine/**', '**/infra/**', 'pino'],
              message: 'workflows must not do I/O or compute (type imports are fine)',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    // Contracts are imported by workflow code as well as activities, workers and the CLI: they stay
    // deterministic-workflow-safe and depend on neither side of that boundary.
    files: ['contracts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins,
          patterns: [
            {
              group: ['@temporalio/worker', '@temporalio/client', '@temporalio/activity'],
              message: 'contracts may only use @temporalio/workflow and @temporalio/common',
            },
            {
              group: ['**/workflows/**', '**/activities/**', '**/workers/**', '**/cli/**'],
              message: 'workflows, activities, workers and the CLI import contracts, not the other way round',
            },
            {
              group: ['**/storage/**', '**/engine/**', '**/infra/**', '**/config/**', 'pino'],
              message: 'contracts hold types and constants only (type imports are fine)',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    // The engine is pure compute: it never talks to Temporal.
    files: ['engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@temporalio/*'], message: 'engine/ must not import Temporal' }] },
      ],
    },
  },
  {
    files: ['**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
