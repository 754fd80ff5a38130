#!/usr/bin/env bash
# usage: curl-sign.sh METHOD PATH[?QUERY] [BODY]  (env: AUTHORITY, KEY_ID, KEY_FILE, SCHEME=https)
# Signs one request with profile pointsnet-v1 (RFC 9421, Ed25519) using openssl, and sends it with curl.
# A query string is sent and signed exactly as given (percent-encode it yourself).
set -euo pipefail
METHOD=$1; TARGET=$2; BODY=${3:-}
# "@path" is the target up to the first "?"; "@query" is that "?" and the rest, or "?" alone without one.
case $TARGET in
  *\?*) REQ_PATH=${TARGET%%\?*}; QUERY="?${TARGET#*\?}" ;;
  *) REQ_PATH=$TARGET; QUERY="?" ;;
esac
CREATED=$(date +%s); NONCE=$(openssl rand -hex 12); IDEM=$(openssl rand -hex 16)
if [ "$METHOD" = POST ]; then
  DIGEST="sha-256=:$(printf '%s' "$BODY" | openssl dgst -sha256 -binary | base64):"
  COMPONENTS='"@method" "@authority" "@path" "@query" "content-digest" "idempotency-key"'
else
  COMPONENTS='"@method" "@authority" "@path" "@query"'
fi
PARAMS="($COMPONENTS);created=$CREATED;keyid=\"$KEY_ID\";alg=\"ed25519\";nonce=\"$NONCE\";tag=\"pointsnet-v1\""
# openssl signs Ed25519 in one shot from a file (not a pipe): each run writes its base to a file of its
# own (mktemp: a new name, created mode 0600, never an existing file or link), removed when the run ends.
BASE_FILE=$(mktemp "${TMPDIR:-/tmp}/pointsnet-signature-base.XXXXXXXXXX")
trap 'rm -f "$BASE_FILE"' EXIT; trap 'exit 1' HUP INT TERM
{
  printf '"@method": %s\n"@authority": %s\n"@path": %s\n"@query": %s\n' "$METHOD" "$AUTHORITY" "$REQ_PATH" "$QUERY"
  if [ "$METHOD" = POST ]; then printf '"content-digest": %s\n"idempotency-key": %s\n' "$DIGEST" "$IDEM"; fi
  printf '"@signature-params": %s' "$PARAMS"
} > "$BASE_FILE"
SIG=$(openssl pkeyutl -sign -inkey "$KEY_FILE" -rawin -in "$BASE_FILE" | base64 -w0)
if [ "$METHOD" = POST ]; then
  curl -sS -X POST "${SCHEME:-https}://$AUTHORITY$TARGET" -H "content-type: application/json" -H "idempotency-key: $IDEM" \
    -H "content-digest: $DIGEST" -H "signature-input: sig1=$PARAMS" -H "signature: sig1=:$SIG:" --data-binary "$BODY"
else
  curl -sS "${SCHEME:-https}://$AUTHORITY$TARGET" -H "signature-input: sig1=$PARAMS" -H "signature: sig1=:$SIG:"
fi
