#!/bin/sh
# Start Alertmanager with the webhook URL from $ALERTS_WEBHOOK_URL, which is never committed.
#
# Alertmanager 0.25 does not expand environment variables in its config and has no url_file for
# webhooks, so this copies the committed alertmanager.yml (read-only mount) with its placeholder
# URL replaced, to a file only this container's user can read, and runs Alertmanager on it.
# Extra arguments go to Alertmanager.  In docker compose (image prom/alertmanager:v0.25.0):
#
#   entrypoint: ["/bin/sh", "/etc/alertmanager/entrypoint.sh"]
#   command: ["--storage.path=/alertmanager", "--web.listen-address=:9093"]
#   environment:
#     ALERTS_WEBHOOK_URL: ${ALERTS_WEBHOOK_URL:-http://alerts-webhook:9105/alerts}
#
# The other variables are for tests: where the template is, where the result goes, what runs.
set -eu

template="${ALERTMANAGER_TEMPLATE:-/etc/alertmanager/alertmanager.yml}"
config="${ALERTMANAGER_RENDERED_CONFIG:-/tmp/alertmanager.yml}"
binary="${ALERTMANAGER_BIN:-/bin/alertmanager}"
placeholder="http://alerts-webhook-url.invalid/set-ALERTS_WEBHOOK_URL"
ALERTS_WEBHOOK_URL="${ALERTS_WEBHOOK_URL:-http://alerts-webhook:9105/alerts}"
export ALERTS_WEBHOOK_URL

case "$ALERTS_WEBHOOK_URL" in
    http://?* | https://?*) ;;
    *)
        echo "entrypoint.sh: ALERTS_WEBHOOK_URL must be an http:// or https:// URL" >&2
        exit 64
        ;;
esac
# It goes inside a double-quoted YAML string: refuse what would break out of it.  The URL itself
# is never printed, it may hold a token.
case "$ALERTS_WEBHOOK_URL" in
    *'"'* | *'\'* | *' '* | *'	'*)
        echo "entrypoint.sh: ALERTS_WEBHOOK_URL holds a quote, backslash or blank; percent-encode it" >&2
        exit 64
        ;;
esac
grep -qF "$placeholder" "$template" || {
    echo "entrypoint.sh: $template has no placeholder URL $placeholder" >&2
    exit 65
}

umask 077
# A literal replacement (no regex, no & or \ expansion): awk's index() and substr().
awk -v placeholder="$placeholder" '{
    line = $0; out = ""
    while ((at = index(line, placeholder)) > 0) {
        out = out substr(line, 1, at - 1) ENVIRON["ALERTS_WEBHOOK_URL"]
        line = substr(line, at + length(placeholder))
    }
    print out line
}' "$template" > "$config.tmp"
mv "$config.tmp" "$config"

exec "$binary" --config.file="$config" "$@"
