#!/bin/sh
# Creates, or brings up to date, the login user of each service and makes it
# a member of the service's role, which the migrations define
# (migrations/sql/00007_service_roles.sql) — the PostgreSQL counterpart of
# deploy/redis/users.acl:
#
#   command_svc    in cart_command     password POSTGRES_COMMAND_PASSWORD
#   projector_svc  in cart_projector   password POSTGRES_PROJECTOR_PASSWORD
#
# Run it as a role that may create roles (the owner), after the migrations.
# It connects as psql does: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
# Running it again changes nothing but the passwords; a user is never
# dropped, and keeps any other membership it was given.
set -eu

users="command_svc cart_command POSTGRES_COMMAND_PASSWORD
projector_svc cart_projector POSTGRES_PROJECTOR_PASSWORD"

# Every password first, so that a missing one changes nothing.
echo "$users" | while read -r _ _ var; do
	if eval "[ -z \"\${$var:-}\" ]"; then
		echo "users.sh: $var is not set" >&2
		exit 1
	fi
done

echo "$users" | while read -r user role var; do
	eval "password=\${$var}"
	# psql quotes the variables (:'name'); format() quotes again for the
	# statements \gexec runs, so no value is ever spliced in as SQL.
	psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 \
		-v user="$user" -v role="$role" -v password="$password" <<'SQL'
-- Fails unless the migrations made the role.
SELECT :'role'::regrole AS role_found \gset
SELECT format('CREATE ROLE %I', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'user', :'password') \gexec
SELECT format('GRANT %I TO %I', :'role', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_auth_members m
                   JOIN pg_roles r ON r.oid = m.roleid
                   JOIN pg_roles u ON u.oid = m.member
                  WHERE r.rolname = :'role' AND u.rolname = :'user') \gexec
SQL
	echo "users.sh: $user can log in, in role $role"
done
