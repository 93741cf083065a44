# Sourced: installs the Debian packages the tests and the local cluster need, when root and missing.
need=()
for pair in sshd:openssh-server memcached:memcached tmux:tmux parallel-scp:pssh git:git \
        iptables:iptables memccapable:libmemcached-tools nc:netcat-openbsd less:less; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "missing Debian packages: ${need[*]} (run as root to install them)" >&2
    fi
fi
