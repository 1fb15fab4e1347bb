# syntax=docker/dockerfile:1
# One pos-peer per container. Build: docker build -t pos-peer . (docker compose up builds it too)

# --- build: compile TypeScript with every dependency, then keep the production ones only
FROM node:22-bookworm-slim AS build
WORKDIR /app
# No compiler toolchain: classic-level ships prebuilt binaries for linux x64 and arm64 (glibc),
# which is what node:22-bookworm-slim is; `npm ci` fails loudly on a platform without one.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
COPY bench ./bench
# npm ci runs `prepare`, which compiles to dist/
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: Node 22, production dependencies, a non-root user, data in a volume
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/src/api/dashboard ./src/api/dashboard
COPY --from=build /app/bin ./bin
# /peers/* and /genesis: where the compose file's one-shot genesis service mounts the peers'
# volumes and the shared genesis volume (owned by node, so a fresh volume is writable).
RUN mkdir -p /data /genesis /peers/peer1 /peers/peer2 /peers/peer3 /peers/peer4 \
 && chown node:node /data /genesis /peers/peer1 /peers/peer2 /peers/peer3 /peers/peer4
USER node
VOLUME ["/data"]
EXPOSE 9090 8080
# Healthy when the peer is synced and connected to at least one other (it reports into its data
# dir every 5 s; a report older than 30 s is a stuck or dead peer).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/bin/pos-peer", "health", "--data-dir", "/data"]
ENTRYPOINT ["node", "/app/bin/pos-peer"]
CMD ["--stake", "10", "--host", "0.0.0.0", "--port", "9090", "--data-dir", "/data", "--auto-bpm"]
