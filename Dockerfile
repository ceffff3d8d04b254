# The operator image: `docker build -t REGISTRY/s3-encryption-operator:VERSION .`
#
# Stage 1 bundles src/ with the dev dependencies (scripts/bundle.mjs: one file per
# entry point with every runtime dependency inside, about 40 MiB less RSS for the
# operator than Node loading node_modules); stage 2 holds package.json and dist/
# only: no node_modules, no npm at run time. It runs as a numeric
# non-root user (the chart's runAsUser) and needs no writable path but /tmp,
# so it works with readOnlyRootFilesystem: true.
# test/ship/docker.test.ts checks these properties and does what stage 2 does,
# on the Node the tests run on (test/env/build-node.sh): keep the two versions equal.
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY scripts/bundle.mjs ./scripts/
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=build /src/dist ./dist
# Nothing writes under /app at run time; HOME points at the (emptyDir) /tmp.
ENV HOME=/tmp
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/main.js"]
