# The operator image: `docker build -t REGISTRY/s3-encryption-operator:VERSION .`
#
# Stage 1 compiles the TypeScript with the dev dependencies; stage 2 holds only
# the runtime dependencies (npm ci --omit=dev) and dist/. It runs as a numeric
# non-root user (the chart's runAsUser) and needs no writable path but /tmp,
# so it works with readOnlyRootFilesystem: true.
# test/ship/docker.test.ts checks these properties and does what stage 2 does,
# on the Node the tests run on (test/env/build-node.sh): keep the two versions equal.
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
# Nothing writes under /app at run time; HOME points at the (emptyDir) /tmp.
ENV HOME=/tmp
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/main.js"]
