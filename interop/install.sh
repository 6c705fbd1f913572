#!/usr/bin/env bash
# Installs what scripts/interop needs: Postfix (smtpd and smtp-sink), Dovecot
# (auth and LMTP), openssl, and aiosmtpd in a venv under target/interop.
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
