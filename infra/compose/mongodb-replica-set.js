// Makes the compose MongoDB the one member of replica set MONGO_REPLICA_SET, under the name the
// apps reach it by (MONGO_REPLICA_SET_MEMBER), and waits until it is primary.  Idempotent:
// `docker compose up` runs it (the one-shot mongodb-init service) on every start, and once the set
// exists it only checks the name and waits for the primary.
//
// Run by mongosh over a direct connection; it logs in from the environment, so the password is
// never on a command line.

const name = process.env.MONGO_REPLICA_SET;
const member = process.env.MONGO_REPLICA_SET_MEMBER;
const PRIMARY_TIMEOUT_MS = 60000;

const admin = db.getSiblingDB("admin");
admin.auth(process.env.MONGO_ROOT_USER, process.env.MONGO_ROOT_PASSWORD);

const NOT_YET_INITIALIZED = 94;
const ALREADY_INITIALIZED = 23;

// The set's config, or null before rs.initiate.  mongosh throws on a failed command; a reply with
// ok: 0 is checked too, should a shell return it instead.
function currentConfig() {
  let reply;
  try {
    reply = admin.adminCommand({ replSetGetConfig: 1 });
  } catch (error) {
    if (error.code === NOT_YET_INITIALIZED) {
      return null;
    }
    throw error;
  }
  if (!reply.ok) {
    if (reply.code === NOT_YET_INITIALIZED) {
      return null;
    }
    throw new Error(`replSetGetConfig failed: ${JSON.stringify(reply)}`);
  }
  return reply.config;
}

const config = currentConfig();
if (config === null) {
  print(`replica set ${name}: initiating with ${member}`);
  try {
    rs.initiate({ _id: name, members: [{ _id: 0, host: member }] });
  } catch (error) {
    if (error.code !== ALREADY_INITIALIZED) {
      throw error;
    }
  }
} else if (config._id !== name) {
  throw new Error(`mongod runs replica set ${config._id}, not ${name}: check --replSet`);
} else {
  const hosts = config.members.map((m) => m.host).join(", ");
  print(`replica set ${name}: already initiated (${hosts})`);
}

const deadline = Date.now() + PRIMARY_TIMEOUT_MS;
while (!admin.adminCommand({ hello: 1 }).isWritablePrimary) {
  if (Date.now() > deadline) {
    throw new Error(`replica set ${name}: no primary after ${PRIMARY_TIMEOUT_MS / 1000} s`);
  }
  sleep(1000);
}
print(`replica set ${name}: ${member} is primary`);
