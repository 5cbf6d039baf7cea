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
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
);
