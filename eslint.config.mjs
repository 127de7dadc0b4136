import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const engineIoModules = ['fs', 'fs/promises', 'child_process', 'net', 'http', 'https'].flatMap((m) => [
  { name: m, message: 'engine/ takes bytes: read and write files in storage/ or the caller' },
  { name: `node:${m}`, message: 'engine/ takes bytes: read and write files in storage/ or the caller' },
]);
const engineLayerPatterns = [
  { group: ['@temporalio/*'], message: 'engine/ must not import Temporal' },
  {
    group: ['**/activities/**', '**/workflows/**', '**/workers/**', '**/cli/**', '**/contracts/**'],
    message: 'engine/ is used by the pipeline and imports none of it',
  },
];

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
    // The engine is compute on bytes: it never talks to Temporal, never reaches up into the layers
    // that use it, and reads no files itself (the callers hand it bytes).
    files: ['engine/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: engineIoModules, patterns: engineLayerPatterns }],
    },
  },
  {
    // Engine modules that still read or write files themselves; this list only shrinks.
    files: [
      'engine/backend.ts',
      'engine/data/folder-import.ts',
      'engine/data/pickapic.ts',
      'engine/io/diffusers-pipeline.ts',
      'engine/io/safetensors.ts',
      'engine/onnx/cuda-probe.ts',
      'engine/onnx/gpu-backend.ts',
      'engine/ranking/shard-committer.ts',
      'engine/rewards/clip-onnx-reward.ts',
      'engine/rewards/onnx-reward.ts',
      'engine/rewards/preference-model.ts',
      'engine/study/export.ts',
    ],
    rules: { 'no-restricted-imports': ['error', { patterns: engineLayerPatterns }] },
  },
  {
    // The artifact store sits below the pipeline: activities and the CLI use it, never the reverse.
    files: ['storage/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/contracts/**',
                '**/workflows/**',
                '**/activities/**',
                '**/workers/**',
                '**/cli/**',
                '**/engine/**',
                '@temporalio/*',
              ],
              message: 'storage/ is imported by the pipeline, engine-free, and imports none of it',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
