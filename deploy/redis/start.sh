#!/bin/sh
# Starts redis-server with the users of users.acl (next to this script),
# each with its password from the environment — REDIS_PROJECTOR_PASSWORD,
# REDIS_QUERY_PASSWORD — and the default user off. Extra arguments go to
# redis-server.
set -eu
here=$(dirname "$0")
acl=$(mktemp)
echo "user default off" > "$acl"
grep '^user ' "$here/users.acl" | while read -r _ name rules; do
	var="REDIS_$(echo "$name" | tr 'a-z-' 'A-Z_')_PASSWORD"
	eval "password=\${$var:-}"
	if [ -z "$password" ]; then
		echo "start.sh: $var is not set" >&2
		exit 1
	fi
	echo "user $name on >$password $rules" >> "$acl"
done
exec redis-server --aclfile "$acl" "$@"
