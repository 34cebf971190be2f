# Shared steps of scripts/run and scripts/test: a virtualenv with pinned packages, and the
# Postgres and Redis services the tests need. Source it; it defines functions only.

PYTHON=${PYTHON:-python3}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_venv REQUIREMENTS_FILE: create .venv and install the file, skipping work when the
# file has not changed since the last install.
ensure_venv() {
  local requirements=$1 stamp=".venv/.installed-$(basename "$1")"
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  local digest
  digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "installing $requirements into .venv ..." >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$digest" > "$stamp"
  fi
}

apt_install() {
  echo "installing Debian packages: $*" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# ensure_postgres: PostgreSQL answering on 127.0.0.1:5432 with trust auth for local tests.
ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
    local hba
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n 1)
    # Test machines only: the suite connects as postgres over TCP without a password.
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  echo "starting PostgreSQL ..." >&2
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start \
    || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return 0
    sleep 1
  done
  echo "PostgreSQL did not start on 127.0.0.1:5432" >&2
  return 1
}

# ensure_redis: Redis answering on 127.0.0.1:6379.
ensure_redis() {
  if redis_ping; then return 0; fi
  command -v redis-server >/dev/null || apt_install redis-server
  echo "starting Redis ..." >&2
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do
    redis_ping && return 0
    sleep 1
  done
  echo "Redis did not start on 127.0.0.1:6379" >&2
  return 1
}

redis_ping() {
  if command -v redis-cli >/dev/null; then
    [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]
  else
    (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) \
      2>/dev/null
  fi
}

# ensure_chromium: Debian's Chromium for the end-to-end tests (Playwright cannot download
# its own browser here).
ensure_chromium() {
  command -v chromium >/dev/null || apt_install chromium
}

# ensure_js_test_client: node, and the npm packages of tests/js (socket.io-client) as locked.
ensure_js_test_client() {
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  local stamp=tests/js/node_modules/.installed digest
  digest=$(sha256sum tests/js/package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "installing tests/js packages ..." >&2
    npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
    echo "$digest" > "$stamp"
  fi
}
