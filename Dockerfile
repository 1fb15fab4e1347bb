# syntax=docker/dockerfile:1
# One pos-peer per container. Build: docker build -t pos-peer . (docker compose up builds it too)

# --- build: compile TypeScript with every dependency, then keep the production ones only
FROM node:22-bookworm-slim AS build
WORKDIR /app
# classic-level ships prebuilt binaries; the toolchain is only for platforms without one
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
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
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 9090 8080
# Healthy while the peer accepts libp2p connections on its port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('net').connect(9090,'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/pos-peer"]
CMD ["--stake", "10", "--host", "0.0.0.0", "--port", "9090", "--data-dir", "/data", "--auto-bpm"]
