// A real OpenID Connect provider (the certified oidc-provider) on 127.0.0.1, for tests/test_desk_sso.py.
// Usage: node launch.mjs CONFIG.json, where CONFIG holds {"clients": [...], "users": {"id": {claims}}}.
// It binds port 0 and prints one line of JSON, {"issuer": "http://127.0.0.1:PORT"}, once it answers.
// Sign-in uses the provider's own development login and consent forms (any password; the login names
// an account of "users"), which the tests post as a browser would.
import fs from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

const conf = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const server = http.createServer();

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: conf.clients,
    async findAccount(ctx, id) {
      const claims = conf.users[id];
      if (!claims) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...claims }; } };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    cookies: { keys: ['statusd-tests-only-not-a-secret'] },
    features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
    pkce: { required: () => true },
    // The tests sign in again and again within a few seconds; no session should carry over to the next.
    ttl: { Session: 60, Interaction: 300, Grant: 300 },
  });
  server.on('request', provider.callback());
  process.stdout.write(JSON.stringify({ issuer }) + '\n');
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
