#!/bin/sh
# The keyfile mongod needs to run a replica set with auth on: the members of a set prove to each
# other that they belong with it.  Run by the one-shot mongodb-keyfile service (docker-compose.yml)
# as root, before mongodb starts; writes /keyfile/key into the volume mongodb mounts read-only.
#
#   MONGO_REPLICA_SET_KEY set:  that key, written on every start (so a changed key takes effect);
#                               give every member of the set the same one.
#   unset or empty:             the key made on the first start is kept; none yet, one is made
#                               from 756 random bytes (1008 base64 characters).
#
# The key never lives in the repository: it comes from the git-ignored .env or from the volume.
set -eu

key_file=/keyfile/key
umask 077

if [ -n "${MONGO_REPLICA_SET_KEY:-}" ]; then
    case "$MONGO_REPLICA_SET_KEY" in
        *[!A-Za-z0-9+/=]*)
            echo "MONGO_REPLICA_SET_KEY: use base64 characters only (A-Z a-z 0-9 + / =)" >&2
            exit 1
            ;;
    esac
    length=${#MONGO_REPLICA_SET_KEY}
    if [ "$length" -lt 6 ] || [ "$length" -gt 1024 ]; then
        echo "MONGO_REPLICA_SET_KEY: mongod takes 6 to 1024 characters, not $length" >&2
        exit 1
    fi
    printf '%s\n' "$MONGO_REPLICA_SET_KEY" > "$key_file.new"
    mv -f "$key_file.new" "$key_file"
    echo "keyfile: written from MONGO_REPLICA_SET_KEY"
elif [ -s "$key_file" ]; then
    echo "keyfile: kept the one made on the first start"
else
    head -c 756 /dev/urandom | base64 -w 0 > "$key_file.new"
    mv -f "$key_file.new" "$key_file"
    echo "keyfile: made a random one"
fi

# mongod refuses a keyfile that others can read; it runs as the image's mongodb user.
chown mongodb:mongodb "$key_file"
chmod 400 "$key_file"
