# syntax=docker/dockerfile:1
#
# One image for the six bstore services (cluster mode, one service per container).
#
#   docker build -t bstore .
#   docker run --rm -p 8088:8088 bstore gateway            # the argument picks the service
#   docker build --build-arg SERVICE=book -t bstore-book .  # or bake a default in: docker run bstore-book
#
# Migrations (run once per SQL service, before its containers start with DATABASE_MIGRATE=false):
#   docker run --rm -e DATABASE_URL=postgres://... --entrypoint node bstore apps/launcher/dist/migrate.js book
#
# Configuration is the environment of a service process (README, "Environment of a service
# process"); compose.yaml wires the whole system for a laptop. Checked by test/deploy/container.test.ts.

# The base of both stages. Node 24 is the project's runtime (package.json "engines", ADR 0001), and
# the tag pins the very release the tests run on (the root devDependency "node", 24.21.0), so the
# image and `npm test` use the same Node. Slim: no compilers, no curl (the health check uses node).
# Debian bookworm like the development machine, so PostgreSQL/NATS/Redis behave as tested. For
# reproducible builds pin the digest too (node:24.21.0-bookworm-slim@sha256:...), updated by a bot.
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /app

# Dependencies first, from the manifests only, so editing a source file does not reinstall them.
# npm ci needs every workspace's package.json to check the lockfile.
COPY package.json package-lock.json .npmrc ./
COPY packages/contracts/package.json packages/contracts/
COPY packages/platform/package.json packages/platform/
COPY apps/launcher/package.json apps/launcher/
COPY services/book/package.json services/book/
COPY services/reservation/package.json services/reservation/
COPY services/assignment/package.json services/assignment/
COPY services/customercenter/package.json services/customercenter/
COPY services/notification/package.json services/notification/
COPY services/gateway/package.json services/gateway/
COPY web/package.json web/
# The full install (TypeScript, Vite). Its install scripts are allowed: the devDependency "node"
# fetches its binary in one, and `npm run` puts node_modules/.bin (that node) first on the PATH.
RUN --mount=type=cache,target=/root/.npm npm ci

# The sources, then the compiled build: tsc -b to every package's dist/, Vite to web/dist.
COPY tsconfig.base.json tsconfig.build.json ./
COPY packages/ packages/
COPY services/ services/
COPY apps/ apps/
COPY web/ web/
RUN npm run build && npm run build:web

# ---------------------------------------------------------------------------------------------
FROM node:24.21.0-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production

# Production dependencies only, from the same manifests (the layer is reused until they change).
# --omit=dev leaves out the "node" binary package, TypeScript and Vite; --omit=optional the test-only
# kustomize binary (the root's one optional dependency; pg's pg-cloudflare is not for Node). No
# production dependency has an install script (checked by the test), so --ignore-scripts changes
# nothing but keeps it that way.
COPY package.json package-lock.json .npmrc ./
COPY packages/contracts/package.json packages/contracts/
COPY packages/platform/package.json packages/platform/
COPY apps/launcher/package.json apps/launcher/
COPY services/book/package.json services/book/
COPY services/reservation/package.json services/reservation/
COPY services/assignment/package.json services/assignment/
COPY services/customercenter/package.json services/customercenter/
COPY services/notification/package.json services/notification/
COPY services/gateway/package.json services/gateway/
COPY web/package.json web/
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --omit=optional --ignore-scripts

# Only what was compiled: each package's dist/ (its package.json "exports" default condition points
# there) and the built web app, which the gateway serves from /app/web/dist (BSTORE_WEB_ROOT's
# default, resolved from apps/launcher/dist). No TypeScript sources, no tests.
COPY --from=build /app/packages/contracts/dist packages/contracts/dist
COPY --from=build /app/packages/platform/dist packages/platform/dist
COPY --from=build /app/apps/launcher/dist apps/launcher/dist
COPY --from=build /app/services/book/dist services/book/dist
COPY --from=build /app/services/reservation/dist services/reservation/dist
COPY --from=build /app/services/assignment/dist services/assignment/dist
COPY --from=build /app/services/customercenter/dist services/customercenter/dist
COPY --from=build /app/services/notification/dist services/notification/dist
COPY --from=build /app/services/gateway/dist services/gateway/dist
COPY --from=build /app/web/dist web/dist

# A container listens on every interface (a process alone defaults to 127.0.0.1).
ENV HOST=0.0.0.0
# `--build-arg SERVICE=book` makes a per-service image whose default service is book; without it the
# service is the argument (`docker run bstore book`), and none at all stops with exit 2 naming them.
ARG SERVICE=""
ENV BSTORE_SERVICE=${SERVICE}

LABEL org.opencontainers.image.title="bstore" \
      org.opencontainers.image.description="bstore service: docker run bstore <book|reservation|assignment|customercenter|notification|gateway>" \
      org.opencontainers.image.licenses="MIT" \
      org.bstore.migrate="docker run --rm --entrypoint node bstore apps/launcher/dist/migrate.js <book|reservation|assignment|notification>"

# reservation, assignment, book, customercenter, notification, gateway (the seed's ports; PORT changes one).
EXPOSE 8081 8082 8083 8084 8085 8088

# The code stays root's and read-only to the process; it runs as the image's unprivileged user.
USER 1000:1000

# Liveness with node (slim has no curl): the port is PORT, else the default of the service named
# after service.js on PID 1's command line (or BSTORE_SERVICE). Readiness (/health/ready) is for the
# orchestrator's own check (compose.yaml, Kubernetes), which knows which service it started.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const a=require('node:fs').readFileSync('/proc/1/cmdline','utf8').split('\\0');const i=a.findIndex(x=>x.endsWith('service.js'));const s=(i>=0&&a[i+1])||process.env.BSTORE_SERVICE;const p=process.env.PORT||{reservation:8081,assignment:8082,book:8083,customercenter:8084,notification:8085,gateway:8088}[s];fetch('http://127.0.0.1:'+p+'/health/live',{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM starts the graceful stop (readiness fails, consumers and requests finish, the outbox
# flushes); node is PID 1 and handles it itself (close-with-grace).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "apps/launcher/dist/service.js"]
CMD []
