# vast-gchat's adapter as a container: one replica of `serve` (docs/replicas.md), on Node 26, the
# Active LTS line, on which CI runs the whole test suite. Node 22.13+ has SQLite
# built in (node:sqlite) and the PostgreSQL client is plain JavaScript, so nothing is compiled and
# no install script runs. It runs as the unprivileged user `node`, listens on 0.0.0.0:8787, and
# reports its health on GET /health.
#
#   docker build -t vast-gchat .
#   docker run -p 8787:8787 -e VAST_GCHAT_STORE=postgresql://... \
#     -e VAST_WEBHOOK_SECRET_FILE=/run/secrets/webhook_secret -e GOOGLE_CHAT_URL_FILE=/run/secrets/chat_url \
#     -v /srv/vast-gchat/secrets:/run/secrets:ro vast-gchat serve --host 0.0.0.0 --public-url https://hooks.example.org

FROM node:26-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:26-bookworm-slim
# Memory: serve's settings as a service (SERVE_NODE_OPTIONS in src/cli/commands/service.ts: a heap
# cap, a small young generation, two malloc arenas; docs/platforms.md, "Memory").
ENV NODE_ENV=production \
    VAST_GCHAT_CONFIG_DIR=/var/lib/vast-gchat \
    VAST_GCHAT_SECRET_STORE=file \
    NODE_OPTIONS="--max-old-space-size=256 --max-semi-space-size=1" \
    MALLOC_ARENA_MAX=2 \
    PORT=8787
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, no optional ones (better-sqlite3 is for Node 20; a container has
# no keychain for @napi-rs/keyring; ngrok only if asked for), and no install scripts.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY --from=build /src/dist ./dist
# The config directory: the user's own, 0700, as vast-gchat requires of it.
RUN install -d -m 0700 -o node -g node /var/lib/vast-gchat
USER node
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8787)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/vast-gchat.js"]
CMD ["serve", "--host", "0.0.0.0"]
