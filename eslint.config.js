// ESLint (flat config): eslint's and typescript-eslint's recommended rules, plus the few house rules the
// code's eslint-disable comments refer to. Formatting is Prettier's (.prettierrc.json), not ESLint's.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/', 'node_modules/', '.tap/', 'coverage/']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: {...globals.node},
    },
    linterOptions: {reportUnusedDisableDirectives: 'error'},
    rules: {
      // Sequential awaits are usually a missed Promise.all: a loop that must be sequential says so.
      'no-await-in-loop': 'error',
      // Wire formats (mlflow's JSON, Python's names) are snake_case: only bindings must be camelCase.
      camelcase: ['error', {properties: 'never', ignoreDestructuring: true, ignoreImports: true}],
      eqeqeq: ['error', 'always', {null: 'ignore'}],
      'no-console': 'error',
      // Unused arguments are fine when prefixed with _; unused bindings are not.
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'}],
      '@typescript-eslint/consistent-type-imports': ['error', {fixStyle: 'inline-type-imports'}],
      // Non-null assertions mark what a check just proved (argv[0]! after a length check).
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `catch {}` around best-effort cleanup (kill, rm) is deliberate.
      'no-empty': ['error', {allowEmptyCatch: true}],
      // A `let` read by a closure before its one assignment (a callback wired before the object exists) stays a let.
      'prefer-const': ['error', {ignoreReadBeforeAssign: true}],
    },
  },
  {
    // Domain modules never import the CLI framework (style.md): only commands/ and cli/ do.
    files: ['src/**/*.ts'],
    ignores: ['src/commands/**', 'src/cli/**'],
    rules: {'no-restricted-imports': ['error', {paths: [{name: '@oclif/core', message: 'Only src/commands and src/cli import @oclif/core.'}]}]},
  },
  {
    // Command-line scripts write their output with console.
    files: ['bench/**', 'bin/**', 'test/**'],
    rules: {'no-console': 'off'},
  },
  {
    // The page to try the model runs in the browser, as a classic script.
    files: ['templates/ui/**'],
    languageOptions: {sourceType: 'script', globals: {...globals.browser}},
  },
  {
    // A benchmark runs one thing at a time on purpose: the rounds must not overlap.
    files: ['bench/**'],
    rules: {'no-await-in-loop': 'off'},
  },
)
