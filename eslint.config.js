// ESLint flat config for the whole repository (`npm run lint` runs it; see CONTRIBUTING.md).
// TypeScript gets typescript-eslint's type-aware rules through the project service, which finds
// each file's own tsconfig (services/*/tsconfig.json covers src, test and bench; test/tsconfig.json
// covers test/src). Rules turned off or relaxed below each say why.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['**/dist/**', '**/node_modules/**', '**/.turbo/**', '.pitwall/**', 'test-artifacts/**', 'bench-results/**', 'models/**', 'coverage/**']),
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },

  // TypeScript: services and the repository-level tests, with type information.
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // The two rules this config exists for: a promise dropped in a kafkajs or mqtt.js callback
      // is an unhandled rejection (the process dies) or a silently lost message.
      // node:test's test()/describe()/it() return promises the runner itself awaits and reports;
      // awaiting them at the top level of a test file would only serialise the file.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] }],
      '@typescript-eslint/no-misused-promises': 'error',
      // Off: `async` with nothing to await is how this code implements Promise-returning interfaces
      // (kafkajs handlers, test fakes), and it turns a synchronous throw into the rejection callers
      // of such an API expect. A missing await is what no-floating-promises catches.
      '@typescript-eslint/require-await': 'off',
      // A `let` read by a closure before its one assignment (a shutdown hook, a poller) stays `let`:
      // as a const, that early read would throw instead of seeing undefined.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `_`-prefixed names are deliberately unused (a parameter kept for its position, a property
      // left out of a rest copy).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },

  // Tests read JSON.parse output and decoded records (any) and assert on them: the assertion is the
  // type check, and a wrong path fails the test when it runs. Source code gets all of these rules.
  {
    files: ['services/*/test/**/*.ts', 'test/src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Messages of assertions and diagnostics print such values (and arrays of numbers) as they are.
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },

  // Plain JavaScript run by node (test/*.test.mjs, this file): no tsconfig covers it, so no
  // type-aware rules.
  {
    files: ['**/*.js', '**/*.mjs'],
    ignores: ['services/console/public/**'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },

  // The console's browser code: plain ES modules served as they are, browser globals.
  {
    files: ['services/console/public/**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.browser, sourceType: 'module' },
  },
);
