import { defaultClientConditions, defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

/** The API paths the gateway serves: in `vite` (dev server) they go to a running gateway. */
const API_PATHS = ['/auth', '/.well-known', '/books', '/libraries', '/assignments', '/reservations', '/reservationPages', '/admin', '/health', '/openapi.json', '/docs'];

const gateway = process.env.BSTORE_GATEWAY_URL ?? 'http://127.0.0.1:8088';

export default defineConfig({
  base: '/',
  plugins: [react()],
  // Workspace packages (@bstore/contracts/statuses) export their TypeScript sources under "source".
  resolve: { conditions: ['source', ...defaultClientConditions] },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    // No inline scripts or styles: the gateway's Content-Security-Policy is `default-src 'self'`.
    assetsInlineLimit: 0,
  },
  server: {
    host: '127.0.0.1',
    proxy: Object.fromEntries(API_PATHS.map((path) => [path, { target: gateway, changeOrigin: false }])),
  },
});
