#!/usr/bin/env bash
# Installs what scripts/interop needs: Postfix (smtpd and smtp-sink), Dovecot
# (auth and LMTP), openssl, aiosmtpd in a venv under target/interop, and
# Debian's Exim extracted under target/interop/exim (interop_install_exim).
# Idempotent: does nothing that is already done. Sourced by scripts/interop.

interop_install() {
  local venv=$1
  local need=()
  local pkg
  for pkg in postfix dovecot-core dovecot-lmtpd openssl; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      need+=("$pkg")
    fi
  done
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "interop: need root to install ${need[*]}" >&2
      return 1
    fi
    echo "interop: installing ${need[*]}"
    # No question asked, no mail system configured in /etc: every server here
    # runs from its own configuration under interop/.
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    echo 'postfix postfix/mailname string localhost' | debconf-set-selections
    # Keep the packages from starting their system-wide services.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 755 "$policy"
      created_policy=1
    fi
    local apt_opts=(-y -q -o DPkg::Lock::Timeout=600 --no-install-recommends)
    local rc=0
    # The package lists may be missing or stale on a fresh machine.
    DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >"$INTEROP_STATE/apt.log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" "${need[@]}" >>"$INTEROP_STATE/apt.log" 2>&1 || rc=$?
    if [ "$created_policy" = 1 ]; then
      rm -f "$policy"
    fi
    if [ "$rc" -ne 0 ]; then
      tail -n 30 "$INTEROP_STATE/apt.log" >&2
      return "$rc"
    fi
  fi
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    echo "interop: installing aiosmtpd into $venv"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >"$INTEROP_STATE/venv.log" 2>&1; then
      # Debian's own python3 needs python3-venv for ensurepip.
      rm -rf "$venv"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 python3-venv \
        >>"$INTEROP_STATE/venv.log" 2>&1 &&
        /usr/bin/python3 -m venv "$venv" >>"$INTEROP_STATE/venv.log" 2>&1 || {
        tail -n 20 "$INTEROP_STATE/venv.log" >&2
        return 1
      }
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check 'aiosmtpd==1.4.6' >"$INTEROP_STATE/pip.log" 2>&1 || {
      tail -n 30 "$INTEROP_STATE/pip.log" >&2
      return 1
    }
  fi
}

# Debian's Exim (4.96 in Debian 12, which offers PIPECONNECT), extracted into
# `$1` rather than installed: the exim4 packages and Postfix both provide
# mail-transport-agent, so installing one removes the other. What the
# extracted binary needs besides: libidn12 (a plain library, installed without
# removing anything) and the system user Debian-exim, which is compiled in
# (looked up at start even though exim.conf runs it as nobody). The packages
# are downloaded again only when the binary is missing.
interop_install_exim() {
  local root=$1
  if [ "$(id -u)" -ne 0 ]; then
    echo "interop: need root to run Exim" >&2
    return 1
  fi
  local log=$INTEROP_STATE/exim-install.log
  if ! dpkg-query -W -f='${Status}' libidn12 2>/dev/null | grep -q 'install ok installed'; then
    echo "interop: installing libidn12"
    # --no-remove: a library only; stop rather than remove anything.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 \
      --no-install-recommends --no-remove libidn12 >>"$log" 2>&1 || {
      DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >>"$log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 \
          --no-install-recommends --no-remove libidn12 >>"$log" 2>&1
    } || {
      tail -n 30 "$log" >&2
      return 1
    }
  fi
  if ! getent passwd Debian-exim >/dev/null; then
    useradd --system --no-create-home --shell /usr/sbin/nologin Debian-exim >>"$log" 2>&1 || {
      tail -n 10 "$log" >&2
      return 1
    }
  fi
  if [ -x "$root/usr/sbin/exim4" ]; then
    return 0
  fi
  echo "interop: fetching Exim into $root"
  local debs=$INTEROP_STATE/exim-debs pkg deb
  # apt-get download runs as the _apt user where it can: it must reach the
  # directory.
  mkdir -p "$debs" && chmod 777 "$debs"
  local pkgs=(exim4-daemon-light exim4-base exim4-config)
  if ! (cd "$debs" && apt-get download -q "${pkgs[@]}") >>"$log" 2>&1; then
    # The package lists may be missing or stale on a fresh machine.
    DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >>"$log" 2>&1 &&
      (cd "$debs" && apt-get download -q "${pkgs[@]}") >>"$log" 2>&1 || {
      tail -n 30 "$log" >&2
      return 1
    }
  fi
  rm -rf "$root.tmp"
  mkdir -p "$root.tmp"
  for pkg in "${pkgs[@]}"; do
    deb=$(ls "$debs/${pkg}"_*.deb 2>/dev/null | head -n 1)
    if [ -z "$deb" ] || ! dpkg -x "$deb" "$root.tmp" >>"$log" 2>&1; then
      echo "interop: cannot extract $pkg" >&2
      tail -n 10 "$log" >&2
      rm -rf "$root.tmp"
      return 1
    fi
  done
  rm -rf "$root" && mv "$root.tmp" "$root"
  # -bV reads a configuration: an empty one (the system has none).
  if ! "$root/usr/sbin/exim4" -C /dev/null -bV >>"$log" 2>&1; then
    tail -n 10 "$log" >&2
    return 1
  fi
}
