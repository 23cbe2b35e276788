#!/usr/bin/env bash
# Walks the example of the cart article against a running system (`make run`):
# add 123×2, change 123→1, add 456×2, remove 123, change 456→3 — and prints the
# cart the query service serves, which holds 456×3.
set -euo pipefail
cd "$(dirname "$0")/.."

COMMAND_URL=${COMMAND_URL:-http://127.0.0.1:8080}
QUERY_URL=${QUERY_URL:-http://127.0.0.1:8081}
customer=${DEMO_CUSTOMER:-demo-$(date +%s)-$RANDOM}
token=${TOKEN:-$(make -s token SUB="$customer")}

field() { # field NAME JSON → the value of a top-level string or number field
	sed -nE "s/.*\"$1\":\"?([^\",}]*)\"?.*/\1/p" <<<"$2"
}

send() { # send PATH [BODY]
	local out
	if ! out=$(curl -sS --fail-with-body -X POST "$COMMAND_URL$1" \
		-H "Authorization: Bearer $token" -H 'Content-Type: application/json' ${2:+-d "$2"}); then
		echo "POST $1 failed: $out" >&2
		exit 1
	fi
	echo "$out"
}

echo "customer: $customer"
out=$(send /v1/carts)
cart=$(field cartId "$out")
echo "opened cart $cart"

step() { # step DESCRIPTION PATH BODY
	local out
	out=$(send "/v1/carts/$cart/$2" "$3")
	version=$(field version "$out")
	printf '%s → version %s\n' "$1" "$version"
}
step "add 123 × 2" add-item '{"productId":"123","quantity":2}'
step "change 123 → 1" change-quantity '{"productId":"123","quantity":1}'
step "add 456 × 2" add-item '{"productId":"456","quantity":2}'
step "remove 123" remove-item '{"productId":"123"}'
step "change 456 → 3" change-quantity '{"productId":"456","quantity":3}'

# The read side is eventually consistent: ask for the version the last command
# returned, and the query service waits (bounded) until its read model has it.
for _ in 1 2 3; do
	doc=$(curl -sS -w '\n%{http_code}' -H "Authorization: Bearer $token" "$QUERY_URL/v1/carts/$cart?minVersion=$version")
	status=${doc##*$'\n'}
	doc=${doc%$'\n'*}
	if [[ "$status" == 200 ]]; then
		echo
		echo "the cart, as the query service serves it:"
		if command -v jq >/dev/null; then jq . <<<"$doc"; else echo "$doc"; fi
		exit 0
	fi
done
echo "the query service did not reach version $version; last answer: $status $doc" >&2
exit 1
