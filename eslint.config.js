import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** What the web app (web/src, run in a browser) may use without importing it. */
const BROWSER_GLOBALS = Object.fromEntries(
  [
    'window', 'document', 'navigator', 'location', 'history', 'localStorage', 'sessionStorage', 'console',
    'fetch', 'EventSource', 'URL', 'URLSearchParams', 'AbortController', 'AbortSignal', 'Headers', 'Request', 'Response', 'FormData',
    'Event', 'CustomEvent', 'EventTarget', 'HTMLElement', 'HTMLInputElement', 'HTMLFormElement', 'Element', 'Node', 'KeyboardEvent', 'MouseEvent',
    'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'requestAnimationFrame', 'cancelAnimationFrame', 'queueMicrotask',
    'crypto', 'structuredClone', 'Intl', 'TextEncoder', 'TextDecoder', 'matchMedia', 'getComputedStyle',
  ].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  { ignores: ['**/dist/**', 'web/dist/**', '**/node_modules/**', 'data/**', 'test-output/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    // The web app: TypeScript and JSX for the bundler (Vite), in a browser.
    files: ['web/src/**/*.{ts,tsx}'],
    languageOptions: { sourceType: 'module', parserOptions: { ecmaFeatures: { jsx: true } }, globals: BROWSER_GLOBALS },
  },
  {
    // Type-aware linting for all TypeScript. The project service finds each file's nearest tsconfig.json
    // (the root one for packages, services, apps, test and bench; web/tsconfig.json for the web app).
    files: ['**/*.{ts,tsx,mts,cts}'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Promises: a heavily asynchronous codebase must not drop or misuse them.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      // Types that lie or leak into strings.
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowAny: false, allowNever: false, allowRegExp: false },
      ],
      '@typescript-eslint/no-base-to-string': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    // Plain JavaScript (this file, the dependency-cruiser config) is linted without type information.
    files: ['**/*.{js,cjs,mjs}'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
);
