# Herald: one node. `docker compose up` (docker-compose.yml) runs two of them on Redis behind nginx.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY server ./server
COPY sdk ./sdk
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    HERALD_HOST=0.0.0.0 \
    HERALD_PORT=6001 \
    HERALD_DATA_DIR=/data
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Static files read from the source tree at run time (the debug console's page).
COPY --from=build /app/server/console/public ./server/console/public
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 6001
# /health: the process is alive. (/ready also turns 503 while draining or while Redis is unreachable.)
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:6001/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM closes sockets with 4200 (clients reconnect to the other node) and leaves the cluster.
STOPSIGNAL SIGTERM
CMD ["node", "dist/server/main.js"]
