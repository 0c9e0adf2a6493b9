# syntax=docker/dockerfile:1
# Pitwall: every service's image, from this one file. SERVICE names the workspace services/<SERVICE>
# (@pitwall/<SERVICE>); each service has a stage "service-<SERVICE>" below. Build from the
# repository root:
#   docker build --build-arg SERVICE=ingest -t pitwall/ingest:0.1.0 .
#   for s in ingest windowing scoring incidents dispatch console simulator; do
#     docker build --build-arg SERVICE=$s -t pitwall/$s:0.1.0 .; done
# Run the console (CONSOLE_USERS is required: password hashes, made by the image's own CLI):
#   USERS=$(docker run --rm -i pitwall/console:0.1.0 node dist/src/user-cli.js jane operator --password-stdin <<<"$PASSWORD")
#   docker run -p 8080:8080 -e CONSOLE_USERS="$USERS" -e KAFKA_BROKERS=... pitwall/console:0.1.0
#
# `turbo prune` cuts the monorepo down to the service and the workspaces it depends on, so an image
# installs, compiles and ships exactly those (their manifests, a lockfile reduced to them), and a
# new workspace needs no change here. The image keeps the repository layout under /app
# (/app/node_modules, /app/schemas, /app/services/<workspace>): @pitwall/common finds the Avro
# schemas at ../../schemas relative to a workspace, the console its static files at
# services/console/public and uPlot in node_modules, and npm links workspaces as
# node_modules/@pitwall/* -> services/*. test/dockerfile.test.mjs checks all of this offline.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG SERVICE

# ---- prune: out/json holds the root and the pruned workspaces' package.json and the lockfile cut
# down to them, out/full their sources. turbo is the version the lockfile pins (a root
# devDependency), installed alone: the whole tree is not needed to prune it.
FROM ${NODE_IMAGE} AS prune
ARG SERVICE
WORKDIR /repo
COPY package-lock.json ./
RUN npm install -g --no-audit --no-fund --loglevel=error "turbo@$(node -p "require('./package-lock.json').packages['node_modules/turbo'].version")"
COPY . .
RUN test -n "$SERVICE" || { echo 'SERVICE is required: docker build --build-arg SERVICE=<service> .' >&2; exit 1; } \
 && TURBO_TELEMETRY_DISABLED=1 turbo prune "@pitwall/${SERVICE}" --docker --out-dir /out

# ---- deps: production dependencies only (this is what ships; dev dependencies never land here).
# npm install, like scripts/pitwall setup (see there why not npm ci); it follows the lockfile.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=prune /out/json/ /out/package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund --loglevel=error \
 && npm cache clean --force

# ---- build: adds the dev dependencies (TypeScript, turbo, @types/...) and compiles the service and
# the workspaces it uses, in dependency order. Tests and benchmarks are not shipped, so they are
# not compiled; output paths stay those of the workspaces' own build (dist/src/...).
FROM ${NODE_IMAGE} AS build
ARG SERVICE
WORKDIR /app
COPY --from=prune /out/json/ /out/package-lock.json ./
RUN npm install --no-audit --no-fund --loglevel=error
COPY --from=prune /out/full/ ./
# In no workspace, so not in the pruned tree: the compiler settings every tsconfig.json extends.
COPY tsconfig.base.json ./
RUN rm -rf services/*/test services/*/bench \
 && TURBO_TELEMETRY_DISABLED=1 node_modules/.bin/turbo run build --filter="@pitwall/${SERVICE}" --output-logs=errors-only \
 && mkdir /ship \
 && cp -R --parents services/*/dist/src /ship/

# ---- runtime: what every service ships. Files stay owned by root and read-only to the service
# user: the app never writes to its own tree, which also lets Kubernetes run it with
# readOnlyRootFilesystem.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/package.json ./
COPY --from=deps /app/node_modules/ node_modules/
# The pruned workspaces' package.json (what node resolves @pitwall/* through), then their code.
COPY --from=deps /app/services/ services/
COPY --from=build /ship/services/ services/
COPY schemas/ schemas/

# ---- per service: the port of its /healthz (the default of its config, which the variable
# overrides at run time; the check reads it instead of hard-coding it) and what else it needs.
FROM runtime AS service-ingest
ENV HEALTH_PORT=9101
EXPOSE 9101
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || '9101') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

FROM runtime AS service-windowing
ENV HEALTH_PORT=9102
EXPOSE 9102
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || '9102') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Models are not baked in: mount a directory holding <name>/<version>/ (model.json, weights,
# metadata.json) at /models (docker-compose: ./models; Kubernetes: the pitwall-models PVC). The wasm
# backend's .wasm files come with @tensorflow/tfjs-backend-wasm in node_modules; tfjs-node is
# never installed (it is no dependency: it downloads libtensorflow).
FROM runtime AS service-scoring
ENV HEALTH_PORT=9103 \
    MODEL_DIR=/models
EXPOSE 9103
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || '9103') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

FROM runtime AS service-dispatch
ENV HEALTH_PORT=9104
EXPOSE 9104
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || '9104') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

FROM runtime AS service-simulator
ENV HEALTH_PORT=9105
EXPOSE 9105
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || '9105') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

FROM runtime AS service-incidents
ENV HEALTH_PORT=9106
EXPOSE 9106
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || '9106') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The UI port (CONSOLE_PORT) also serves /healthz. Browser code: plain ES modules and CSS, served
# as they are (no bundling step); taken from the context, not the pruned tree, so that this stage
# builds whatever SERVICE is (the legacy builder builds every stage).
FROM runtime AS service-console
ENV CONSOLE_PORT=8080
COPY services/console/public/ services/console/public/
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.CONSOLE_PORT || '8080') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# ---- the image: the service's stage, run as the unprivileged user from its workspace.
FROM service-${SERVICE}
ARG SERVICE
USER node
WORKDIR /app/services/${SERVICE}
CMD ["node", "dist/src/main.js"]
