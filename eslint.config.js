// ESLint flat config: typescript-eslint with type information over every TypeScript source.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['node_modules/', 'coverage/', 'dist/', 'bench/results/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // The two rules this config exists for: an unhandled promise is a lost error.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Off: `async` methods without `await` deliberately implement Promise-returning
      // interfaces (Store, CredentialStore, fakes) so that a throw becomes a rejection.
      '@typescript-eslint/require-await': 'off',
      // `let x; … () => x?.f() …; x = …`: a binding a callback needs before it can be built stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `_name` marks a deliberately unused binding; `{ dropped, ...rest }` omits a key.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Tests read untyped JSON bodies (`await res.json()`) and assert on them with expect():
    // the no-unsafe-* family would demand a cast on every line without catching anything, and
    // a parsed body is typed `any` on purpose (its fields are what the test checks).
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  { files: ['**/*.js'], extends: [tseslint.configs.disableTypeChecked] },
  // The admin console's plain browser modules, served as they are (no build step).
  { files: ['edge-api/admin-console/static/**/*.js'], languageOptions: { globals: globals.browser } },
);
