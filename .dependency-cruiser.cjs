/**
 * The hexagon's rules, checked by `npm run lint` (docs/adr/0002-hexagonal-layers.md):
 * domain imports nothing but itself, the platform kernel and the event contracts' plain data;
 * application imports no adapter, framework, database or bus; services never import each other.
 */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment: 'domain/ may import only domain/, the platform kernel and the contracts (no framework, database or bus)',
      severity: 'error',
      from: { path: '^services/[^/]+/src/domain/' },
      to: {
        pathNot: ['^services/[^/]+/src/domain/', '^packages/platform/src/kernel/', '^packages/contracts/src/', '^node_modules/(typebox|uuid)/'],
      },
    },
    {
      name: 'application-uses-ports',
      comment: 'application/ may import domain/, application/, the platform kernel and the contracts, never an adapter or a framework',
      severity: 'error',
      from: { path: '^services/[^/]+/src/application/' },
      to: {
        pathNot: [
          '^services/[^/]+/src/(domain|application)/',
          '^packages/platform/src/kernel/',
          '^packages/contracts/src/',
          '^node_modules/(typebox|uuid)/',
        ],
      },
    },
    {
      name: 'no-cross-service-imports',
      comment: 'a service never imports another service: they talk by HTTP and events only',
      severity: 'error',
      from: { path: '^services/([^/]+)/' },
      to: { path: '^services/([^/]+)/', pathNot: '^services/$1/' },
    },
    {
      name: 'libraries-import-no-service',
      comment: 'packages/ are libraries: they know no service and no host (the arrows point from apps to services to packages)',
      severity: 'error',
      from: { path: '^packages/' },
      to: { path: '^(services|apps)/' },
    },
    {
      name: 'services-import-no-host',
      comment: 'a service describes itself; the hosts in apps/ load it, never the other way round',
      severity: 'error',
      from: { path: '^services/' },
      to: { path: '^apps/' },
    },
    {
      name: 'adapters-know-no-composition-root',
      comment: "adapters are wired by main.ts and described by module.ts; they never import them",
      severity: 'error',
      from: { path: '^services/[^/]+/src/adapters/' },
      to: { path: '^services/[^/]+/src/(main|module|index)\\.ts$' },
    },
    {
      name: 'hosts-use-service-modules',
      comment: "the hosts in apps/ load a service through its package's index (its module), never its domain, use cases or adapters",
      severity: 'error',
      from: { path: '^apps/' },
      to: { path: '^services/[^/]+/src/(domain|application|adapters)/' },
    },
    {
      name: 'web-is-a-client',
      comment: 'the web app talks to the API over HTTP: it imports only itself, the status vocabulary of the contracts, React and i18next',
      severity: 'error',
      from: { path: '^web/src/' },
      to: {
        // vite/client: the bundler's types for import.meta.env (a declaration file, no code).
        pathNot: ['^web/src/', '^packages/contracts/src/statuses\\.ts$', '^node_modules/(react|react-dom|react-i18next|i18next)/', '\\.css$', '^vite/client$'],
      },
    },
    {
      name: 'gateway-loads-no-database-or-bus',
      comment: "the gateway keeps no data and reads no events: nothing it runs reaches PGlite, pg or NATS (it imports the platform's entries it uses, not the barrel)",
      severity: 'error',
      from: { path: '^services/gateway/src/' },
      to: { path: '^node_modules/(@electric-sql/pglite|pg|pg-pool|@nats-io/[^/]+|nats)/', reachable: true },
    },
    {
      name: 'kernel-is-pure',
      comment: 'the platform kernel is what domain code may import, so it imports no framework either',
      severity: 'error',
      from: { path: '^packages/platform/src/kernel/' },
      to: { pathNot: ['^packages/platform/src/kernel/', '^packages/contracts/src/', '^node_modules/(typebox|uuid)/'] },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(packages|services|apps)/[^/]+/(dist|test)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    combinedDependencies: true,
    preserveSymlinks: false,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['source', 'import', 'node', 'default'],
      extensions: ['.ts', '.js'],
      mainFields: ['module', 'main', 'types'],
    },
  },
};
